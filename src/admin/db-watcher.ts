// Follows the database cluster through any member: every second it asks a member for
// GET /cluster (the one that answered last, then the seeds, then every member it learned),
// so leader changes and membership changes reach the admin within about a second.
import { memberUrl, type ClusterResponse } from '../protocol/index.ts'
import type { Caller } from '../security/http-client.ts'

/** DbView is what the admin knows of the database cluster. */
export interface DbView {
  /** urls are the voters' HTTP URLs, sorted. */
  readonly urls: readonly string[]
  readonly cluster: ClusterResponse | undefined
  /** from is the member that answered; at when (ms since epoch; 0 never). */
  readonly from: string | undefined
  readonly at: number
}

/** DbWatcher polls the database cluster. */
export class DbWatcher {
  private view: DbView = { urls: [], cluster: undefined, from: undefined, at: 0 }
  private timer: NodeJS.Timeout | undefined
  private polling = false

  constructor(
    private readonly seeds: readonly string[],
    private readonly onChange: (view: DbView) => void,
    private readonly caller: Caller,
    private readonly intervalMs = 1_000,
    /** headers go with every GET /cluster (the admin's credential). */
    private readonly headers: Record<string, string> = {},
  ) {}

  /** current is the latest view. */
  get current(): DbView {
    return this.view
  }

  start(): void {
    void this.poll()
    this.timer = setInterval(() => void this.poll(), this.intervalMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private candidates(): string[] {
    const learned = this.view.urls
    const first = this.view.from ? [this.view.from] : []
    return [...new Set([...first, ...this.seeds, ...learned])]
  }

  private async poll(): Promise<void> {
    if (this.polling) return
    this.polling = true
    try {
      for (const url of this.candidates()) {
        const cluster = await fetchCluster(this.caller, url, this.headers)
        if (!cluster) continue
        const urls = cluster.members
          .filter((m) => m.suffrage === 'voter' && m.http !== '')
          // Every member serves the scheme of the one that answered (memberUrl).
          .map((m) => memberUrl(m.http, url))
          .sort()
        const before = this.view
        this.view = { urls, cluster, from: url, at: Date.now() }
        if (
          urls.join(',') !== before.urls.join(',') ||
          cluster.leader !== before.cluster?.leader ||
          JSON.stringify(cluster.members) !== JSON.stringify(before.cluster?.members)
        )
          this.onChange(this.view)
        return
      }
    } finally {
      this.polling = false
    }
  }
}

async function fetchCluster(
  caller: Caller,
  url: string,
  headers: Record<string, string>,
): Promise<ClusterResponse | undefined> {
  try {
    const res = await caller.call(`${url}/cluster`, { headers, timeoutMs: 800 })
    if (!res.ok) return undefined
    const body = JSON.parse(res.body) as ClusterResponse
    // A member that has no leader knows no current membership worth spreading.
    if (!Array.isArray(body.members) || !body.leader) return undefined
    return body
  } catch {
    return undefined
  }
}
