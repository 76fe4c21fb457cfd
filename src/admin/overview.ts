// The admin's window on every node: once a second it reads GET /stats from every database
// member (from the cluster view, learners included) and every registered cache node, and turns
// the samples into what the dashboard shows: health (up, suspect, down), per-second rates from
// counter deltas, each member's replication and apply lag, down nodes' last known figures, and five minutes of
// history, so a page opened now has its sparklines filled at once.
import type {
  AdminHistory,
  AdminOverview,
  CacheNodeStats,
  ClusterRates,
  DbStats,
  Health,
  HistoryPoint,
  Lag,
  OverviewNode,
  Rates,
} from '../protocol/index.ts'
import type { Caller } from '../security/http-client.ts'
import type { DbView } from './db-watcher.ts'

/** HISTORY_POINTS is how many one-second points each series keeps (five minutes). */
export const HISTORY_POINTS = 300

/** Target is a node to poll. */
export interface Target {
  readonly kind: 'db' | 'cache'
  readonly id: string
  readonly url: string
  readonly suffrage: 'voter' | 'learner' | null
}

interface Sample {
  readonly time: number
  readonly stats: DbStats | CacheNodeStats
}

interface Tracked {
  target: Target
  last: Sample | undefined
  previous: Sample | undefined
  failures: number
  /** failingSince is when the current run of failures began (0: none). */
  failingSince: number
  rates: Rates
  history: HistoryPoint[]
}

const ZERO_RATES: Rates = { reads_per_s: 0, writes_per_s: 0, ops_per_s: 0, hit_ratio: null }

function isCache(s: DbStats | CacheNodeStats): s is CacheNodeStats {
  return 'Gets' in s
}

function push<T>(series: T[], point: T): void {
  series.push(point)
  if (series.length > HISTORY_POINTS) series.splice(0, series.length - HISTORY_POINTS)
}

const round = (n: number): number => Math.round(n * 10) / 10

/** OverviewCounts are an Overview's counters since start. */
export interface OverviewCounts {
  /** polls are the rounds done; statsPolls the GET /stats calls they made, statsErrors those
   * that failed (no answer in time, an error answer, a body that is not JSON). */
  readonly polls: number
  readonly statsPolls: number
  readonly statsErrors: number
}

/** Overview polls the nodes and keeps the latest picture and its history. */
export class Overview {
  private readonly tracked = new Map<string, Tracked>()
  private readonly clusterHistory: HistoryPoint[] = []
  private latest: AdminOverview = {
    type: 'overview',
    time: Date.now(),
    leader: null,
    term: 0,
    cluster: { writes_per_s: 0, reads_per_s: 0, ops_per_s: 0, hit_ratio: null },
    nodes: [],
  }
  private lastLeaderCommit: { time: number; commit: number } | undefined
  private polls = 0
  private statsPolls = 0
  private statsErrors = 0

  constructor(
    private readonly caller: Caller,
    private readonly timeoutMs = 800,
    /** headers go with every GET /stats (the admin's credential). */
    private readonly headers: Record<string, string> = {},
  ) {}

  /** current is the latest overview. */
  get current(): AdminOverview {
    return this.latest
  }

  /** counts are the rounds and stats calls done, and the calls that failed. */
  get counts(): OverviewCounts {
    return { polls: this.polls, statsPolls: this.statsPolls, statsErrors: this.statsErrors }
  }

  /** history is every series, oldest point first. */
  history(): AdminHistory {
    const nodes: Record<string, HistoryPoint[]> = {}
    for (const [url, t] of this.tracked) nodes[url] = [...t.history]
    return { type: 'history', cluster: [...this.clusterHistory], nodes }
  }

  /** poll reads every target's stats once and rebuilds the overview. Targets no longer
   * listed are forgotten. */
  async poll(targets: readonly Target[], view: DbView): Promise<AdminOverview> {
    const wanted = new Set(targets.map((t) => t.url))
    for (const url of this.tracked.keys()) if (!wanted.has(url)) this.tracked.delete(url)
    await Promise.all(
      targets.map(async (target) => {
        let t = this.tracked.get(target.url)
        if (!t) {
          t = {
            target,
            last: undefined,
            previous: undefined,
            failures: 0,
            failingSince: 0,
            rates: ZERO_RATES,
            history: [],
          }
          this.tracked.set(target.url, t)
        }
        t.target = target
        const stats = await this.fetchStats(target.url)
        const now = Date.now()
        this.statsPolls++
        if (!stats) {
          this.statsErrors++
          if (t.failures === 0) t.failingSince = now
          t.failures++
          t.rates = ZERO_RATES
        } else {
          t.failures = 0
          t.failingSince = 0
          t.previous = t.last
          t.last = { time: now, stats }
          t.rates = ratesOf(t.previous, t.last)
        }
        push(t.history, { time: now, ops_per_s: t.rates.ops_per_s, hit_ratio: t.rates.hit_ratio })
      }),
    )
    this.polls++
    this.latest = this.build(view)
    push(this.clusterHistory, {
      time: this.latest.time,
      ops_per_s: this.latest.cluster.ops_per_s,
      hit_ratio: this.latest.cluster.hit_ratio,
    })
    return this.latest
  }

  private async fetchStats(url: string): Promise<DbStats | CacheNodeStats | undefined> {
    try {
      const res = await this.caller.call(`${url}/stats`, {
        headers: this.headers,
        timeoutMs: this.timeoutMs,
      })
      if (!res.ok) return undefined
      return JSON.parse(res.body) as DbStats | CacheNodeStats
    } catch {
      return undefined
    }
  }

  private build(view: DbView): AdminOverview {
    const now = Date.now()
    const leaderId = view.cluster?.leader || null
    let leaderStats: DbStats | undefined
    for (const t of this.tracked.values()) {
      const s = t.last?.stats
      if (t.failures === 0 && s && !isCache(s) && s.state === 'Leader' && s.id === leaderId)
        leaderStats = s
    }
    const nodes: OverviewNode[] = [...this.tracked.values()].map((t) => {
      const s = t.last?.stats ?? null
      const health: Health =
        t.failures === 0 && t.last ? 'up' : t.failures < 3 && t.last ? 'suspect' : 'down'
      const db = s && !isCache(s) ? s : undefined
      return {
        kind: t.target.kind,
        id: t.target.id,
        url: t.target.url,
        health,
        leader: t.target.kind === 'db' && t.target.id === leaderId,
        suffrage: t.target.suffrage,
        last_seen_ms: t.last ? now - t.last.time : -1,
        lag: health === 'up' && t.target.kind === 'db' && db ? lagOf(db, leaderStats) : null,
        rates: t.rates,
        // A down node's last figures (a dead leader's "Leader" among them) would mislead as
        // current ones: they are kept apart, as what it said last.
        stats: health === 'down' ? null : s,
        down_since: health === 'down' ? t.failingSince || now : null,
        last_stats: health === 'down' ? s : null,
      }
    })
    nodes.sort((a, b) => (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind === 'db' ? -1 : 1))
    return {
      type: 'overview',
      time: now,
      leader: leaderId,
      term: view.cluster?.term ?? 0,
      cluster: this.clusterRates(leaderStats, now),
      nodes,
    }
  }

  private clusterRates(leader: DbStats | undefined, now: number): ClusterRates {
    let writes = 0
    if (leader) {
      const prev = this.lastLeaderCommit
      if (prev && now > prev.time && leader.commit_index >= prev.commit)
        writes = ((leader.commit_index - prev.commit) * 1000) / (now - prev.time)
      this.lastLeaderCommit = { time: now, commit: leader.commit_index }
    }
    let reads = 0
    let gets = 0
    let hits = 0
    for (const t of this.tracked.values()) {
      if (t.failures > 0 || !t.previous || !t.last) continue
      const a = t.previous.stats
      const b = t.last.stats
      const secs = (t.last.time - t.previous.time) / 1000
      if (secs <= 0) continue
      if (isCache(a) && isCache(b)) {
        // Client reads through the cache; the reads it made to fill itself are subtracted
        // from the members' count below.
        reads += (b.Gets - b.ServerRequests - (a.Gets - a.ServerRequests)) / secs
        reads -= (b.LocalLoads - a.LocalLoads) / secs
        gets += b.Gets - a.Gets
        hits += b.CacheHits - a.CacheHits
      } else if (!isCache(a) && !isCache(b)) {
        reads += (b.reads - a.reads) / secs
      }
    }
    const r = Math.max(0, reads)
    return {
      writes_per_s: round(writes),
      reads_per_s: round(r),
      ops_per_s: round(writes + r),
      hit_ratio: gets > 0 ? Math.round((hits / gets) * 1000) / 1000 : null,
    }
  }
}

/** lagOf is how far member is behind leader: the
 * entries of the leader's log it does not hold yet (replication; its last log index stands
 * for the match index the leader keeps, which /stats does not show), and the entries it knows
 * committed but has not applied (apply). Replication is null when no leader is known. */
export function lagOf(member: DbStats, leader: DbStats | undefined): Lag {
  const replication = !leader
    ? null
    : leader.id === member.id
      ? 0
      : Math.max(0, leader.last_log_index - member.last_log_index)
  return { replication, apply: Math.max(0, member.commit_index - member.applied_index) }
}

/** ratesOf turns two samples of one node into per-second rates. */
export function ratesOf(a: Sample | undefined, b: Sample): Rates {
  if (!a || b.time <= a.time) return ZERO_RATES
  const secs = (b.time - a.time) / 1000
  const x = a.stats
  const y = b.stats
  if (isCache(x) && isCache(y)) {
    // A restarted node's counters start again from zero: no negative rates.
    const reads = Math.max(0, (y.Gets - y.ServerRequests - (x.Gets - x.ServerRequests)) / secs)
    const gets = y.Gets - x.Gets
    const hits = y.CacheHits - x.CacheHits
    return {
      reads_per_s: round(reads),
      writes_per_s: 0,
      ops_per_s: round(reads),
      hit_ratio: gets > 0 && hits >= 0 ? Math.round((hits / gets) * 1000) / 1000 : null,
    }
  }
  if (!isCache(x) && !isCache(y)) {
    const reads = Math.max(0, (y.reads - x.reads) / secs)
    const writes = Math.max(0, (y.writes - x.writes) / secs)
    return {
      reads_per_s: round(reads),
      writes_per_s: round(writes),
      ops_per_s: round(reads + writes),
      hit_ratio: null,
    }
  }
  return ZERO_RATES
}
