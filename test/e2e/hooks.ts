// node:test wiring for the e2e harness: every cluster a test file starts through useClusters
// is closed in `after` (its processes killed, its temp directory removed), and when a test
// fails, every member's log path and log tail is printed and the directory kept.
import { after, afterEach } from 'node:test'
import { Cluster, type ClusterOptions } from './cluster.ts'

/** ClusterTracker starts clusters that the file's hooks clean up. */
export interface ClusterTracker {
  start(opts: ClusterOptions): Promise<Cluster>
}

/** useClusters registers the hooks (call it at the top of a file or inside a describe). */
export function useClusters(): ClusterTracker {
  const clusters: Cluster[] = []
  afterEach((t) => {
    // TestContext.passed exists since Node 20.12; @types/node 20 does not declare it yet.
    const passed = (t as { passed?: boolean }).passed
    if (passed !== false) return
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
  }
}
