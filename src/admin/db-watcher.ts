// Follows the database cluster through any member: every second it asks a member for
// GET /cluster (the one that answered last, then the seeds, then every member it learned),
// so leader changes and membership changes reach the admin within about a second. It keeps
// how its latest round went (which members it passed over, and why) and counts its rounds.
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

/** DbPoll is how the watcher's latest round of GET /cluster went. */
export interface DbPoll {
  /** at is when it ended (ms since epoch; 0: none has ended yet). */
  readonly at: number
  /** ok is true when a member answered with a view that has a leader. */
  readonly ok: boolean
  /** tried are the members asked before one answered (all of them when none did), each
   * with why it was passed over: "<url> (<reason>)". */
  readonly tried: readonly string[]
}

/** DbWatcherCounts are the watcher's counters since start. */
export interface DbWatcherCounts {
  /** polls are the rounds ended; failed those in which no member answered. */
  readonly polls: number
  readonly failed: number
}

/** DbWatcher polls the database cluster. */
export class DbWatcher {
  private view: DbView = { urls: [], cluster: undefined, from: undefined, at: 0 }
  private last: DbPoll = { at: 0, ok: false, tried: [] }
  private polls = 0
  private failed = 0
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

  /** lastPoll is how the latest round ended. */
  get lastPoll(): DbPoll {
    return this.last
  }

  /** counts are the rounds done and failed. */
  get counts(): DbWatcherCounts {
    return { polls: this.polls, failed: this.failed }
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
    const tried: string[] = []
    try {
      for (const url of this.candidates()) {
        const cluster = await fetchCluster(this.caller, url, this.headers)
        if (typeof cluster === 'string') {
          tried.push(`${url} (${cluster})`)
          continue
        }
        const urls = cluster.members
          .filter((m) => m.suffrage === 'voter' && m.http !== '')
          // Every member serves the scheme of the one that answered (memberUrl).
          .map((m) => memberUrl(m.http, url))
          .sort()
        const before = this.view
        this.view = { urls, cluster, from: url, at: Date.now() }
        this.ended(true, tried)
        if (
          urls.join(',') !== before.urls.join(',') ||
          cluster.leader !== before.cluster?.leader ||
          JSON.stringify(cluster.members) !== JSON.stringify(before.cluster?.members)
        )
          this.onChange(this.view)
        return
      }
      this.ended(false, tried)
    } finally {
      this.polling = false
    }
  }

  private ended(ok: boolean, tried: string[]): void {
    this.polls++
    if (!ok) this.failed++
    this.last = { at: Date.now(), ok, tried }
  }
}

/** fetchCluster is url's GET /cluster when it answers with a view that has a leader, else
 * why not (a short phrase). */
async function fetchCluster(
  caller: Caller,
  url: string,
  headers: Record<string, string>,
): Promise<ClusterResponse | string> {
  try {
    const res = await caller.call(`${url}/cluster`, { headers, timeoutMs: 800 })
    if (!res.ok) return `answered ${res.status}${errorNameOf(res.body)}`
    const body = JSON.parse(res.body) as ClusterResponse | null
    if (typeof body !== 'object' || body === null || !Array.isArray(body.members))
      return 'answered no member list'
    // A member that has no leader knows no current membership worth spreading.
    if (!body.leader) return 'knows no leader'
    return body
  } catch (e) {
    return e instanceof SyntaxError ? 'answered a body that is not JSON' : (e as Error).message
  }
}

/** errorNameOf is " <name>" for an error body {"error": "<name>"}, else "". */
function errorNameOf(body: string): string {
  try {
    const name = (JSON.parse(body) as { error?: unknown }).error
    return typeof name === 'string' && /^[a-z_]{1,40}$/.test(name) ? ` ${name}` : ''
  } catch {
    return ''
  }
}
