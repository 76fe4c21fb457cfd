// The Node.js flags a database member runs with. They must be given when the process starts
// (V8 sizes its heap then; NODE_OPTIONS refuses the first), so the launchers pass them: the dev
// cluster, the test harness and the benchmark. By hand:
// node --initial-heap-size=128 --max-semi-space-size=8 bin/oncekv.js db ...
// A member started without the first (`oncekv db ...`) sets RUNTIME_HEAP_FLAG instead, which
// V8 reads at every full collection and which does nearly as much.
import { setFlagsFromString } from 'node:v8'
import { anyFlagGiven } from '../base/index.ts'

/** HEAP_FLAG gives V8 a 128 MiB initial heap (DB_NODE_FLAGS, below, says why). */
export const HEAP_FLAG = '--initial-heap-size=128'

/**
 * YOUNG_FLAG caps V8's young generation at 8 MiB per semi-space (16 MiB by default). A member
 * holding 1,000,000 keys is near its 300 MiB bound, and V8's heap is what moves it: with this
 * cap, one memory phase of the benchmark (2026-11-29 05:22, 1,000,000 writes of 100 B, then
 * reading them all back through the caches) left the members at 268-288 MiB after the writes
 * and 227-272 after the read-back, against 278-306 and 234-286 in the full run just before
 * without it (one run each; uncapped runs have differed by 9 MiB at the peak between
 * themselves, so this shows the order of the saving, not its size). Writes side by side (2
 * alternating pairs, 100 B and 4 KiB, C=16 and C=128, 6 s): 2,144-2,208 against 1,644-2,443
 * a second at 100 B C=16, 4,173-4,377 against 3,584-4,746 at C=128, 1,604-1,707 against
 * 1,599-1,627 and 2,625-2,884 against 2,614-2,699 at 4 KiB: no difference seen within the
 * noise. NODE_OPTIONS may hold this one.
 */
export const YOUNG_FLAG = '--max-semi-space-size=8'

/**
 * DB_NODE_FLAGS give V8 a 128 MiB initial heap (and cap the young generation: YOUNG_FLAG,
 * above). Without the first, a member taking writes of 4 KiB values keeps its old generation
 * just above its live ~20 MiB and runs a full mark-compact every 200-300 ms (V8's trace: "GC in
 * old space requested", ~5 MiB freed each time, 5-25 ms pauses that every request in flight
 * waits out). With it, the limit stays at about 44 MiB and a mark-compact comes every 8-12 s.
 * Measured side by side (two 3-member clusters, same build, alternating 4 s runs, medians):
 * writes of 4 KiB at C=16 1,168 -> 1,587 per second, CPU per write (3 members) 1,145 -> 750 µs,
 * p99 42.1 -> 24.7 ms; at C=128 2,260 -> 2,899 per second, 664 -> 462 µs, p99 118 -> 106 ms;
 * 100 B writes and reads unchanged. --initial-old-space-size does the same. Cost: the heap
 * grows further between collections: 20-50 MiB more resident after such a run, 45-70 MiB more
 * for a member holding 1,000,000 keys (bench/NOTES.md).
 */
export const DB_NODE_FLAGS: readonly string[] = [HEAP_FLAG, YOUNG_FLAG]

/** START_HEAP_FLAGS are the flags that size V8's heap at start as DB_NODE_FLAGS does: any
 * of them, with any value, counts as given (the operator chose). */
const START_HEAP_FLAGS: readonly string[] = ['--initial-heap-size', '--initial-old-space-size']

/**
 * RUNTIME_HEAP_FLAG is what a member started without DB_NODE_FLAGS sets for itself
 * (v8.setFlagsFromString, at start): after each full collection V8 lets the old generation grow
 * to 4x what was still live, not by its own factor, so the collections come as seldom as with
 * the bigger initial heap. Measured side by side (3 members, 4 KiB writes to the leader at
 * C=16, 8 s of warm-up then 6 s, alternating, 2026-11-28): CPU per write over the members
 * without either 1,083-1,094 µs, with this 598-794 (mean 695), with --initial-heap-size=128
 * 593-792 (mean 672); resident anonymous memory after a run 126-138 MiB against 134-150; with
 * 100 or 200 percent 658-959 µs. Again with `oncekv db` setting it (two pairs): 542 and 596
 * µs against 527 and 593 with --initial-heap-size=128.
 */
export const RUNTIME_HEAP_FLAG = '--heap-growing-percent=300'

/** missingDbNodeFlags is which of DB_NODE_FLAGS the process was started without (execArgv,
 * and NODE_OPTIONS for the young generation's cap, which it may hold); a flag given with
 * another value, or another flag that sizes the heap at start, counts as given: the operator
 * chose it. */
export function missingDbNodeFlags(
  execArgv: readonly string[],
  nodeOptions: string | undefined = undefined,
): string[] {
  const missing: string[] = []
  if (!anyFlagGiven(execArgv, START_HEAP_FLAGS)) missing.push(HEAP_FLAG)
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
  if (!anyFlagGiven(given, [YOUNG_FLAG])) missing.push(YOUNG_FLAG)
  return missing
}

/** runtimeHeapFlag is the V8 flag a member sets for itself at start, given the flags its
 * process was started with (execArgv): RUNTIME_HEAP_FLAG when it was started without a flag
 * that sizes the heap (HEAP_FLAG) and the operator gave no growing percent of their own, else
 * none. NODE_OPTIONS can hold neither HEAP_FLAG nor RUNTIME_HEAP_FLAG (Node.js refuses them
 * there), so execArgv is all there is to look at. (The young generation's cap has no run-time
 * stand-in: a member started without it runs with V8's default, 16 MiB per semi-space.) */
export function runtimeHeapFlag(execArgv: readonly string[]): string | undefined {
  if (anyFlagGiven(execArgv, START_HEAP_FLAGS)) return undefined
  if (anyFlagGiven(execArgv, [RUNTIME_HEAP_FLAG])) return undefined
  return RUNTIME_HEAP_FLAG
}

/** setRuntimeHeapFlag sets runtimeHeapFlag(execArgv), if any, through set, and returns it. */
export function setRuntimeHeapFlag(
  execArgv: readonly string[],
  set: (flags: string) => void = setFlagsFromString,
): string | undefined {
  const flag = runtimeHeapFlag(execArgv)
  if (flag !== undefined) set(flag)
  return flag
}
