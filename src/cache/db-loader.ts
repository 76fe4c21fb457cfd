// The cache's fill from the database tier. It prefers the member that answered fastest
// recently (a moving average of latency), hedges: when the preferred member has not answered
// within hedgeMs, the next one is asked too, and the first answer wins; a failure moves on to
// the next member at once, and so does a member that has not answered within half the fill's
// deadline when no hedge may be sent (the hedge budget is used up): a fill never waits its
// whole budget on one slow member. A 404 from a member is authoritative (members confirm a miss with
// a ReadIndex round before answering 404), so it is returned, never retried elsewhere.
import { Pool } from 'undici'
import { UnavailableError } from '../protocol/index.ts'
import { poolTlsOptions } from '../security/http-client.ts'
import type { TlsConfig } from '../security/index.ts'
import { FetchError, fetchValue, keyPath } from './fetch-value.ts'
import { DB_TIMEOUT_DEFAULT_MS } from './timeouts.ts'

/** DbLoaderOptions configure the fill. */
export interface DbLoaderOptions {
  /** tls: connections to https:// members trust its CA. */
  readonly tls?: TlsConfig
  /** timeoutMs bounds one fill, every attempt included. */
  readonly timeoutMs?: number
  /** hedgeMs is how long the preferred member may take before the next is asked too. */
  readonly hedgeMs?: number
  readonly maxValueBytes: number
  /** connections is the pool size per member. */
  readonly connections?: number
  /** hedgeShare is the largest share of loads that may send a hedged second read
   * (HEDGE_BUDGET by default; 0 never hedges, so a slow member is only failed over from). */
  readonly hedgeShare?: number
  /** headers go with every read (the credential: the cluster secret or a read token). */
  readonly headers?: Record<string, string>
}

interface Member {
  readonly url: string
  readonly pool: Pool
  /** ewmaMs is the moving average of answer times; undefined until the first answer. */
  ewmaMs: number | undefined
  /** downUntil: after a failure the member is tried last until then. */
  downUntil: number
  failures: number
  reads: number
  errors: number
}

/** DbMemberStats is one member as the fill sees it (for /stats and the dashboard). */
export interface DbMemberStats {
  readonly url: string
  readonly ewma_ms: number | null
  readonly down: boolean
  readonly reads: number
  readonly errors: number
}

const EWMA_WEIGHT = 0.2

/** HEDGE_BUDGET is the largest share of loads that may send a hedged second read by default. */
export const HEDGE_BUDGET = 0.1

/** DbLoader reads values from the database members. */
export class DbLoader {
  private members: Member[] = []
  private readonly timeoutMs: number
  private readonly hedgeMs: number
  // Loads started and hedged reads sent, for the hedge budget.
  private loads = 0
  private hedges = 0
  private readonly maxValueBytes: number
  private readonly connections: number
  private readonly tls: TlsConfig | undefined
  private readonly hedgeShare: number
  private readonly headers: Record<string, string> | undefined

  constructor(urls: readonly string[], opts: DbLoaderOptions) {
    this.timeoutMs = opts.timeoutMs ?? DB_TIMEOUT_DEFAULT_MS
    this.hedgeMs = opts.hedgeMs ?? 100
    this.hedgeShare = opts.hedgeShare ?? HEDGE_BUDGET
    this.maxValueBytes = opts.maxValueBytes
    this.connections = opts.connections ?? 64
    this.headers = opts.headers && Object.keys(opts.headers).length > 0 ? opts.headers : undefined
    this.tls = opts.tls
    this.setMembers(urls)
  }

  /** urls are the members the fill uses. */
  get urls(): string[] {
    return this.members.map((m) => m.url)
  }

  /** setMembers replaces the member list, keeping what is known of members that stay. */
  setMembers(urls: readonly string[]): boolean {
    const wanted = [...new Set(urls)]
    const same =
      wanted.length === this.members.length &&
      wanted.every((u) => this.members.some((m) => m.url === u))
    if (same) return false
    const keep = new Map(this.members.map((m) => [m.url, m]))
    this.members = wanted.map(
      (url) =>
        keep.get(url) ?? {
          url,
          pool: new Pool(url, {
            connections: this.connections,
            ...poolTlsOptions(this.tls, false),
          }),
          ewmaMs: undefined,
          downUntil: 0,
          failures: 0,
          reads: 0,
          errors: 0,
        },
    )
    for (const [url, m] of keep) if (!wanted.includes(url)) void m.pool.close()
    return true
  }

  /** order is the members, best first: up before down, untried before tried (so every
   * member gets measured), then by moving average. */
  private order(now: number): Member[] {
    return [...this.members].sort((a, b) => {
      const ad = a.downUntil > now ? 1 : 0
      const bd = b.downUntil > now ? 1 : 0
      if (ad !== bd) return ad - bd
      return (a.ewmaMs ?? -1) - (b.ewmaMs ?? -1)
    })
  }

  /** load reads key: the value, or undefined when the database says it does not exist. */
  load(key: string): Promise<Uint8Array | undefined> {
    const started = Date.now()
    const queue = this.order(started)
    if (queue.length === 0) {
      return Promise.reject(new UnavailableError('no database members are known yet'))
    }
    const path = `/keys/${keyPath(key)}`
    // The hedge budget counts recent loads: halve the counts now and then.
    if (++this.loads > 10_000) {
      this.loads /= 2
      this.hedges /= 2
    }
    return new Promise((resolve, reject) => {
      // The requests sent and not answered yet (a load asks each member once at most).
      const inFlight = new Map<
        Member,
        { readonly controller: AbortController; readonly t0: number }
      >()
      let settled = false
      let stepTimer: NodeJS.Timeout | undefined
      const errors: string[] = []
      const finish = (fn: () => void): void => {
        if (settled) return
        settled = true
        clearTimeout(stepTimer)
        clearTimeout(deadline)
        // The members still asked are given up on. Each took at least this long and counts
        // so: a member that hangs would otherwise stay the favourite, and every later fill
        // would wait the hedge delay for it.
        const now = Date.now()
        for (const [m, { controller, t0 }] of inFlight) {
          this.observeAbandoned(m, now - t0)
          controller.abort()
        }
        fn()
      }
      const onDeadline = (): void =>
        finish(() =>
          reject(
            new UnavailableError(
              `the database did not answer within ${this.timeoutMs} ms` +
                (errors.length ? ` (${errors.join('; ')})` : ''),
            ),
          ),
        )
      // The deadline aborts every request still in flight (finish does), with a timer
      // cleared when the load settles (finish, its only reader, runs after this line:
      // next() is first called below). AbortSignal.timeout's timer lives out its full span
      // and AbortSignal.any links signals per attempt: with them, misses cost the cache
      // nodes 4-23 % more CPU (bench/NOTES.md, "Misses through the caches").
      const deadline = setTimeout(onDeadline, this.timeoutMs)
      // failOver gives up on m, which has not answered within its share of the deadline and
      // could not be hedged: it counts as a failure (tried last for a while) and the next
      // member is asked instead.
      const failOver = (m: Member, ms: number): void => {
        const attempt = inFlight.get(m)
        if (!attempt || settled) return
        inFlight.delete(m)
        attempt.controller.abort()
        this.observeAbandoned(m, Date.now() - attempt.t0)
        this.fail(m)
        errors.push(`${m.url}: no answer within ${ms} ms`)
        next()
      }
      // step waits for m, the member asked last, while another is left to ask: past the
      // hedge delay it asks the next one too if the hedge budget allows, else it fails over
      // from m once m has had half the deadline.
      const step = (m: Member, t0: number): void => {
        if (queue.length === 0) return
        const hedgeAt = this.hedgeDelay(m)
        const failAt = Math.max(hedgeAt, this.timeoutMs / 2)
        stepTimer = setTimeout(() => {
          if (settled || !inFlight.has(m)) return
          if (this.mayHedge()) {
            this.hedges++
            next()
            return
          }
          const left = failAt - (Date.now() - t0)
          if (left <= 0) failOver(m, failAt)
          else stepTimer = setTimeout(() => failOver(m, failAt), left)
        }, hedgeAt)
      }
      const next = (): void => {
        clearTimeout(stepTimer)
        const m = queue.shift()
        if (!m) {
          if (inFlight.size === 0)
            finish(() =>
              reject(new UnavailableError(`no database member answered: ${errors.join('; ')}`)),
            )
          return
        }
        const controller = new AbortController()
        const t0 = Date.now()
        const attempt = { controller, t0 }
        inFlight.set(m, attempt)
        m.reads++
        fetchValue(m.pool, path, controller.signal, this.maxValueBytes, this.headers).then(
          (value) => {
            // An attempt failed over from may still answer first: its answer is as good.
            inFlight.delete(m)
            this.observe(m, Date.now() - t0)
            finish(() => resolve(value))
          },
          (e: unknown) => {
            // Failed over from (and counted) already, or the load is done.
            if (inFlight.get(m) !== attempt || settled) return
            inFlight.delete(m)
            this.fail(m)
            errors.push(`${m.url}: ${e instanceof FetchError ? e.message : String(e)}`)
            next()
          },
        )
        step(m, t0)
      }
      next()
    })
  }

  private observe(m: Member, ms: number): void {
    m.ewmaMs = m.ewmaMs === undefined ? ms : m.ewmaMs + EWMA_WEIGHT * (ms - m.ewmaMs)
    m.failures = 0
    m.downUntil = 0
  }

  /**
   * hedgeDelay is how long to wait for m before also asking the next member: at least hedgeMs
   * and at least four times m's usual answer time (a member slow because the whole machine
   * is busy is not worth a second read).
   */
  private hedgeDelay(m: Member): number {
    return Math.max(this.hedgeMs, 4 * (m.ewmaMs ?? 0))
  }

  /** mayHedge is true while hedges stay within hedgeShare of the loads (one in ten by
   * default, counted as if from ten loads before the first), so hedging never adds more
   * than that share to the database's reads. */
  private mayHedge(): boolean {
    return this.hedges < this.hedgeShare * (this.loads + 10)
  }

  /** observeAbandoned counts a request given up after ms without an answer. The time is a
   * lower bound of the member's latency, so it may raise the average, never lower it. */
  private observeAbandoned(m: Member, ms: number): void {
    if (m.ewmaMs === undefined || ms > m.ewmaMs)
      m.ewmaMs = m.ewmaMs === undefined ? ms : m.ewmaMs + EWMA_WEIGHT * (ms - m.ewmaMs)
  }

  private fail(m: Member): void {
    m.errors++
    m.failures++
    // Tried last for a while, longer after repeated failures (up to 5 s).
    m.downUntil = Date.now() + Math.min(5_000, 250 * 2 ** Math.min(m.failures - 1, 5))
  }

  /** stats describes each member. */
  stats(): DbMemberStats[] {
    const now = Date.now()
    return this.members.map((m) => ({
      url: m.url,
      ewma_ms: m.ewmaMs === undefined ? null : Math.round(m.ewmaMs * 100) / 100,
      down: m.downUntil > now,
      reads: m.reads,
      errors: m.errors,
    }))
  }

  /** close closes every pool. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.pool.close()))
  }
}
