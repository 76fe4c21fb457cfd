// OnceKV, the client of an oncekv system. Writes go to any database member (a follower
// forwards to the leader itself) as raw bytes on PUT /keys/<key>; reads go to the cache tier
// first (any node: it asks the key's owner itself) and fall back to the members. A 404 with
// code 1002 from either is final: caches never keep "not found", and members confirm a miss
// through the leader before answering it.
//
// Each call has one deadline (timeoutMs) and a bound on its attempts (retries). An attempt
// goes to the fastest healthy node of its tier (a moving average of answer times); a failed
// or slow attempt (network error, per-attempt timeout, 5xx) pauses that node and moves on to
// the next at once; once every node has been tried, the next round waits a growing, jittered
// backoff first. Retrying a write is always safe: a key is written once, and the server
// answers the identical value with 200, so a put whose first attempt timed out after it was
// applied reports { created: false }, never a conflict.
//
// With an admin, the node lists come from its GET /caches and GET /dbs: fetched by the first
// call, then refreshed in the background when a call finds them older than refreshMs or an
// attempt fails. No call waits for a refresh once lists are known, and a failed refresh
// keeps the lists it had. There is no timer: an idle client does nothing and holds nothing
// open, so it needs no close().
//
// This module uses only what browsers and Node.js both have (fetch, AbortController,
// TextEncoder, performance): it imports nothing from Node.js.
import {
  InvalidKeyError,
  KeyConflictError,
  OnceKVError,
  TimeoutError,
  UnavailableError,
  ValueTooLargeError,
  type ErrorCode,
  type ErrorDetails,
} from './errors.ts'
import { checkKey, checkSendable, keyPath } from './keys.ts'
import { NodeTier, type NodeInfo } from './nodes.ts'

/** OnceKVOptions configure a client. Give an admin, or the node lists, or both (then the
 * lists are used until the admin first answers). */
export interface OnceKVOptions {
  /** admin is the admin's URL ("http://127.0.0.1:5546"): node lists come from it. */
  readonly admin?: string
  /** dbs are database members' URLs. */
  readonly dbs?: readonly string[]
  /** caches are cache nodes' URLs (their client API, --http). */
  readonly caches?: readonly string[]
  /** timeoutMs bounds each call, every attempt and backoff included. Default 5000. */
  readonly timeoutMs?: number
  /** attemptTimeoutMs bounds one attempt on one node. Default min(2000, timeoutMs). */
  readonly attemptTimeoutMs?: number
  /** retries is how many attempts a call may make after its first. Default 20: with the
   * backoff between rounds, at least 1.3 s of an outage where every node refuses at once (7
   * rounds of 3 nodes; more with fewer nodes), which may end a call before its deadline. */
  readonly retries?: number
  /** token is sent as "Authorization: Bearer <token>" on every request. */
  readonly token?: string
  /** concurrency bounds putMany and getMany. Default 16. */
  readonly concurrency?: number
  /** refreshMs is the age after which node lists from the admin are refreshed. Default 3000. */
  readonly refreshMs?: number
  /** checkKeys: refuse invalid keys before sending (default true). false leaves the empty
   * and over-long checks to the server (keys no URL can carry are always refused). */
  readonly checkKeys?: boolean
  /** fetch replaces the global fetch (a custom agent, instrumentation): the global fetch
   * itself, undici's, or any function of this shape. */
  readonly fetch?: FetchLike
}

/** FetchLikeInit is all the client passes to fetch: a subset of RequestInit that the global
 * fetch and undici's fetch both take. */
export interface FetchLikeInit {
  readonly method: 'GET' | 'HEAD' | 'PUT'
  readonly headers: Record<string, string>
  /** body is a put's value: a Uint8Array on an ArrayBuffer (Uint8Array<ArrayBuffer>, said so
   * that TypeScript before 5.7, where Uint8Array is not generic, reads it too). */
  readonly body?: Uint8Array & { readonly buffer: ArrayBuffer }
  readonly signal: AbortSignal
}

/** FetchLikeResponse is all the client reads of a response: a subset of Response. */
export interface FetchLikeResponse {
  readonly status: number
  readonly headers: { get(name: string): string | null }
  arrayBuffer(): Promise<ArrayBuffer>
  json(): Promise<unknown>
}

/** FetchLike is the fetch the client calls: the global fetch and undici's fetch are ones, and
 * so is a wrapper such as (input, init) => undiciFetch(input, { ...init, dispatcher }). The
 * client always passes a URL string. */
export type FetchLike = (url: string, init: FetchLikeInit) => Promise<FetchLikeResponse>

/** CallOptions are the options of one call. */
export interface CallOptions {
  /** signal aborts the call: it rejects with the signal's reason, or with TimeoutError when
   * that reason is a timeout (AbortSignal.timeout). */
  readonly signal?: AbortSignal
  /** timeoutMs overrides the client's deadline for this call. */
  readonly timeoutMs?: number
}

/** ManyOptions are the options of putMany and getMany. Their signal stops the whole batch: no
 * call starts after it aborted, the calls in flight are aborted, and the batch rejects with
 * the signal's reason (TimeoutError for a timeout). Their timeoutMs is each call's deadline. */
export interface ManyOptions extends CallOptions {
  /** concurrency is how many calls run at once (default: the client's, 16). */
  readonly concurrency?: number
  /** batchTimeoutMs bounds the whole batch: when it passes, no call starts, the calls in
   * flight are aborted, and the batch rejects with TimeoutError. Default: no bound beyond
   * each call's own deadline. */
  readonly batchTimeoutMs?: number
}

/** PutResult is the outcome of a put that succeeded. */
export interface PutResult {
  /** created is false when the identical value was already there (an earlier put, or an
   * earlier attempt of this one). */
  readonly created: boolean
}

/** Nodes is a snapshot of what the client knows about the system. */
export interface Nodes {
  readonly admin: string | undefined
  /** adminError is the last failed refresh from the admin, cleared by a good one. */
  readonly adminError: string | undefined
  /** caches and dbs list the nodes, in the order given. */
  readonly caches: readonly NodeInfo[]
  readonly dbs: readonly NodeInfo[]
  /** leader is the member writes go to first: the leader, as a follower's answer named it
   * (its x-oncekv-leader header), when that member is one of dbs. */
  readonly leader: string | undefined
}

/** Value is what put takes: bytes, or a string sent as UTF-8. */
export type Value = string | Uint8Array

const DEFAULTS = {
  timeoutMs: 5_000,
  attemptTimeoutMs: 2_000,
  retries: 20,
  concurrency: 16,
  refreshMs: 3_000,
}
/** A failed attempt triggers a refresh of the lists at most this often. */
const REFRESH_ON_FAILURE_MS = 1_000
/** Backoff before round r (r >= 1) of a call: 50 ms doubling, at most 1 s, jittered to 50-100 %. */
const BACKOFF_BASE_MS = 50
const BACKOFF_MAX_MS = 1_000

const encoder = new TextEncoder()
const decoder = new TextDecoder()

// The reason the client aborts a call with when its deadline passes.
const DEADLINE = Symbol('deadline')
// The reason putMany and getMany abort the calls in flight after one failed or the batch was
// stopped.
const STOPPED = Symbol('stopped')

/** NodeFailure is a failed attempt on one node: the call moves on to the next node. */
class NodeFailure extends Error {
  constructor(
    readonly url: string,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message)
  }
}

/** Conflict is a put's 409: where it was found and what the server said. */
interface Conflict {
  readonly conflictAt: string
  readonly details: ErrorDetails
}

/** Target is a node an attempt can go to, with its tier. */
interface Target {
  readonly url: string
  readonly tier: NodeTier
}

/** OnceKV is a client of an oncekv system. One client may serve many calls at once. */
export class OnceKV {
  private readonly admin: string | undefined
  private readonly timeoutMs: number
  private readonly attemptTimeoutMs: number
  private readonly retries: number
  private readonly concurrency: number
  private readonly refreshMs: number
  private readonly checkKeys: boolean
  private readonly fetchImpl: FetchLike
  private readonly authHeaders: Record<string, string>
  // redact hides the token in text that came from elsewhere (a server's message, a network
  // error) before it goes into an error or nodes().
  private readonly redact: (text: string) => string
  private readonly cacheTier = new NodeTier()
  private readonly dbTier = new NodeTier()
  // When the lists were last set (performance.now()); -Infinity: never.
  private listedAt = -Infinity
  // The leader as the last write's answer named it (x-oncekv-leader), if it is in dbTier.
  private leaderHint: string | undefined
  private refreshStartedAt = -Infinity
  private refreshing: Promise<void> | undefined
  private adminError: string | undefined

  constructor(opts: OnceKVOptions) {
    const caches = (opts.caches ?? []).map((u) => normalizeUrl(u, 'caches'))
    const dbs = (opts.dbs ?? []).map((u) => normalizeUrl(u, 'dbs'))
    this.admin = opts.admin === undefined ? undefined : normalizeUrl(opts.admin, 'admin')
    if (!this.admin && caches.length === 0 && dbs.length === 0)
      throw new TypeError('OnceKV: give an admin URL, or dbs and/or caches')
    this.timeoutMs = positive(opts.timeoutMs, DEFAULTS.timeoutMs, 'timeoutMs')
    this.attemptTimeoutMs = positive(
      opts.attemptTimeoutMs,
      Math.min(DEFAULTS.attemptTimeoutMs, this.timeoutMs),
      'attemptTimeoutMs',
    )
    this.retries = nonNegativeInt(opts.retries, DEFAULTS.retries, 'retries')
    this.concurrency = nonNegativeInt(opts.concurrency, DEFAULTS.concurrency, 'concurrency') || 1
    this.refreshMs = positive(opts.refreshMs, DEFAULTS.refreshMs, 'refreshMs')
    this.checkKeys = opts.checkKeys ?? true
    this.fetchImpl = opts.fetch ?? ((url, init) => fetch(url, init))
    const token = opts.token
    this.authHeaders = token ? { authorization: `Bearer ${token}` } : {}
    this.redact = token ? (text) => text.split(token).join('<token>') : (text) => text
    this.cacheTier.set(caches)
    this.dbTier.set(dbs)
    if (caches.length > 0 || dbs.length > 0) this.listedAt = now()
  }

  /** put writes value under key, once. It resolves to { created: true } when this call
   * created it and { created: false } when the identical value was already there; it throws
   * KeyConflictError when another value is there, InvalidKeyError, ValueTooLargeError,
   * UnavailableError or TimeoutError. */
  async put(key: string, value: Value, opts: CallOptions = {}): Promise<PutResult> {
    this.validate(key)
    const body = typeof value === 'string' ? encoder.encode(value) : value
    if (!(body instanceof Uint8Array)) throw new TypeError('value must be a string or Uint8Array')
    const path = keyPath(key)
    const call = new CallScope(opts.signal, positive(opts.timeoutMs, this.timeoutMs, 'timeoutMs'))
    try {
      const outcome = await this.withFailover('write', `put ${JSON.stringify(key)}`, call, {
        path,
        init: {
          method: 'PUT',
          // A copy-free view: fetch reads the bytes, it does not keep or detach them.
          body: body as Uint8Array & { readonly buffer: ArrayBuffer },
          headers: { 'content-type': 'application/octet-stream' },
        },
        answer: async (res, url): Promise<PutResult | Conflict> => {
          if (res.status === 201 || res.status === 200) {
            await res.arrayBuffer()
            return { created: res.status === 201 }
          }
          const err = await errorBodyOf(res, this.redact)
          if (res.status === 409) return { conflictAt: url, details: err }
          if (res.status === 400 || res.status === 413) throw inputError(res.status, err, 'value')
          throw failureOf(url, res.status, err)
        },
      })
      if (!('conflictAt' in outcome)) return outcome
      throw new KeyConflictError(
        key,
        await this.etagOf(path, outcome.conflictAt, call),
        outcome.details,
      )
    } finally {
      call.dispose()
    }
  }

  /** get reads key: its bytes, or undefined when the key has no value. */
  async get(key: string, opts: CallOptions = {}): Promise<Uint8Array | undefined> {
    this.validate(key)
    const call = new CallScope(opts.signal, positive(opts.timeoutMs, this.timeoutMs, 'timeoutMs'))
    try {
      return await this.withFailover('read', `get ${JSON.stringify(key)}`, call, {
        path: keyPath(key),
        init: { method: 'GET' },
        answer: async (res, url): Promise<Uint8Array | undefined> => {
          if (res.status === 200) return new Uint8Array(await res.arrayBuffer())
          const err = await errorBodyOf(res, this.redact)
          if (res.status === 404 && err.code === 1002) return undefined
          if (res.status === 400 || res.status === 413) throw inputError(res.status, err, 'key')
          throw failureOf(url, res.status, err)
        },
      })
    } finally {
      call.dispose()
    }
  }

  /** getString reads key as UTF-8 text (bytes that are not UTF-8 become U+FFFD), or
   * undefined when the key has no value. */
  async getString(key: string, opts: CallOptions = {}): Promise<string | undefined> {
    const bytes = await this.get(key, opts)
    return bytes === undefined ? undefined : decoder.decode(bytes)
  }

  /** has is true when key has a value (a HEAD request: the value is not transferred). */
  async has(key: string, opts: CallOptions = {}): Promise<boolean> {
    this.validate(key)
    const call = new CallScope(opts.signal, positive(opts.timeoutMs, this.timeoutMs, 'timeoutMs'))
    try {
      return await this.withFailover('read', `has ${JSON.stringify(key)}`, call, {
        path: keyPath(key),
        init: { method: 'HEAD' },
        answer: async (res, url) => {
          // A HEAD answer has no body: the code comes in a header. Only a 404 with code 1002
          // is "not found"; any other 404 (no such route: a URL that is not an oncekv key
          // API, a proxy without a matching location) is the node's failure.
          if (res.status === 200) return true
          const err = headerDetailsOf(res)
          if (res.status === 404 && err.code === 1002) return false
          if (res.status === 400 || res.status === 413) throw inputError(res.status, err, 'key')
          throw failureOf(url, res.status, err)
        },
      })
    } finally {
      call.dispose()
    }
  }

  /** putMany puts every entry, at most `concurrency` at a time, and resolves to the results
   * in the entries' order. It rejects with the first error and stops the others, or when its
   * signal aborts or batchTimeoutMs passes; putting the whole batch again is safe (identical
   * values are successes). */
  async putMany(
    entries: Iterable<readonly [string, Value]>,
    opts: ManyOptions = {},
  ): Promise<PutResult[]> {
    return this.many('putMany', [...entries], opts, ([key, value], call) =>
      this.put(key, value, call),
    )
  }

  /** getMany reads every key, at most `concurrency` at a time, and resolves to the values
   * (undefined: no value) in the keys' order. It rejects with the first error, or when its
   * signal aborts or batchTimeoutMs passes. */
  async getMany(
    keys: Iterable<string>,
    opts: ManyOptions = {},
  ): Promise<(Uint8Array | undefined)[]> {
    return this.many('getMany', [...keys], opts, (key, call) => this.get(key, call))
  }

  /** nodes is what the client knows about the nodes now. */
  nodes(): Nodes {
    const t = now()
    return {
      admin: this.admin,
      adminError: this.adminError,
      caches: this.cacheTier.info(t),
      dbs: this.dbTier.info(t),
      leader:
        this.leaderHint !== undefined && this.dbTier.has(this.leaderHint)
          ? this.leaderHint
          : undefined,
    }
  }

  /** refresh fetches the node lists from the admin now (no-op without an admin). It never
   * rejects: a failure is kept in nodes().adminError. */
  refresh(): Promise<void> {
    if (!this.admin) return Promise.resolve()
    this.refreshing ??= this.fetchLists(this.admin)
      .then(
        () => {
          this.adminError = undefined
        },
        (e: unknown) => {
          this.adminError = this.redact(describe(e))
        },
      )
      .finally(() => {
        this.refreshing = undefined
      })
    return this.refreshing
  }

  // ---------------------------------------------------------------- internals

  private validate(key: string): void {
    if (this.checkKeys) checkKey(key)
    else checkSendable(key)
  }

  /** withFailover runs one request against the nodes of a tier until an answer settles it. */
  private async withFailover<T>(
    kind: 'read' | 'write',
    what: string,
    call: CallScope,
    req: {
      path: string
      init: Pick<FetchLikeInit, 'method' | 'body'> & { readonly headers?: Record<string, string> }
      // answer turns a response into the result, throws a final OnceKVError, or throws a
      // NodeFailure to move on to the next node.
      answer: (res: FetchLikeResponse, url: string) => Promise<T>
    },
  ): Promise<T> {
    await this.ensureLists(call, what)
    const tried = new Set<string>()
    let rounds = 0
    let last: NodeFailure | undefined
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const targets = this.targets(kind)
      if (targets.length === 0) {
        throw new UnavailableError(
          `${what}: no ${kind === 'write' ? 'database member' : 'node'} is known` +
            (this.adminError ? ` (admin: ${this.adminError})` : ''),
        )
      }
      let target = targets.find((t) => !tried.has(t.url))
      if (target === undefined) {
        tried.clear()
        rounds++
        const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (rounds - 1))
        try {
          await sleep(ms * (0.5 + Math.random() / 2), call.signal)
        } catch {
          throw call.abortError(what, last)
        }
        target = this.targets(kind)[0]
        if (target === undefined) continue
      }
      tried.add(target.url)
      const attemptMs = Math.max(1, Math.min(this.attemptTimeoutMs, call.remaining()))
      const scope = new AttemptScope(call.signal, attemptMs)
      const started = now()
      try {
        const res = await this.fetchImpl(target.url + req.path, {
          ...req.init,
          headers: { ...this.authHeaders, ...req.init.headers },
          signal: scope.signal,
        })
        if (kind === 'write') this.noteLeader(res.headers.get(LEADER_HEADER))
        const result = await req.answer(res, target.url)
        target.tier.success(target.url, now() - started)
        return result
      } catch (e) {
        if (call.signal.aborted) throw call.abortError(what, last)
        if (e instanceof OnceKVError) {
          // A final answer about the request (conflict, bad key, too large): the node is fine.
          target.tier.success(target.url, now() - started)
          throw e
        }
        // An attempt the call's deadline cut short (given less than a whole attempt's time)
        // says less than the failure before it (a refused connection, an untrusted TLS
        // certificate), which stays the one reported.
        const cutShort = scope.timedOut && attemptMs < this.attemptTimeoutMs && last !== undefined
        if (!cutShort)
          last =
            e instanceof NodeFailure
              ? e
              : new NodeFailure(
                  target.url,
                  scope.timedOut
                    ? `no answer within ${msText(attemptMs)}`
                    : this.redact(describe(e)),
                )
        target.tier.failure(target.url, now())
        this.refreshSoon()
      } finally {
        scope.dispose()
      }
    }
    throw new UnavailableError(
      `${what}: ${this.retries + 1} attempts failed` +
        (last ? `; the last at ${last.url}: ${last.message}` : ''),
      last?.details,
    )
  }

  /** noteLeader takes the leader a follower's answer named (x-oncekv-leader) as the member
   * writes go to first, if it is one of the members this client knows (the same URL, as the
   * admin lists it or as given). A name it does not know (another address for the member, a
   * proxy in between) is never followed, and it clears the leader known before: that member
   * is no longer the leader, and writes go to the fastest member again. */
  private noteLeader(header: string | null): void {
    if (header === null) return
    const url = header.trim().replace(/\/+$/, '')
    this.leaderHint = this.dbTier.has(url) ? url : undefined
  }

  /** targets is where a call tries, in order: the healthy nodes fastest first (caches, then
   * members, for reads), then the paused ones; a write tries the leader first while it is
   * healthy (noteLeader). */
  private targets(kind: 'read' | 'write'): Target[] {
    const t = now()
    const db = this.dbTier.order(t)
    const of = (tier: NodeTier, urls: string[]): Target[] => urls.map((url) => ({ url, tier }))
    if (kind === 'write') {
      const hint = this.leaderHint
      const up =
        hint !== undefined && db.up.includes(hint)
          ? [hint, ...db.up.filter((u) => u !== hint)]
          : db.up
      return [...of(this.dbTier, up), ...of(this.dbTier, db.down)]
    }
    const cache = this.cacheTier.order(t)
    return [
      ...of(this.cacheTier, cache.up),
      ...of(this.dbTier, db.up),
      ...of(this.cacheTier, cache.down),
      ...of(this.dbTier, db.down),
    ]
  }

  /** ensureLists waits for the admin's lists when there are none yet; otherwise it only
   * starts a background refresh when they are old. */
  private async ensureLists(call: CallScope, what: string): Promise<void> {
    if (!this.admin) return
    if (this.listedAt !== -Infinity) {
      if (now() - this.listedAt > this.refreshMs) this.refreshSoon(0)
      return
    }
    try {
      await untilAborted(this.refresh(), call.signal)
    } catch {
      throw call.abortError(what, undefined)
    }
    if (this.listedAt === -Infinity) {
      throw new UnavailableError(
        `${what}: cannot get the node lists from the admin at ${this.admin}: ${this.adminError ?? 'no answer'}`,
      )
    }
  }

  /** refreshSoon starts a background refresh unless one ran less than minGapMs ago. The
   * refresh never rejects (its failure is kept in adminError), so nothing floats unhandled. */
  private refreshSoon(minGapMs = REFRESH_ON_FAILURE_MS): void {
    if (!this.admin || this.refreshing) return
    const t = now()
    if (t - this.refreshStartedAt < minGapMs) return
    void this.refresh()
  }

  private async fetchLists(admin: string): Promise<void> {
    this.refreshStartedAt = now()
    const list = async (path: string): Promise<string[]> => {
      const res = await this.fetchImpl(admin + path, {
        method: 'GET',
        headers: this.authHeaders,
        signal: AbortSignal.timeout(this.attemptTimeoutMs),
      })
      if (res.status !== 200) {
        await res.arrayBuffer().catch(() => undefined)
        throw new Error(`GET ${path} answered ${res.status}`)
      }
      const body: unknown = await res.json()
      if (!Array.isArray(body) || !body.every((u) => typeof u === 'string'))
        throw new Error(`GET ${path} did not answer a list of URLs`)
      return body.map((u: string) => normalizeUrl(u, path))
    }
    const [caches, dbs] = await Promise.all([list('/caches'), list('/dbs')])
    // An admin that has just started knows no node yet: an empty list does not replace a
    // list the client already has.
    if (caches.length > 0 || this.cacheTier.size === 0) this.cacheTier.set(caches)
    if (dbs.length > 0 || this.dbTier.size === 0) this.dbTier.set(dbs)
    this.listedAt = now()
  }

  /** etagOf reads the ETag of the value a conflict found: from the member that reported it,
   * else from another member, within what is left of the call's deadline. */
  private async etagOf(path: string, first: string, call: CallScope): Promise<string | undefined> {
    const urls = [first, ...this.targets('write').map((t) => t.url)].filter(
      (u, i, all) => all.indexOf(u) === i,
    )
    for (const url of urls.slice(0, 3)) {
      if (call.signal.aborted) return undefined
      const scope = new AttemptScope(call.signal, Math.min(this.attemptTimeoutMs, call.remaining()))
      try {
        const res = await this.fetchImpl(url + path, {
          method: 'HEAD',
          headers: this.authHeaders,
          signal: scope.signal,
        })
        const etag = res.headers.get('etag')
        if (res.status === 200 && etag) return etag
      } catch {
        // Try the next member; the conflict stands without the ETag.
      } finally {
        scope.dispose()
      }
    }
    return undefined
  }

  /** many runs fn over items with bounded concurrency. The batch has one scope (the caller's
   * signal and batchTimeoutMs); each call gets its own controller, so the caller's signal has
   * one listener however many calls run. The first failure, the caller's abort or the batch's
   * deadline aborts the calls in flight, and no call starts after it. many settles only once
   * every call it started has settled: when it rejects, nothing of the batch still runs. */
  private async many<I, O>(
    what: 'putMany' | 'getMany',
    items: I[],
    opts: ManyOptions,
    fn: (item: I, call: CallOptions) => Promise<O>,
  ): Promise<O[]> {
    const limit = Math.floor(positive(opts.concurrency, this.concurrency, 'concurrency'))
    if (limit < 1) throw new RangeError('OnceKV: concurrency must be at least 1')
    const batchMs = positive(opts.batchTimeoutMs, Infinity, 'batchTimeoutMs')
    const batch = new CallScope(opts.signal, batchMs)
    const running = new Set<AbortController>()
    const stop = (): void => {
      for (const c of running) c.abort(STOPPED)
    }
    batch.signal.addEventListener('abort', stop, { once: true })
    const out = new Array<O>(items.length)
    let next = 0
    let done = 0
    let failed: { error: unknown } | undefined
    const worker = async (): Promise<void> => {
      while (failed === undefined && !batch.signal.aborted && next < items.length) {
        const i = next++
        const ctl = new AbortController()
        running.add(ctl)
        try {
          out[i] = await fn(items[i] as I, { signal: ctl.signal, timeoutMs: opts.timeoutMs })
          done++
        } catch (e) {
          // A call that failed because the batch was stopped is not the batch's error.
          if (failed === undefined && !batch.signal.aborted) {
            failed = { error: e }
            stop()
          }
        } finally {
          running.delete(ctl)
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
    } finally {
      batch.signal.removeEventListener('abort', stop)
      batch.dispose()
    }
    if (failed !== undefined) throw failed.error
    if (done < items.length) {
      // Only the batch's scope stops workers early without a failure.
      if (batch.signal.reason === DEADLINE)
        throw new TimeoutError(
          `${what}: ${done} of ${items.length} calls done when the batch's ${msText(batchMs)} ran out`,
        )
      throw batch.abortError(what, undefined)
    }
    return out
  }
}

// ------------------------------------------------------------------ call scopes

/** CallScope is one call's (or one batch's) deadline and the caller's signal, as one signal. */
class CallScope {
  private readonly controller = new AbortController()
  private readonly end: number
  private readonly timer: ReturnType<typeof setTimeout> | undefined
  private readonly onAbort: () => void

  /** timeoutMs may be Infinity: no deadline (a batch without batchTimeoutMs). */
  constructor(
    private readonly user: AbortSignal | undefined,
    private readonly timeoutMs: number,
  ) {
    this.end = now() + timeoutMs
    this.onAbort = () => this.controller.abort(this.user?.reason)
    if (this.user?.aborted) {
      this.onAbort()
    } else {
      this.user?.addEventListener('abort', this.onAbort, { once: true })
      if (Number.isFinite(timeoutMs))
        this.timer = setTimeout(() => this.controller.abort(DEADLINE), timeoutMs)
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  /** remaining is the time left before the deadline, in ms. */
  remaining(): number {
    return Math.max(0, this.end - now())
  }

  /** abortError is what the call rejects with once its signal aborted: TimeoutError for the
   * deadline or a timeout signal, else the caller's reason itself. A TimeoutError keeps what
   * the last failed attempt learned: its message, and the server's status, code, error name
   * and message when a server answered it (a 503 "no leader", say). */
  abortError(what: string, last: NodeFailure | undefined): unknown {
    const reason: unknown = this.controller.signal.reason
    const lastPart = last ? `; the last failure: ${last.url}: ${last.message}` : ''
    const details = last?.details ?? {}
    if (reason === DEADLINE)
      return new TimeoutError(
        `${what}: no answer within ${msText(this.timeoutMs)}${lastPart}`,
        details,
      )
    if (isTimeoutReason(reason))
      return new TimeoutError(`${what}: timed out (the signal's timeout)${lastPart}`, {
        ...details,
        cause: reason,
      })
    return reason
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.user?.removeEventListener('abort', this.onAbort)
  }
}

/** AttemptScope is one attempt's timeout, tied to its call. */
class AttemptScope {
  private readonly controller = new AbortController()
  private readonly timer: ReturnType<typeof setTimeout>
  private readonly onAbort: () => void
  timedOut = false

  constructor(
    private readonly parent: AbortSignal,
    ms: number,
  ) {
    this.onAbort = () => this.controller.abort(parent.reason)
    if (parent.aborted) this.onAbort()
    else parent.addEventListener('abort', this.onAbort, { once: true })
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort(DEADLINE)
    }, ms)
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  dispose(): void {
    clearTimeout(this.timer)
    this.parent.removeEventListener('abort', this.onAbort)
  }
}

// ------------------------------------------------------------------ helpers

function now(): number {
  return performance.now()
}

/** msText says a duration in whole milliseconds ("595 ms"), for messages. */
function msText(n: number): string {
  return `${Math.round(n)} ms`
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** untilAborted waits for p, or rejects when signal aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  let onAbort: () => void = () => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort))
}

function isTimeoutReason(reason: unknown): boolean {
  return (
    typeof reason === 'object' &&
    reason !== null &&
    (reason as { name?: unknown }).name === 'TimeoutError'
  )
}

/** describe names a failure briefly: the network cause when there is one. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = (e as { cause?: unknown }).cause
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === 'string' ? `${e.message} (${code})` : `${e.message} (${cause.message})`
  }
  return e.message
}

const CODES = new Set<number>([1001, 1002, 1003, 1004, 1005, 1006])

/** errorBodyOf reads what an error response said: its status, and the code, machine name and
 * message (redacted) of its JSON body when it has one. */
async function errorBodyOf(
  res: FetchLikeResponse,
  redact: (text: string) => string,
): Promise<ErrorDetails> {
  const body: unknown = await res.json().catch(() => undefined)
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  return {
    status: res.status,
    code: typeof b.code === 'number' && CODES.has(b.code) ? (b.code as ErrorCode) : undefined,
    error: typeof b.error === 'string' ? b.error : undefined,
    serverMessage: typeof b.message === 'string' ? redact(b.message) : undefined,
  }
}

/** CODE_HEADER is where every oncekv error response carries its numeric code, a HEAD's too. */
const CODE_HEADER = 'x-oncekv-code'
// A follower's answer to a write names the leader's URL in it (see noteLeader).
const LEADER_HEADER = 'x-oncekv-leader'

/** headerDetailsOf reads what a bodiless error response (a HEAD's) said: its status and the
 * code of its x-oncekv-code header, when it has one. */
function headerDetailsOf(res: FetchLikeResponse): ErrorDetails {
  const code = Number(res.headers.get(CODE_HEADER))
  return { status: res.status, code: CODES.has(code) ? (code as ErrorCode) : undefined }
}

/** inputError is the final error of a 400 or 413: about the key, or (for puts) the value. */
function inputError(status: number, err: ErrorDetails, subject: 'key' | 'value'): OnceKVError {
  const message = err.serverMessage ?? `the server refused the ${subject} (HTTP ${status})`
  // Reads send nothing but the key; a put's 400 is about its key, and its 413 about the key
  // only when the message says so ("key is 1100 bytes; ...").
  if (subject === 'key' || status === 400 || /^key\b/i.test(message))
    return new InvalidKeyError(message, err)
  return new ValueTooLargeError(message, err)
}

function failureOf(url: string, status: number, err: ErrorDetails): Error {
  const details: ErrorDetails = { ...err, status }
  const message = `HTTP ${status}${err.serverMessage ? `: ${err.serverMessage}` : ''}`
  // A refusal of the request itself (401, 403, 405, 415…) is the same on every node: final.
  // A 404 that is not "key not found" (a wrong URL), 408 and 429 are the node's: move on.
  if (status >= 400 && status < 500 && status !== 404 && status !== 408 && status !== 429)
    return new OnceKVError(`${url}: ${message}`, err.code ?? 1001, details)
  return new NodeFailure(url, message, details)
}

function normalizeUrl(u: string, name: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(u) ? u : `http://${u}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new TypeError(`OnceKV: ${name}: ${JSON.stringify(u)} is not a URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`OnceKV: ${name}: ${JSON.stringify(u)} is not an http(s) URL`)
  return withScheme.replace(/\/+$/, '')
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v)))
    throw new RangeError(`OnceKV: ${name} must be a positive number`)
  return v
}

function nonNegativeInt(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RangeError(`OnceKV: ${name} must be a non-negative integer`)
  return v
}
