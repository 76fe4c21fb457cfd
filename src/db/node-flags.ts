// The Node.js flags a database member runs with. They must be given when the process starts
// (V8 sizes its heap then; NODE_OPTIONS refuses this one), so the launchers pass them: the dev
// cluster, the test harness and the benchmark. By hand:
// node --initial-heap-size=128 bin/oncekv.js db ...

/**
 * DB_NODE_FLAGS give V8 a 128 MiB initial heap. Without it, a member taking writes of 4 KiB
 * values keeps its old generation just above its live ~20 MiB and runs a full mark-compact
 * every 200-300 ms (V8's trace: "GC in old space requested", ~5 MiB freed each time, 5-25 ms
 * pauses that every request in flight waits out). With it, the limit stays at about 44 MiB and
 * a mark-compact comes every 8-12 s. Measured side by side (two 3-member clusters, same build,
 * alternating 4 s runs, medians): writes of 4 KiB at C=16 1,168 -> 1,587 per second, CPU per
 * write (3 members) 1,145 -> 750 µs, p99 42.1 -> 24.7 ms; at C=128 2,260 -> 2,899 per second,
 * 664 -> 462 µs, p99 118 -> 106 ms; 100 B writes and reads unchanged. --initial-old-space-size
 * does the same. Cost: the heap grows further between collections: 20-50 MiB more resident
 * after such a run, 45-70 MiB more for a member holding 1,000,000 keys (README, Performance).
 */
export const DB_NODE_FLAGS: readonly string[] = ['--initial-heap-size=128']

/** missingDbNodeFlags is which of DB_NODE_FLAGS the process was started without (execArgv);
 * a flag given with another value counts as given: the operator chose it. */
export function missingDbNodeFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string): string => flag.split('=')[0] ?? flag
  return DB_NODE_FLAGS.filter((f) => !execArgv.some((a) => name(a) === name(f)))
}
