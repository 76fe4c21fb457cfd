// The database member's HTTP API (DESIGN.md's table): create-once writes on any member (a
// follower forwards to the leader itself), reads on any member (a local hit answers at once;
// a miss is confirmed by ReadIndex before 404), membership, stats, metrics and health.
// It composes the Replica with HTTP; Raft and storage stay behind the Replica.
import { validateHeaderValue, type IncomingMessage, type ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { Pool } from 'undici'
import { NONE } from '../raft/index.ts'
import { bearerToken, type Security } from '../security/index.ts'
import { formatHostPort, parseHostPort } from '../transport/host-port.ts'
import { ValueCorruptError, type MemberAddress } from '../storage/index.ts'
import {
  BadRequestError,
  checkValueSize,
  InternalError,
  errorFromBody,
  ForbiddenError,
  KeyConflictError,
  MemberConflictError,
  MemberNotFoundError,
  KeyNotFoundError,
  RemovedError,
  NoLeaderError,
  StorageUnavailableError,
  OutcomeUnknownError,
  jsonValueBytes,
  keyBytes,
  KEY_BYTES_MAX,
  memberUrl,
  UnauthorizedError,
  UnavailableError,
  UnsupportedMediaTypeError,
  withoutStack,
  type ClusterResponse,
  type PutResponse,
} from '../protocol/index.ts'
import { createApp, splitHostPort } from '../http/app.ts'
import { Auth, authHeaders, type RouteClass } from '../http/auth.ts'
import { httpLimits, type HttpLimits } from '../http/limits.ts'
import { serverTlsOptions, serving, type TlsConfig } from '../security/index.ts'
import { httpScheme, poolTlsOptions, processFetch } from '../security/http-client.ts'
import { refuseMethods, sendError, sendErrorFast, toOnceKvError } from '../http/errors.ts'
import {
  etagOf,
  getResponseOf,
  KeyEtags,
  rawKeyOfFastPath,
  sendRawValue,
  sendRawValueFast,
  valueCacheControl,
} from '../http/values.ts'
import { WsHub, sameOrigin } from '../http/ws-hub.ts'
import { NotLeaderError, ProposalLostError, type PutResult, type Replica } from './replica.ts'
import { collectStats, DbMetrics } from './stats.ts'

/** DbServerOptions configures the HTTP API of a member. */
export interface DbServerOptions {
  readonly replica: Replica
  readonly logger: Logger
  readonly maxValueBytes: number
  /** maxKeyBytes bounds keys (at most the protocol's KEY_BYTES_MAX, 1024). */
  readonly maxKeyBytes?: number
  /** writeTimeoutMs bounds a write end to end, retries and forwarding included. */
  readonly writeTimeoutMs?: number
  /** readTimeoutMs bounds the ReadIndex confirmation of a miss. */
  readonly readTimeoutMs?: number
  /** security holds the tokens that protect the routes (none: all open). */
  readonly security?: Security
  /** tls: serve HTTPS (and call other members over it, trusting its CA). */
  readonly tls?: TlsConfig
  /** limits bound what clients may send (defaults: HTTP_LIMITS_DEFAULT). */
  readonly limits?: Partial<HttpLimits>
}

/** DAMAGED stands for a stored value that fails its checksum (storedValue). */
const DAMAGED = Symbol('damaged')

const FORWARD_HEADER = 'x-oncekv-forwarded-by'
// The header of a follower's answer to a write that names the leader's HTTP URL: a client
// sends its next writes there, saving the forward (a round trip and the follower's work).
const LEADER_HEADER = 'x-oncekv-leader'

/** SERVED_WHEN_REMOVED are the first path segments a removed member still answers. */
const SERVED_WHEN_REMOVED = new Set(['ping', 'healthz', 'stats', 'metrics', 'cluster', 'ws'])

/** DRAIN_MS is how long a stopping member lets requests in flight finish. */
const DRAIN_MS = 5_000

/** SKIP_READ_INDEX is a deliberate bug for the chaos tests (test/chaos) to prove that their
 * checker sees stale reads: with ONCEKV_TEST_ONLY_BUG=skip-read-index a miss answers 404 at
 * once, without confirming with the leader. Never set it anywhere else. */
const SKIP_READ_INDEX = process.env.ONCEKV_TEST_ONLY_BUG === 'skip-read-index'

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return (
    a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)
  )
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** DbServer is one member's HTTP server. */
export class DbServer {
  readonly app: FastifyInstance
  private readonly replica: Replica
  private readonly maxValueBytes: number
  private readonly maxKeyBytes: number
  private readonly writeTimeoutMs: number
  private readonly readTimeoutMs: number
  private readonly metrics: DbMetrics
  private readonly ws: WsHub
  private readonly startedAt = Date.now()
  private statsTimer: NodeJS.Timeout | undefined
  private draining = false
  // Key reads answered (GET /key, /i/key, /keys), how many of them were 404, and writes
  // answered (created, already there or conflict), forwarded ones on both members.
  private readonly counters = {
    reads: 0,
    notFound: 0,
    writes: 0,
    writesInFlight: 0,
    corruptValues: 0,
  }
  private readonly logger: Logger
  // Keys whose damaged value was logged (once each, a bounded number).
  private readonly corruptLogged = new Set<string>()
  // The ETags of the keys the fast path answered lately (see KeyEtags for the bounds).
  private readonly etags = new KeyEtags(16_384)
  // Keep-alive pools to other members, for forwarded writes.
  private readonly pools = new Map<string, Pool>()
  private readonly auth: Auth
  // The Cache-Control of values: private when reads need a token (valueCacheControl).
  private readonly valueCacheControl: string
  private readonly security: Security | undefined
  // The credential a forwarded write carries to the leader.
  private readonly forwardAuth: Record<string, string>
  private readonly tls: TlsConfig | undefined
  // fetch forwards to the leader: over TLS it trusts --tls-ca.
  private readonly fetch: typeof globalThis.fetch
  /** scheme is the one of this member's HTTP API, and so of every member's (memberUrl). */
  readonly scheme: 'http' | 'https'
  // leaderUrl's answer, for the leader and the address book it was worked out from.
  private leaderUrlOf: { id: string; book: object; url: string | undefined } | undefined

  constructor(opts: DbServerOptions) {
    this.replica = opts.replica
    this.logger = opts.logger
    this.maxValueBytes = opts.maxValueBytes
    this.maxKeyBytes = Math.min(opts.maxKeyBytes ?? KEY_BYTES_MAX, KEY_BYTES_MAX)
    this.tls = opts.tls
    this.fetch = processFetch(opts.tls)
    this.scheme = httpScheme(opts.tls)
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 10_000
    this.readTimeoutMs = opts.readTimeoutMs ?? 3_000
    if (SKIP_READ_INDEX)
      opts.logger.warn(
        { event: 'test_only_bug', bug: 'skip-read-index' },
        'DELIBERATE BUG: misses answer 404 without ReadIndex (ONCEKV_TEST_ONLY_BUG); reads may be stale',
      )
    this.metrics = new DbMetrics(() => this.stats())
    this.security = opts.security
    this.auth = new Auth(opts.security)
    this.valueCacheControl = valueCacheControl(this.auth.protects('read'))
    this.forwardAuth = authHeaders(opts.security, 'write')
    this.app = createApp({
      logger: opts.logger,
      // JSON bodies may escape every byte of a value as \u00XX: allow for it, then check the
      // decoded size. Raw bodies get the exact limit on their route.
      bodyLimit: this.maxValueBytes * 6 + 8192,
      draining: () => this.draining,
      fastPath: (req, res) => this.fastRead(req, res) || this.fastPut(req, res),
      ...(serving(opts.tls) ? { tls: serverTlsOptions(opts.tls, false) } : {}),
      limits: opts.limits,
    })
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) =>
      done(null, body),
    )
    if (this.auth.on) this.app.addHook('onRequest', this.auth.hook(dbRouteClass))
    this.routes()
    this.ws = new WsHub(this.app.server, {
      checkOrigin: sameOrigin(),
      authorize: (_path, req) => this.auth.problem('read', req.headers),
      maxPayload: httpLimits(opts.limits).maxWsMessageBytes,
    })
    this.ws.route('/ws/stats', (ws) => ws.send(JSON.stringify(this.stats())))
  }

  /** listen starts serving on host:port. */
  async listen(address: string): Promise<void> {
    const [host, port] = splitHostPort(address)
    await this.app.listen({ host, port })
    this.statsTimer = setInterval(() => {
      if (this.ws.clients('/ws/stats') > 0)
        this.ws.broadcast('/ws/stats', JSON.stringify(this.stats()))
    }, 1000)
  }

  /** close stops accepting requests, lets requests in flight finish, and closes. */
  async close(): Promise<void> {
    this.draining = true
    clearInterval(this.statsTimer)
    this.ws.close()
    // Requests in flight get a few seconds to finish; then their connections are closed, so
    // a stop is bounded whatever a client or a stuck request does.
    const force = setTimeout(() => {
      this.app.log.warn(
        { event: 'drain_timeout', ms: DRAIN_MS },
        'requests still in flight at shutdown; closing their connections',
      )
      this.app.server.closeAllConnections()
    }, DRAIN_MS)
    try {
      await this.app.close()
    } finally {
      clearTimeout(force)
    }
    await Promise.all([...this.pools.values()].map((p) => p.destroy()))
  }

  /** stats is the member's stats object (GET /stats). */
  stats(): ReturnType<typeof collectStats> {
    return collectStats(this.replica, this.startedAt, this.counters)
  }

  private routes(): void {
    const app = this.app
    // A member removed from the cluster serves no data and takes no membership requests
    // (503 "removed": clients move on); it still describes itself (stats, cluster, health).
    app.addHook('onRequest', (req, reply, done) => {
      if (!this.replica.isRemoved()) return done()
      const path = (req.url.split('?')[0] ?? '').split('/')[1] ?? ''
      if (SERVED_WHEN_REMOVED.has(path)) return done()
      void sendError(reply, new RemovedError())
    })
    app.get('/ping', async (_req, reply) => reply.type('text/plain').send('pong'))
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (_req, reply) => {
      const storageError = this.replica.storageError()
      if (storageError !== undefined)
        return sendError(reply, new StorageUnavailableError(`cannot write: ${storageError}`))
      const s = this.replica.status()
      const ready = !this.draining && s.leader !== NONE && s.applied >= s.commit - 1000
      if (!ready)
        return sendError(
          reply,
          new UnavailableError(s.leader === NONE ? 'no leader' : 'catching up'),
        )
      return { status: 'ready', leader: s.leader }
    })
    app.get('/stats', async () => this.stats())
    app.get('/metrics', async (_req, reply) =>
      reply.type(this.metrics.contentType).send(await this.metrics.render()),
    )
    app.get('/cluster', async () => this.cluster())

    app.post('/key', async (req, reply) => {
      const { key, value } = this.parseJsonPut(req)
      const result = await this.timed('post_key', () => this.putAnywhere(key, value))
      this.counters.writes++
      if (result === 'conflict') throw new KeyConflictError(key)
      const body: PutResponse = { code: 1000, created: result === 'created' }
      const leader = this.leaderUrl()
      if (leader !== undefined) void reply.header(LEADER_HEADER, leader)
      return reply.send(body)
    })
    const getJson = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const key = (req.params as { key: string }).key
      const value = await this.read(key, req)
      return reply.send(getResponseOf(key, value))
    }
    app.get('/key/:key', getJson)
    app.get('/i/key/:key', getJson)

    app.get('/keys/*', async (req, reply) => {
      const key = (req.params as { '*': string })['*']
      return sendRawValue(req, reply, await this.read(key, req), this.valueCacheControl, false)
    })

    // Other methods on the key routes get a 405 naming those the route takes (a value, once
    // written, is never changed or deleted).
    const writeOnce = (route: string, allow: string): string =>
      `${route} takes ${allow}: a key is written once and never changed or deleted`
    refuseMethods(
      app,
      '/keys/*',
      ['POST', 'DELETE', 'PATCH'],
      'GET, HEAD, PUT',
      writeOnce('/keys/<key>', 'GET, HEAD, PUT'),
    )
    for (const url of ['/key/:key', '/i/key/:key'])
      refuseMethods(
        app,
        url,
        ['PUT', 'POST', 'DELETE', 'PATCH'],
        'GET, HEAD',
        writeOnce(url.replace(':key', '<key>'), 'GET, HEAD'),
      )

    // Raw writes take the body's bytes as they are, whatever the content type says.
    app.register(async (raw) => {
      raw.removeAllContentTypeParsers()
      raw.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
      raw.put('/keys/*', { bodyLimit: this.maxValueBytes }, async (req, reply) => {
        const key = (req.params as { '*': string })['*']
        const kb = keyBytes(key, this.maxKeyBytes)
        const value = rawBody(req.body)
        checkValueSize(value.byteLength, this.maxValueBytes)
        const result = await this.timed('put_keys', () => this.putAnywhere(key, value, kb))
        this.counters.writes++
        if (result === 'conflict') throw new KeyConflictError(key)
        const leader = this.leaderUrl()
        if (leader !== undefined) void reply.header(LEADER_HEADER, leader)
        return reply
          .code(result === 'created' ? 201 : 200)
          .header('etag', etagOf(value, false))
          .send(putResponseOf(result))
      })
    })

    app.post('/join', async (req) => {
      // A member without the cluster secret could not talk to the others (the transport
      // refuses it) and would stay a learner for good: with a secret, joining takes that
      // secret alone, whatever token opened the route. Checked here, on the member asked,
      // before a forward to the leader carries this member's own credential.
      const secret = this.security?.cluster
      if (secret) {
        const token = bearerToken(req.headers.authorization)
        if (!secret.matches(token))
          throw token === undefined
            ? new UnauthorizedError('joining this cluster needs its cluster secret (Bearer)')
            : new ForbiddenError(
                'joining this cluster needs its cluster secret: give the joining member the same ONCEKV_CLUSTER_SECRET or --cluster-secret-file',
              )
      }
      const body = objectBody(req.body)
      const id = stringField(body, 'id')
      const http = addressField(body, 'http')
      const raft = addressField(body, 'raft')
      const leaderAnswer = await this.onLeader(req, '/join', body, async () => {
        const s = this.replica.status()
        if (s.conf.voters.includes(id) || s.conf.learners.includes(id)) {
          // Only a retry of a join that never received anything may pass again: a member
          // that holds state (a voter above all) and comes back empty has lost what Raft
          // relies on, and must be removed before it joins again.
          const known = this.replica.memberAddresses()[id]
          const match = s.progress.get(id)?.match ?? 0
          if (
            known &&
            known.raft === raft &&
            known.http === http &&
            s.conf.learners.includes(id) &&
            match === 0
          )
            return
          throw new MemberConflictError(
            `member ${id} is already in the cluster; remove it first (POST /remove) to join it again with an empty data directory`,
          )
        }
        // A new member at another's address would take that member's place in every peer's
        // book: Raft messages meant for one would reach the other.
        const book = this.replica.memberAddresses()
        for (const other of [...s.conf.voters, ...s.conf.learners]) {
          const held = book[other]
          if (held === undefined) continue
          for (const [field, address] of [
            ['http', http],
            ['raft', raft],
          ] as const) {
            const as = sameAddress(address, held.http)
              ? 'http'
              : sameAddress(address, held.raft)
                ? 'raft'
                : undefined
            if (as !== undefined)
              throw new MemberConflictError(
                `${field} address ${address} is already member ${other}'s ${as} address; a new member needs addresses of its own (remove ${other} first to reuse them)`,
              )
          }
        }
        await this.replica.changeMembership({
          type: 'addLearner',
          node: id,
          context: JSON.stringify({ http, raft }),
        })
      })
      // Asked on a follower, the leader's book: it has applied the change, this member may
      // not have yet (the joining member learns its peers from this list).
      const members = addressBookOf(leaderAnswer) ?? this.replica.memberAddresses()
      return { code: 1000, id, suffrage: 'learner', members }
    })
    app.post('/remove', async (req) => {
      const body = objectBody(req.body)
      const id = stringField(body, 'id')
      await this.onLeader(req, '/remove', body, async () => {
        const s = this.replica.status()
        if (!s.conf.voters.includes(id) && !s.conf.learners.includes(id))
          throw new MemberNotFoundError(`${id} is not a member of the cluster`)
        if (s.conf.voters.length === 1 && s.conf.voters[0] === id)
          throw new BadRequestError('cannot remove the last voter')
        await this.replica.changeMembership({ type: 'remove', node: id })
      })
      return { code: 1000, id, removed: true }
    })
    app.post('/transfer-leader', async (req) => {
      const body = objectBody(req.body)
      const to = stringField(body, 'id')
      await this.onLeader(req, '/transfer-leader', body, async () => {
        const s = this.replica.status()
        if (!s.conf.voters.includes(to)) throw new BadRequestError(`${to} is not a voter`)
        if (to === this.replica.id) return
        if (!(await this.replica.transferLeadership(to)))
          throw new UnavailableError('the transfer did not finish in time')
      })
      return { code: 1000, leader: to }
    })
  }

  private parseJsonPut(req: FastifyRequest): { key: string; value: Uint8Array } {
    const type = String(req.headers['content-type'] ?? '')
    if (!type.startsWith('application/json')) {
      throw new UnsupportedMediaTypeError(
        'POST /key takes application/json: {"key": "...", "value": "..."}',
      )
    }
    const body = objectBody(req.body)
    const key = body.key
    keyBytes(key, this.maxKeyBytes)
    const value = jsonValueBytes(body.value)
    checkValueSize(value.byteLength, this.maxValueBytes)
    return { key: key as string, value }
  }

  private cluster(): ClusterResponse {
    const s = this.replica.status()
    const book = this.replica.memberAddresses()
    const members = [
      ...s.conf.voters.map((id) => [id, 'voter'] as const),
      ...s.conf.learners.map((id) => [id, 'learner'] as const),
    ].map(([id, suffrage]) => ({
      id,
      http: book[id]?.http ?? '',
      raft: book[id]?.raft ?? '',
      suffrage,
      leader: id === s.leader,
    }))
    return { id: this.replica.id, leader: s.leader, term: s.term, applied: s.applied, members }
  }

  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const end = this.metrics.startTimer(op)
    try {
      return await fn()
    } finally {
      end()
    }
  }

  /**
   * putAnywhere creates key on whichever member leads: here if this member leads, else by
   * forwarding to the leader. It retries across leader changes until the deadline: a retry
   * is safe because an identical re-put is a success.
   */
  private async putAnywhere(
    key: string,
    value: Uint8Array,
    kb = keyBytes(key, this.maxKeyBytes),
  ): Promise<PutResult> {
    // Counted until the last retry ends: a write may still take effect after its client
    // gave up, until then (writes_in_flight in /stats).
    this.counters.writesInFlight++
    try {
      return await this.putAttempts(key, value, kb)
    } finally {
      this.counters.writesInFlight--
    }
  }

  private async putAttempts(key: string, value: Uint8Array, kb: Uint8Array): Promise<PutResult> {
    const deadline = Date.now() + this.writeTimeoutMs
    // Built only when needed: an Error captures a stack trace, which costs on every write.
    let lastError: Error | undefined
    while (Date.now() < deadline) {
      if (this.replica.isRemoved()) throw new RemovedError()
      // Immutable values: whatever is here is committed, so it answers at once. A copy here
      // that fails its checksum cannot answer: the leader's copy does (a follower forwards).
      const existing = this.storedValue(kb)
      if (existing instanceof Uint8Array) return sameBytes(existing, value) ? 'exists' : 'conflict'
      const s = this.replica.status()
      if (existing === DAMAGED && s.role === 'leader') {
        // Applying the write would meet the damaged copy, which stops the member.
        throw new UnavailableError(
          'the value of this key is damaged on the leader (it fails its checksum), so the ' +
            'write cannot be checked against it here; retry once another member leads',
        )
      }
      try {
        if (s.role === 'leader') return await this.replica.put(kb, value)
        // No leader while this member's own disk refuses writes: most likely the same is
        // true of the others (one disk, or every disk, full), and that is the answer.
        if (s.leader === NONE && this.replica.storageError() !== undefined)
          throw this.replica.storageUnavailable()
        // With no leader for longer than an election takes, no quorum is reachable from here:
        // answer now (NoLeaderError) rather than at the end of the write's deadline.
        const leader = await this.replica.waitForLeader(
          Math.min(deadline, this.replica.noLeaderDeadline()),
        )
        if (leader === this.replica.id) continue
        // Through Raft (batched with the other writes passed on), unless this member's disk
        // refuses writes (it could not apply the entry to learn the outcome) or its copy of
        // the key is damaged (applying any entry of that key would meet it): the leader
        // answers those over HTTP, from its own copy.
        if (this.replica.storageError() === undefined && existing !== DAMAGED)
          return await this.replica.forwardPut(kb, value)
        return await this.forwardPut(leader, key, value, deadline)
      } catch (e) {
        // The leader's disk refuses writes: final for this request (the leader may change
        // soon, and the client's retry will find it).
        if (e instanceof StorageUnavailableError) throw e
        // This member knows no leader: a write it proposed lost its leader (the outcome is
        // unknown), or none was elected in time. Either answer is final here.
        if (
          (e instanceof OutcomeUnknownError || e instanceof NoLeaderError) &&
          this.replica.status().leader === NONE
        )
          throw e
        if (
          e instanceof NotLeaderError ||
          e instanceof ProposalLostError ||
          e instanceof UnavailableError ||
          isNetworkError(e)
        ) {
          lastError =
            e instanceof UnavailableError
              ? e
              : new UnavailableError(`write failed (${(e as Error).message}); retrying is safe`)
          await sleep(50)
          continue
        }
        throw e
      }
    }
    throw lastError ?? new UnavailableError('the write did not complete in time; retrying is safe')
  }

  private async forwardPut(
    leader: string,
    key: string,
    value: Uint8Array,
    deadline: number,
  ): Promise<PutResult> {
    const addr = this.replica.memberAddresses()[leader]
    if (!addr) throw new UnavailableError(`leader ${leader} has no known address yet`)
    // A leader that stops answering (it crashed, hangs, or lost its quorum) is given up an
    // election timeout after this member stops following it, not at the write's deadline. (Not
    // at once: a leader that handed over answers its writes in flight a moment later.)
    const abort = new AbortController()
    let abortTimer: NodeJS.Timeout | undefined
    const unwatch = this.replica.watchLeader(() => {
      abortTimer = setTimeout(() => abort.abort(), this.replica.electionTimeoutMs())
    })
    const res = await this.poolFor(addr.http)
      .request({
        signal: abort.signal,
        path: `/keys/${encodeURIComponent(key)}`,
        method: 'PUT',
        body: value,
        headers: {
          'content-type': 'application/octet-stream',
          [FORWARD_HEADER]: this.replica.id,
          ...this.forwardAuth,
        },
        headersTimeout: Math.max(1, deadline - Date.now()),
        bodyTimeout: Math.max(1, deadline - Date.now()),
      })
      .catch((e: unknown) => {
        // The leader is down or went away mid-request: the write may or may not have
        // applied, and retrying (here, against whoever leads next) is safe.
        throw new UnavailableError(
          abort.signal.aborted
            ? `the leader ${leader} was lost while it handled the write`
            : `could not reach the leader ${leader}: ${(e as Error).message}`,
        )
      })
      .finally(() => {
        unwatch()
        clearTimeout(abortTimer)
      })
    if (res.statusCode === 201 || res.statusCode === 200) {
      await res.body.dump()
      return res.statusCode === 201 ? 'created' : 'exists'
    }
    const body: unknown = await res.body.json().catch(() => ({}))
    if (res.statusCode === 409) return 'conflict'
    throw errorFromBody(res.statusCode, body, key)
  }

  /** poolFor is the keep-alive connection pool to a member's HTTP address. */
  private poolFor(http: string): Pool {
    let pool = this.pools.get(http)
    if (!pool) {
      pool = new Pool(memberUrl(http, this.scheme), {
        connections: 64,
        ...poolTlsOptions(this.tls, false),
      })
      this.pools.set(http, pool)
    }
    return pool
  }

  /** read returns the value of key; a miss is confirmed by ReadIndex unless stale is asked. */
  private async read(key: string, req: FastifyRequest): Promise<Uint8Array> {
    const kb = keyBytes(key, this.maxKeyBytes)
    const consistency = (req.query as Record<string, unknown>).consistency
    if (consistency !== undefined && consistency !== 'stale' && consistency !== 'linearizable') {
      throw new BadRequestError('consistency must be "stale" or "linearizable"')
    }
    this.counters.reads++
    const local = this.localValue(kb)
    if (local) return local
    if (consistency !== 'stale' && !SKIP_READ_INDEX) {
      await this.timed('read_index', () => this.replica.readBarrier(this.readTimeoutMs))
      const after = this.localValue(kb)
      if (after) return after
    }
    this.counters.notFound++
    throw new KeyNotFoundError(key)
  }

  /** localValue is the value stored here under key. A value that fails its checksum is
   * never served: the read answers 503 (another member has a good copy; the caches fail over
   * to it). */
  private localValue(key: Uint8Array): Uint8Array | undefined {
    const value = this.storedValue(key)
    if (value === DAMAGED) {
      throw new UnavailableError(
        'the value of this key is damaged on this member (it fails its checksum); ' +
          'read it from another member',
      )
    }
    return value
  }

  /** storedValue is the value stored here under key, or DAMAGED when it fails its checksum:
   * the member then logs it once per key and counts it (values_corrupt). */
  private storedValue(key: Uint8Array): Uint8Array | undefined | typeof DAMAGED {
    try {
      return this.replica.get(key)
    } catch (e) {
      if (!(e instanceof ValueCorruptError)) throw e
      this.counters.corruptValues++
      if (this.corruptLogged.size < 1000 && !this.corruptLogged.has(e.keyHex)) {
        this.corruptLogged.add(e.keyHex)
        this.logger.error({ event: 'value_corrupt', key: e.keyHex }, e.message)
      }
      return DAMAGED
    }
  }

  /** fastRead answers a plain GET /keys/<key> without Fastify, as the route does (read): a
   * local hit at once, a miss after ReadIndex (a 404, the value if it applied meanwhile, 503
   * if that value is damaged); anything else (a bad key, a value damaged at once, a query
   * string) goes to the routes above, which give the clear answer. */
  private fastRead(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.draining || this.replica.isRemoved()) return false
    const key = rawKeyOfFastPath(req)
    if (key === undefined) return false
    // A refusal is the route's to answer.
    if (!this.auth.allows('read', req.headers)) return false
    let kb: Uint8Array
    let value: Uint8Array | undefined
    try {
      kb = keyBytes(key, this.maxKeyBytes)
      value = this.replica.get(kb)
    } catch {
      return false // a bad key or a store error: the route gives the clear answer
    }
    this.counters.reads++
    if (value !== undefined) {
      sendRawValueFast(
        req,
        res,
        value,
        this.valueCacheControl,
        undefined,
        false,
        this.etags.etagOf(key, value),
      )
      return true
    }
    if (SKIP_READ_INDEX) {
      this.answerNotFound(res, key)
      return true
    }
    this.timed('read_index', () => this.replica.readBarrier(this.readTimeoutMs)).then(
      () =>
        this.answerLater(res, () => {
          const after = this.localValue(kb)
          if (after !== undefined)
            return sendRawValueFast(req, res, after, this.valueCacheControl, undefined, false)
          this.answerNotFound(res, key)
        }),
      (e: unknown) => this.answerLater(res, () => this.failFast(res, e)),
    )
    return true
  }

  /** answerNotFound answers a fast path's miss: a 404, its error built without a stack
   * trace (nothing throws it; capturing one cost about a tenth of a miss's CPU). */
  private answerNotFound(res: ServerResponse, key: string): void {
    this.counters.notFound++
    sendErrorFast(
      res,
      withoutStack(() => new KeyNotFoundError(key)),
    )
  }

  /** answerLater answers a fast path's request that waited (for ReadIndex, for a commit) with
   * answer, as the routes' hooks and error handler would: with `connection: close` once the
   * member is shutting down (the onSend hook), and an error thrown by answer as the error
   * handler answers it (a 500 for anything unexpected). */
  private answerLater(res: ServerResponse, answer: () => void): void {
    try {
      if (this.draining && !res.headersSent) res.setHeader('connection', 'close')
      answer()
    } catch (e) {
      try {
        if (res.headersSent) {
          this.logger.error({ event: 'internal_error', err: e }, 'unexpected error')
          res.destroy()
        } else this.failFast(res, e)
      } catch {
        res.destroy()
      }
    }
  }

  /** failFast answers e on a fast path's response as the error handler does a route's. */
  private failFast(res: ServerResponse, e: unknown): void {
    const err = toOnceKvError(e)
    if (err instanceof InternalError)
      this.logger.error({ event: 'internal_error', err: e }, 'unexpected error')
    sendErrorFast(res, err)
  }

  /** fastPut takes a plain PUT /keys/<key> of application/octet-stream (or no type) with a
   * Content-Length within the value limit without Fastify, and answers it as the route does;
   * anything else (chunked, too long, another type, a refused token, a bad key, a query
   * string) goes to the route, which gives the clear answer. */
  private fastPut(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.draining || this.replica.isRemoved()) return false
    const key = rawKeyOfFastPath(req, 'PUT')
    if (key === undefined || req.headers['transfer-encoding'] !== undefined) return false
    // What clients send (or nothing); the route judges any other media type (415 for one
    // that does not parse).
    const type = req.headers['content-type']
    if (type !== undefined && type.trim().toLowerCase() !== 'application/octet-stream') return false
    const length = Number(req.headers['content-length'])
    if (!Number.isSafeInteger(length) || length < 0 || length > this.maxValueBytes) return false
    if (!this.auth.allows('write', req.headers)) return false
    let kb: Uint8Array
    try {
      kb = keyBytes(key, this.maxKeyBytes)
    } catch {
      return false
    }
    const chunks: Buffer[] = []
    let got = 0
    req.on('data', (c: Buffer) => {
      chunks.push(c)
      got += c.byteLength
    })
    req.once('end', () => {
      const value = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, got)
      this.timed('put_keys', () => this.putAnywhere(key, value, kb)).then(
        (result) =>
          this.answerLater(res, () => {
            this.counters.writes++
            if (result === 'conflict')
              return sendErrorFast(
                res,
                withoutStack(() => new KeyConflictError(key)),
              )
            const body = JSON.stringify(putResponseOf(result))
            // One flat list, as on the read path: no object to build and walk per answer.
            const headers = [
              'etag',
              etagOf(value, false),
              'content-type',
              'application/json; charset=utf-8',
              'content-length',
              String(Buffer.byteLength(body)),
            ]
            const leader = this.leaderUrl()
            if (leader !== undefined) headers.push(LEADER_HEADER, leader)
            res.writeHead(result === 'created' ? 201 : 200, headers)
            res.end(body)
          }),
        (e: unknown) => this.answerLater(res, () => this.failFast(res, e)),
      )
    })
    // A client that goes away mid-body: nothing was proposed, nothing to answer.
    req.once('error', () => res.destroy())
    return true
  }

  /** leaderUrl is the leader's HTTP URL when another member leads and its address is known
   * (the x-oncekv-leader header of a write's answer), else undefined. */
  private leaderUrl(): string | undefined {
    const id = this.replica.leader()
    if (id === NONE || id === this.replica.id) return undefined
    const book = this.replica.memberAddresses()
    const known = this.leaderUrlOf
    if (known !== undefined && known.id === id && known.book === book) return known.url
    const addr = book[id]
    let url = addr === undefined ? undefined : memberUrl(addr.http, this.scheme)
    // An address that makes no valid header value (a CR or LF in its host) is not named:
    // writeHead would throw in the middle of a write's answer. A join refuses such addresses
    // now; a member book written before may still hold one.
    if (url !== undefined && !validHeaderValue(url)) url = undefined
    this.leaderUrlOf = { id, book, url }
    return url
  }

  /** onLeader runs fn on the leader: here (it resolves to undefined), or by forwarding the
   * same JSON request (it resolves to the leader's answer, its JSON body). */
  private async onLeader(
    req: FastifyRequest,
    path: string,
    body: Record<string, unknown>,
    fn: () => Promise<void>,
  ): Promise<unknown> {
    const deadline = Date.now() + this.writeTimeoutMs
    for (;;) {
      const leader = await this.replica.waitForLeader(
        Math.min(deadline, this.replica.noLeaderDeadline()),
      )
      if (leader === this.replica.id) {
        try {
          await fn()
          return undefined
        } catch (e) {
          if (e instanceof NotLeaderError && Date.now() < deadline) continue
          throw e
        }
      }
      if (req.headers[FORWARD_HEADER]) throw new UnavailableError('leadership moved; retry')
      const addr = this.replica.memberAddresses()[leader]
      if (!addr) throw new UnavailableError(`leader ${leader} has no known address yet`)
      const res = await this.fetch(`${memberUrl(addr.http, this.scheme)}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: {
          'content-type': 'application/json',
          [FORWARD_HEADER]: this.replica.id,
          ...authHeaders(this.security, 'admin'),
        },
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      }).catch((e: unknown) => {
        throw new UnavailableError(`could not reach the leader: ${(e as Error).message}`)
      })
      if (res.ok) return (await res.json().catch(() => undefined)) as unknown
      throw errorFromBody(res.status, await res.json().catch(() => ({})))
    }
  }
}

/** dbRouteClass is the access class of a member's route (its pattern; undefined when no
 * route matched: a 404, read class). */
function dbRouteClass(method: string, route: string | undefined): RouteClass {
  switch (route) {
    case '/ping':
    case '/healthz':
    case '/readyz':
      return 'open'
    case '/join':
    case '/remove':
    case '/transfer-leader':
      return 'admin'
    case '/key':
      return method === 'POST' ? 'write' : 'read'
    case '/keys/*':
      return method === 'GET' || method === 'HEAD' ? 'read' : 'write'
    default:
      return 'read'
  }
}

function isNetworkError(e: unknown): boolean {
  return (
    e instanceof TypeError ||
    (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError'))
  )
}

function rawBody(body: unknown): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0)
  if (Buffer.isBuffer(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  throw new BadRequestError('the body must be raw bytes')
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new BadRequestError('the body must be a JSON object')
  }
  return body as Record<string, unknown>
}

/** addressField is a member address field: "host:port" (a name or an IPv4 address, or an
 * IPv6 address in brackets). A join with anything else would add a learner no one can
 * reach, never promoted. */
function addressField(body: Record<string, unknown>, name: string): string {
  const v = stringField(body, name)
  let ok: boolean
  try {
    const { host } = parseHostPort(v)
    // A name or IPv4 address, or an IPv6 one (hex digits, colons and dots, and maybe a zone):
    // these addresses go into URLs and headers, so nothing else passes.
    ok = /^[A-Za-z0-9._-]+$/.test(host) || /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%[\w.-]+)?$/.test(host)
  } catch {
    ok = false
  }
  if (!ok)
    throw new BadRequestError(
      `${name} must be host:port, like 127.0.0.1:11000 (got ${JSON.stringify(v.slice(0, 80))})`,
    )
  return v
}

/** sameAddress tells whether two valid member addresses name the same host and port: host
 * names compared without case, IP addresses in their canonical form (127.0.0.1 and 127.1,
 * [::1] and [0:0::1] are one address), ports as numbers. */
function sameAddress(a: string, b: string): boolean {
  return a === b || canonicalAddress(a) === canonicalAddress(b)
}

function canonicalAddress(address: string): string {
  try {
    const { host, port } = parseHostPort(address)
    let canonical = host.toLowerCase()
    try {
      // The WHATWG parser lowercases names and writes IPv4 and IPv6 addresses canonically;
      // it takes no IPv6 zone (%eth0), which is then compared as written, without case.
      canonical = new URL(`http://${formatHostPort(host, port)}/`).hostname
      if (canonical.startsWith('[')) canonical = canonical.slice(1, -1)
    } catch {
      // Compared as lowercased.
    }
    return formatHostPort(canonical, port)
  } catch {
    return address
  }
}

/** addressBookOf is the members list of a join's answer, or undefined when body has none
 * of the right shape. */
function addressBookOf(body: unknown): Record<string, MemberAddress> | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const members = (body as { members?: unknown }).members
  if (typeof members !== 'object' || members === null || Array.isArray(members)) return undefined
  const book: Record<string, MemberAddress> = {}
  for (const [id, addr] of Object.entries(members as Record<string, unknown>)) {
    const { http, raft } = (addr ?? {}) as Partial<Record<keyof MemberAddress, unknown>>
    if (typeof http !== 'string' || typeof raft !== 'string') return undefined
    book[id] = { http, raft }
  }
  return book
}

function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name]
  if (typeof v !== 'string' || v === '' || v.length > 256)
    throw new BadRequestError(`${name} must be a non-empty string`)
  return v
}

/** putResponseOf is the body of a successful PUT /keys/<key>. */
function putResponseOf(result: 'created' | 'exists'): { code: 1000; created: boolean } {
  return { code: 1000, created: result === 'created' }
}

/** validHeaderValue is true when v may be sent as the value of an HTTP header. */
function validHeaderValue(v: string): boolean {
  try {
    validateHeaderValue(LEADER_HEADER, v)
    return true
  } catch {
    return false
  }
}
