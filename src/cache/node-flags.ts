// The Node.js flags a cache node runs with. They must be given when the process starts (V8
// sizes its heap then), so the launchers pass them: the dev cluster, the test harness and the
// benchmark. By hand: NODE_OPTIONS=--max-semi-space-size=2 oncekv cache ...

/**
 * CACHE_NODE_FLAGS caps V8's young generation at 2 MiB per semi-space. By default it grows to
 * 16 MiB per semi-space (32 MiB resident) under a steady stream of reads, on top of the
 * --cache-bytes the entries take. Measured with 200,000 keys of 100 B read through 3 caches
 * of 64 MiB: 153-159 MiB resident without the cap, 123-125 MiB with it, at about the same
 * CPU per cache hit (entries live long, so they leave the young generation either way).
 */
export const CACHE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2']
