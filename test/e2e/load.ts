// Write load and read-back checks for end-to-end tests and benchmarks. The load is bounded in
// time and in count; every key is fresh, every value unique, so a read can tell "this write
// applied" (exactly the value), "it did not" (404) and "something else" (a bug).
import { randomBytes } from 'node:crypto'
import { errorCause, isNetworkError, keyPath, request } from './http.ts'

/** WriteLoadOptions configure startWriteLoad. */
export interface WriteLoadOptions {
  /** targets returns the base URLs to write through; it is called before every request, so
   * a test can drop a member it stopped or add one it started. */
  readonly targets: () => readonly string[]
  readonly clients: number
  /** durationMs bounds the load in time; stop() ends it sooner. */
  readonly durationMs: number
  /** maxWritesPerClient bounds the load in count. */
  readonly maxWritesPerClient: number
  readonly keyPrefix: string
  /** valueBytes is the size of each value (hex text; at least 16). Default 32. */
  readonly valueBytes?: number
  /** requestTimeoutMs bounds one request. Default 5 s. */
  readonly requestTimeoutMs?: number
  /** attemptsPerKey: how often a key whose outcome is unknown (503, network error) is sent
   * again, to the next target, before the client moves on. Default 50. */
  readonly attemptsPerKey?: number
  /** retryDelayMs is the pause before sending a key again. Default 20 ms. */
  readonly retryDelayMs?: number
}

/** Unexpected is an answer a write must never get (anything but 200, 201, 503 and 500). */
export interface Unexpected {
  readonly key: string
  readonly target: string
  readonly status: number
  readonly body: string
}

/** Retry is one answer that made a client send a key again: a 503, a 500 or a network
 * error. */
export interface Retry {
  readonly atMs: number
  readonly target: string
  /** what is "503", "500" or the network error's cause (ECONNREFUSED, TimeoutError, …). */
  readonly what: string
}

/** WriteLoadResult is what the load saw. */
export interface WriteLoadResult {
  /** acked maps every acknowledged key (200 or 201) to its value. */
  readonly acked: Map<string, string>
  /** ackedAtMs maps an acknowledged key to when its ack arrived (Date.now()). */
  readonly ackedAtMs: Map<string, number>
  /** attempted maps every key ever sent to its value, acknowledged or not. */
  readonly attempted: Map<string, string>
  readonly created: number
  readonly identical: number
  /** unavailable counts 503 answers. */
  readonly unavailable: number
  /** internalErrors counts 500 answers (code 1004: a bug on the server). The key is sent
   * again, as after a 503: its outcome is unknown and an identical re-put is safe. Tests
   * require none, except where a known bug makes them (see db-failover.test.ts). */
  readonly internalErrors: number
  /** networkErrors counts refused or reset connections, by cause. */
  readonly networkErrors: Record<string, number>
  /** statuses counts every HTTP answer by status ("201": 812, "503": 3, ...). */
  readonly statuses: Record<string, number>
  readonly unexpected: Unexpected[]
  /** retries lists the first RETRIES_KEPT answers that caused a retry, oldest first. */
  readonly retries: Retry[]
  /** slowRequests counts requests (answered or not) that took over SLOW_REQUEST_MS. */
  readonly slowRequests: number
  /** maxRequestMs is the longest one request took, answered or not. */
  readonly maxRequestMs: number
  /** maxAttempts is the most sends one key needed. */
  readonly maxAttempts: number
  readonly elapsedMs: number
}

/** WriteLoad is a load in progress. */
export interface WriteLoad {
  /** stop ends the load at the next request boundary. */
  stop(): void
  readonly done: Promise<WriteLoadResult>
}

const RETRIES_KEPT = 1000
/** SLOW_REQUEST_MS: a write slower than this is more than a brief hiccup. */
export const SLOW_REQUEST_MS = 2_000

/** startWriteLoad starts `clients` concurrent writers. Even writes use PUT /keys/<key> (raw),
 * odd ones POST /key (JSON), so both routes carry load. */
export function startWriteLoad(opts: WriteLoadOptions): WriteLoad {
  let stopped = false
  const started = Date.now()
  const deadline = started + opts.durationMs
  const acked = new Map<string, string>()
  const ackedAtMs = new Map<string, number>()
  const attempted = new Map<string, string>()
  const networkErrors: Record<string, number> = {}
  const statuses: Record<string, number> = {}
  const unexpected: Unexpected[] = []
  const retries: Retry[] = []
  const noteRetry = (target: string, what: string): void => {
    if (retries.length < RETRIES_KEPT) retries.push({ atMs: Date.now(), target, what })
  }
  let created = 0
  let identical = 0
  let unavailable = 0
  let internalErrors = 0
  let maxAttempts = 0
  let slowRequests = 0
  let maxRequestMs = 0
  const timed = (sentAt: number): void => {
    const ms = Date.now() - sentAt
    maxRequestMs = Math.max(maxRequestMs, ms)
    if (ms > SLOW_REQUEST_MS) slowRequests++
  }
  const attemptsMax = opts.attemptsPerKey ?? 50
  const valueBytes = Math.max(16, opts.valueBytes ?? 32)
  const active = (): boolean => !stopped && Date.now() < deadline

  async function client(c: number): Promise<void> {
    for (let seq = 0; seq < opts.maxWritesPerClient && active(); seq++) {
      const key = `${opts.keyPrefix}-${c}-${seq}`
      const value = randomBytes(valueBytes / 2).toString('hex')
      attempted.set(key, value)
      for (let attempt = 1; attempt <= attemptsMax; attempt++) {
        maxAttempts = Math.max(maxAttempts, attempt)
        const targets = opts.targets()
        const target = targets[(c + seq + attempt) % targets.length]
        if (target === undefined) throw new Error('no targets to write to')
        let status: number
        let body: string
        const sentAt = Date.now()
        try {
          const res =
            seq % 2 === 0
              ? await request(`${target}/keys/${keyPath(key)}`, {
                  method: 'PUT',
                  body: value,
                  headers: { 'content-type': 'application/octet-stream' },
                  timeoutMs: opts.requestTimeoutMs,
                })
              : await request(`${target}/key`, {
                  method: 'POST',
                  body: JSON.stringify({ key, value }),
                  headers: { 'content-type': 'application/json' },
                  timeoutMs: opts.requestTimeoutMs,
                })
          status = res.status
          body = res.text()
          statuses[status] = (statuses[status] ?? 0) + 1
          timed(sentAt)
        } catch (e) {
          if (!isNetworkError(e)) throw e
          timed(sentAt)
          const cause = errorCause(e)
          networkErrors[cause] = (networkErrors[cause] ?? 0) + 1
          noteRetry(target, cause)
          if (!active()) break
          await pause(opts.retryDelayMs ?? 20)
          continue
        }
        const createdNow = status === 201 || (status === 200 && /"created":true/.test(body))
        if (status === 200 || status === 201) {
          if (createdNow) created++
          else identical++
          acked.set(key, value)
          ackedAtMs.set(key, Date.now())
          break
        }
        if (status === 503 || status === 500) {
          if (status === 503) unavailable++
          else internalErrors++
          noteRetry(target, String(status))
          if (!active()) break
          await pause(opts.retryDelayMs ?? 20)
          continue
        }
        unexpected.push({ key, target, status, body: body.slice(0, 300) })
        break
      }
    }
  }

  const done = Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c))).then(
    (): WriteLoadResult => ({
      acked,
      ackedAtMs,
      attempted,
      created,
      identical,
      unavailable,
      internalErrors,
      networkErrors,
      statuses,
      unexpected,
      retries,
      slowRequests,
      maxRequestMs,
      maxAttempts,
      elapsedMs: Date.now() - started,
    }),
  )
  return {
    stop() {
      stopped = true
    },
    done,
  }
}

/** describeRetries groups retries by target and cause, with times relative to `sinceMs`. */
export function describeRetries(r: WriteLoadResult, sinceMs: number): string {
  const groups = new Map<string, number[]>()
  for (const x of r.retries) {
    const k = `${x.target} ${x.what}`
    groups.set(k, [...(groups.get(k) ?? []), x.atMs - sinceMs])
  }
  return [...groups]
    .map(([k, at]) => `${k} x${at.length} (at ${Math.min(...at)}..${Math.max(...at)} ms)`)
    .join('; ')
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** summarize is a one-line account of a load for test output. */
export function summarize(r: WriteLoadResult): string {
  const rate = Math.round((r.acked.size * 1000) / Math.max(1, r.elapsedMs))
  return (
    `acked ${r.acked.size} of ${r.attempted.size} keys in ${r.elapsedMs} ms (${rate}/s; ` +
    `${r.created} created, ${r.identical} identical on retry), 503s ${r.unavailable}, ` +
    `500s ${r.internalErrors}, ` +
    `answers by status ${JSON.stringify(r.statuses)}, ` +
    `network errors ${JSON.stringify(r.networkErrors)}, unexpected ${r.unexpected.length}, ` +
    `most attempts for one key ${r.maxAttempts}, slowest request ${r.maxRequestMs} ms ` +
    `(${r.slowRequests} over ${SLOW_REQUEST_MS} ms)`
  )
}

/** serverErrorsBut503 counts the 5xx answers other than 503, by status: a member may answer
 * 503 (no leader, leadership moving, shutting down: retrying is safe), never anything else. */
export function serverErrorsBut503(r: WriteLoadResult): Record<string, number> {
  return Object.fromEntries(
    Object.entries(r.statuses).filter(([status]) => status >= '500' && status !== '503'),
  )
}

/** ReadProblem is a key that did not read back as required. */
export interface ReadProblem {
  readonly node: string
  readonly key: string
  readonly status: number | string
  readonly got?: string
  readonly want: string
}

/** ReadBackOptions configure readBack. */
export interface ReadBackOptions {
  /** allowMissing: a 404 is fine (keys whose write was not acknowledged). */
  readonly allowMissing?: boolean
  /** stale reads with ?consistency=stale: only what the member holds locally counts. */
  readonly stale?: boolean
  readonly concurrency?: number
}

/**
 * readBack reads every key from every base URL (GET /keys/<key>) and returns the keys that
 * did not hold exactly their value (or 404, with allowMissing). An empty array means all well.
 */
export async function readBack(
  urls: readonly string[],
  expected: ReadonlyMap<string, string>,
  opts: ReadBackOptions = {},
): Promise<ReadProblem[]> {
  const problems: ReadProblem[] = []
  const jobs: [string, string, string][] = []
  for (const url of urls) for (const [k, v] of expected) jobs.push([url, k, v])
  let next = 0
  const query = opts.stale ? '?consistency=stale' : ''
  async function worker(): Promise<void> {
    for (;;) {
      const job = jobs[next++]
      if (!job) return
      const [url, key, want] = job
      let status: number | string
      let got: string | undefined
      try {
        const res = await request(`${url}/keys/${keyPath(key)}${query}`, { timeoutMs: 10_000 })
        status = res.status
        if (status === 200) got = res.text()
      } catch (e) {
        status = errorCause(e)
      }
      if (status === 200 && got === want) continue
      if (status === 404 && opts.allowMissing) continue
      problems.push({ node: url, key, status, got, want })
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency ?? 32 }, () => worker()))
  return problems
}

/** notAcked is the part of attempted that was never acknowledged. */
export function notAcked(r: WriteLoadResult): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of r.attempted) if (!r.acked.has(k)) out.set(k, v)
  return out
}
