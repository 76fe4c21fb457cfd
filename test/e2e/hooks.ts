// node:test wiring for the e2e harness: every cluster a test file starts through useClusters
// is closed in `after` (its processes killed, its temp directory removed), and when a test
// fails, every member's log path and log tail is printed and the directory kept.
import { after, afterEach, test } from 'node:test'
import { Cluster, type ClusterOptions } from './cluster.ts'

/** ClusterTracker starts clusters that the file's hooks clean up. */
export interface ClusterTracker {
  start(opts: ClusterOptions): Promise<Cluster>
  /** knownBug registers a test that exposes a known product bug: it runs as a `todo` (the
   * suite stays green while it fails) and its failure does not dump the logs. */
  knownBug(name: string, bug: string, fn: () => Promise<void>): void
}

/** useClusters registers the hooks (call it at the top of a file or inside a describe). */
export function useClusters(): ClusterTracker {
  const clusters: Cluster[] = []
  const knownBugs = new Set<string>()
  afterEach((t) => {
    // TestContext.passed exists since Node 20.12; @types/node 20 does not declare it yet.
    const passed = (t as { passed?: boolean }).passed
    if (passed !== false || knownBugs.has(t.name)) return
    for (const c of clusters) c.reportFailure(`test "${t.name}"`)
  })
  after(async () => {
    await Promise.all(clusters.map((c) => c.close()))
  })
  return {
    async start(opts) {
      const c = await Cluster.start(opts)
      clusters.push(c)
      return c
    },
    knownBug(name, bug, fn) {
      knownBugs.add(name)
      test(name, { todo: `bug: ${bug}` }, fn)
    },
  }
}
