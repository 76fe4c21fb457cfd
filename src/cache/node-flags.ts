// The Node.js flags a cache node runs with. They must be given when the process starts (V8
// sizes its heap then), so the launchers pass them: the dev cluster, the test harness and the
// benchmark. By hand: NODE_OPTIONS=--max-semi-space-size=2 oncekv cache ... A node started
// without them sets RUNTIME_YOUNG_FLAG instead, which V8 reads as it runs.
import { setFlagsFromString } from 'node:v8'
import { anyFlagGiven } from '../base/index.ts'

/**
 * CACHE_NODE_FLAGS caps V8's young generation at 2 MiB per semi-space. By default it grows to
 * 16 MiB per semi-space (32 MiB resident) under a steady stream of reads, on top of the
 * --cache-bytes the entries take. Measured with 200,000 keys of 100 B read through 3 caches
 * of 64 MiB: 153-159 MiB resident without the cap, 123-125 MiB with it, at about the same
 * CPU per cache hit (entries live long, so they leave the young generation either way). A
 * later side-by-side run (below, RUNTIME_YOUNG_FLAG) put the cap's CPU cost at 10-25 % per
 * read: memory is what the cache's bound (--cache-bytes + 64 MiB) asks for.
 */
export const CACHE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2']

/**
 * RUNTIME_YOUNG_FLAG is what a cache node started without CACHE_NODE_FLAGS sets for itself
 * (v8.setFlagsFromString, at start): V8 reads it each time the young generation would grow,
 * and with a factor of 1 it keeps its first size (1 MiB per semi-space) instead of growing to
 * 16 MiB under a stream of reads. Measured side by side (3 members, the admin, 3 caches;
 * 60,000 keys of 100 B read twice through the caches, then 6 s of reads through one at C=16;
 * twice each, 2026-11-28): resident 104-111 MiB per cache with this, 105-112 with
 * CACHE_NODE_FLAGS, 134-138 with neither; CPU per read on the node read 253-277 µs, 232-270,
 * 201-219 (the bound costs some CPU; the machine was noisy).
 */
export const RUNTIME_YOUNG_FLAG = '--semi-space-growth-factor=1'

/** runtimeYoungFlag is the V8 flag a cache node sets for itself at start, given the flags its
 * process was started with (execArgv and NODE_OPTIONS, which may hold these): RUNTIME_YOUNG_FLAG
 * when neither bounds the young generation (CACHE_NODE_FLAGS, or a growth factor of the
 * operator's), else none. */
export function runtimeYoungFlag(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string | undefined {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
  return anyFlagGiven(given, [...CACHE_NODE_FLAGS, RUNTIME_YOUNG_FLAG])
    ? undefined
    : RUNTIME_YOUNG_FLAG
}

/** setRuntimeYoungFlag sets runtimeYoungFlag(execArgv, nodeOptions), if any, through set, and
 * returns it. */
export function setRuntimeYoungFlag(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  set: (flags: string) => void = setFlagsFromString,
): string | undefined {
  const flag = runtimeYoungFlag(execArgv, nodeOptions)
  if (flag !== undefined) set(flag)
  return flag
}
