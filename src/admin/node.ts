// `oncekv admin`: the directory of the cache tier and the window on the whole system. Cache
// nodes join it (POST /caches/join); every second it sends each one the live peer list and
// the database list (POST /meta, the original's cache master) and drops a node that misses
// three heartbeats in a row. It follows the database cluster through any member. It serves the
// lists (GET /caches, GET /dbs) and pushes them when they change (/ws/caches, /ws/dbs). Like
// every process it describes itself: GET /stats (and /ws/stats), /metrics, /readyz (ready once
// a database member answers its GET /cluster), /healthz, /ping.
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { serverTlsOptions, serving, type Security } from '../security/index.ts'
import { httpScheme, processCaller, processFetch, type Caller } from '../security/http-client.ts'
import { httpLimits, type HttpLimits } from '../http/limits.ts'
import pino, { type Logger } from 'pino'
import { createApp, splitHostPort } from '../http/app.ts'
import { Auth, authHeaders, SESSION_COOKIE, type RouteClass } from '../http/auth.ts'
import { sendError } from '../http/errors.ts'
import { processMemory, StatsRegistry } from '../http/metrics.ts'
import { WsHub, hostProblem, originProblem, sameOrigin, type HostRules } from '../http/ws-hub.ts'
import {
  BadRequestError,
  ForbiddenError,
  UnauthorizedError,
  UnavailableError,
  isBaseUrl,
  memberUrl,
  urlList,
  VALUE_BYTES_MAX_DEFAULT,
  type AdminInfo,
  type AdminStats,
  type CacheJoinRequest,
  type MetaRequest,
} from '../protocol/index.ts'
import { registerApi } from './api.ts'
import { DbWatcher, type DbView } from './db-watcher.ts'
import { Overview, type Target } from './overview.ts'

/** WEB_ROOT is the built dashboard (`npm run build:web`, run by `npm ci` through `prepare`). */
const WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url))

/** DROPPED_SHOWN_MS is how long a dropped cache node stays on the dashboard as down. */
const DROPPED_SHOWN_MS = 5 * 60_000

/** AdminOptions are the flags of `oncekv admin`. */
export interface AdminOptions {
  readonly http: string
  /** dbs are database members' HTTP URLs to follow the cluster through. */
  readonly dbs: readonly string[]
  /** allowOrigins are extra page origins allowed on the WebSockets. */
  readonly allowOrigins?: readonly string[]
  readonly heartbeatMs?: number
  /** dropAfterMisses: a cache that misses this many heartbeats in a row is dropped. */
  readonly dropAfterMisses?: number
  /** maxValueBytes is the database's largest value (its --max-value-bytes): the put form's
   * limit. */
  readonly maxValueBytes?: number
  /** startedBy is 'dev' when `oncekv dev` started this admin (the page's hints differ). */
  readonly startedBy?: 'dev'
  /** security holds tokens, the cluster secret and TLS material (none: all open). */
  readonly security?: Security
  /** limits bound what HTTP clients may send. */
  readonly limits?: Partial<HttpLimits>
  readonly logLevel?: string
  readonly logger?: Logger
}

/** CacheMember is a registered cache node. */
export interface CacheMember {
  readonly http: string
  readonly peer: string
  readonly joinedAt: number
  lastOkAt: number
  /** misses counts the heartbeats missed in a row. */
  misses: number
  /** call is the heartbeat running, if any; stale is true when the lists changed since it
   * was sent. */
  call: HeartbeatCall | undefined
  stale: boolean
}

/** HeartbeatCall is one heartbeat to a cache node. */
export interface HeartbeatCall {
  /** deadline is when it is given up (Date.now() time). */
  readonly deadline: number
  /** counted is true once its miss was counted (it counts one at most). */
  counted: boolean
}

/** AdminCounters are the admin's own counters since start (GET /stats). */
interface AdminCounters {
  cacheJoins: number
  cacheLeaves: number
  cacheDrops: number
  heartbeats: number
  heartbeatMisses: number
  apiLookups: number
  apiLookupErrors: number
  apiPuts: number
  apiPutErrors: number
}

/** WS_PATHS are the admin's WebSockets. */
const WS_PATHS = ['/ws/caches', '/ws/dbs', '/ws/overview', '/ws/stats'] as const

/** AdminNode is a running admin. */
export class AdminNode {
  readonly app: FastifyInstance
  readonly log: Logger
  readonly url: string
  private readonly caches = new Map<string, CacheMember>()
  private readonly watcher: DbWatcher
  private readonly ws: WsHub
  private readonly opts: AdminOptions
  private readonly hostRules: HostRules
  private readonly overview: Overview
  private readonly auth: Auth
  // The admin's credential toward the database and the caches, per route class.
  private readonly readAuth: Record<string, string>
  private readonly adminAuth: Record<string, string>
  // fetch calls members and caches: over TLS it trusts --tls-ca.
  private readonly fetch: typeof globalThis.fetch
  // caller makes the once-a-second calls: polls of stats and the cluster, heartbeats.
  private readonly caller: Caller
  // Caches dropped for missing heartbeats stay on the dashboard as "down" for a while.
  private readonly droppedCaches = new Map<string, { peer: string; at: number }>()
  private readonly startedAt = Date.now()
  private readonly counters: AdminCounters = {
    cacheJoins: 0,
    cacheLeaves: 0,
    cacheDrops: 0,
    heartbeats: 0,
    heartbeatMisses: 0,
    apiLookups: 0,
    apiLookupErrors: 0,
    apiPuts: 0,
    apiPutErrors: 0,
  }
  private readonly metrics: StatsRegistry<AdminStats>
  private timer: NodeJS.Timeout | undefined
  private overviewTimer: NodeJS.Timeout | undefined
  private statsTimer: NodeJS.Timeout | undefined
  private draining = false
  private polling = false
  // Invariant: under heartbeatMs, so the next beat always finds an unanswered call past
  // its deadline (and counts its miss) however late the timers run.
  private readonly beatTimeoutMs: number

  private constructor(opts: AdminOptions) {
    this.opts = opts
    const tls = opts.security?.tls
    this.url = `${httpScheme(tls)}://${opts.http}`
    this.fetch = processFetch(tls)
    this.caller = processCaller(tls)
    this.readAuth = authHeaders(opts.security, 'read')
    this.adminAuth = authHeaders(opts.security, 'admin')
    this.overview = new Overview(this.caller, 800, this.readAuth)
    const heartbeatMs = opts.heartbeatMs ?? 1_000
    this.beatTimeoutMs = Math.max(1, heartbeatMs - Math.min(100, Math.ceil(heartbeatMs / 10)))
    this.log = opts.logger ?? pino({ level: opts.logLevel ?? 'info', base: { node: 'admin' } })
    this.app = createApp({
      logger: this.log,
      bodyLimit: 64 * 1024,
      draining: () => this.draining,
      ...(serving(tls) ? { tls: serverTlsOptions(tls, false) } : {}),
      limits: opts.limits,
    })
    this.auth = new Auth(opts.security, { sessions: true })
    if (this.auth.on) this.app.addHook('onRequest', this.auth.hook(adminRouteClass))
    this.hostRules = { allowed: opts.allowOrigins ?? [], names: [splitHostPort(opts.http)[0]] }
    this.ws = new WsHub(this.app.server, {
      checkOrigin: sameOrigin(this.hostRules.allowed, this.hostRules.names),
      // /ws/stats is read class, as GET /stats and a member's /ws/stats are; the dashboard's
      // WebSockets are admin class.
      authorize: (path, req) =>
        this.auth.problem(path === '/ws/stats' ? 'read' : 'admin', req.headers),
      maxPayload: httpLimits(opts.limits).maxWsMessageBytes,
    })
    this.ws.route('/ws/caches', (ws) => ws.send(JSON.stringify(this.cacheUrls())))
    this.ws.route('/ws/dbs', (ws) => ws.send(JSON.stringify(this.watcher.current.urls)))
    this.ws.route('/ws/overview', (ws) => {
      ws.send(JSON.stringify(this.overview.history()))
      ws.send(JSON.stringify(this.overview.current))
    })
    this.ws.route('/ws/stats', (ws) => ws.send(JSON.stringify(this.stats())))
    this.metrics = adminMetrics(() => this.stats())
    this.watcher = new DbWatcher(
      opts.dbs,
      (view) => this.onDbChange(view),
      this.caller,
      1_000,
      this.readAuth,
    )
    this.routes()
  }

  /** start listens, starts following the database and heartbeating caches. */
  static async start(opts: AdminOptions): Promise<AdminNode> {
    const node = new AdminNode(opts)
    const [host, port] = splitHostPort(opts.http)
    await node.app.listen({ host, port })
    node.watcher.start()
    node.timer = setInterval(() => node.heartbeat(), opts.heartbeatMs ?? 1_000)
    node.overviewTimer = setInterval(() => void node.pollOverview(), 1_000)
    node.statsTimer = setInterval(() => {
      if (node.ws.clients('/ws/stats') > 0)
        node.ws.broadcast('/ws/stats', JSON.stringify(node.stats()))
    }, 1_000)
    void node.pollOverview()
    node.log.info({ event: 'listening', http: node.url, dbs: opts.dbs }, 'admin listening')
    return node
  }

  private routes(): void {
    const app = this.app
    if (existsSync(`${WEB_ROOT}index.html`)) {
      // Hashed asset names never change content: cache them for good; index.html is revalidated.
      // Files are looked up per request, so a rebuilt page is served without a restart.
      void app.register(fastifyStatic, {
        root: WEB_ROOT,
        wildcard: true,
        setHeaders: (res, path) => {
          res.setHeader(
            'cache-control',
            path.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable',
          )
        },
      })
    } else {
      app.get('/', async (_req, reply) =>
        reply
          .type('text/html; charset=utf-8')
          .send(
            '<!doctype html><title>oncekv admin</title><p>The dashboard is not built: run <code>npm run build:web</code> (or <code>npm ci</code>) and restart the admin. The API is up: <a href="/overview">/overview</a>, <a href="/caches">/caches</a>, <a href="/dbs">/dbs</a>.</p>',
          ),
      )
    }
    app.get('/ping', async (_req, reply) => reply.type('text/plain').send('pong'))
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (req, reply) => {
      // Open to all, like every /readyz; the members it tried and their errors only for
      // those who may read the admin's views (/dbs lists the members).
      const why = this.notReady(this.auth.allows('read', req.headers))
      if (why !== undefined) return sendError(reply, new UnavailableError(why))
      const view = this.watcher.current
      return {
        status: 'ready',
        leader: view.cluster?.leader ?? null,
        dbs: view.urls.length,
        caches: this.caches.size,
      }
    })
    app.get('/metrics', async (_req, reply) =>
      reply.type(this.metrics.contentType).send(await this.metrics.render()),
    )
    // The dashboard's API calls, and those answered with an error, for /stats.
    app.addHook('onResponse', (req, reply, done) => {
      const route = req.routeOptions.url
      const failed = reply.statusCode >= 400 ? 1 : 0
      if (route === '/api/lookup/*') {
        this.counters.apiLookups++
        this.counters.apiLookupErrors += failed
      } else if (route === '/api/put') {
        this.counters.apiPuts++
        this.counters.apiPutErrors += failed
      }
      done()
    })
    // The JSON routes answer any client; a browser page of another origin gets a 403 (no
    // CORS headers are sent either way, so such a page could not read them anyway).
    const readable = new Set(['/caches', '/dbs', '/overview', '/history', '/stats'])
    app.addHook('onRequest', (req, reply, done) => {
      // The matched route, not the raw URL: an escaped path (/%63aches) is the same route.
      const path = req.routeOptions.url ?? ''
      if (!readable.has(path) || req.headers.origin === undefined) return done()
      const problem = originProblem(req.headers.origin, req.headers.host, this.hostRules)
      if (!problem) return done()
      void sendError(reply, new ForbiddenError(problem))
    })
    app.get('/caches', async () => this.cacheUrls())
    app.get('/dbs', async () => this.watcher.current.urls)
    app.get('/overview', async () => this.overview.current)
    app.get('/history', async () => this.overview.history())
    app.get('/stats', async () => this.stats())
    // The dashboard's API acts on the data: only pages of this origin (or --allow-origin)
    // may call it, and only under a host name this admin answers to (DNS rebinding). The
    // 403 says why, and the page shows it.
    app.addHook('onRequest', (req, reply, done) => {
      if (!req.url.startsWith('/api/')) return done()
      const problem =
        hostProblem(req.headers.host, this.hostRules) ??
        originProblem(req.headers.origin, req.headers.host, this.hostRules)
      if (!problem) return done()
      void sendError(reply, new ForbiddenError(problem))
    })
    app.get('/api/info', async (): Promise<AdminInfo> => ({
      max_value_bytes: this.maxValueBytes,
      dbs: [...this.opts.dbs],
      started_by: this.opts.startedBy ?? null,
      auth: this.auth.protects('admin'),
    }))
    // The page logs in with the admin token (or the cluster secret): the answer sets a
    // session cookie, an HMAC of the secret (never the secret), HttpOnly and SameSite=Strict,
    // which the WebSockets take (a browser cannot set their headers). The API takes it too.
    app.post('/api/login', async (req, reply) => {
      const b = bodyObject(req.body, '{"token": "<admin token>"}')
      if (typeof b.token !== 'string' || b.token === '')
        throw new UnauthorizedError('the body must be {"token": "<admin token>"}')
      if (!this.auth.protects('admin')) return { code: 1000, auth: false }
      const session = this.auth.login(b.token.trim())
      if (session === undefined)
        throw new ForbiddenError('that is not the admin token (nor the cluster secret)')
      reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict${this.opts.security?.tls?.cert ? '; Secure' : ''}`,
      )
      return { code: 1000, auth: true }
    })
    app.post('/api/logout', async (_req, reply) => {
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
      return { code: 1000 }
    })
    registerApi(app, {
      maxValueBytes: this.maxValueBytes,
      readAuth: this.readAuth,
      writeAuth: authHeaders(this.opts.security, 'write'),
      caches: () => this.cacheUrls(),
      fetch: this.fetch,
      dbs: () => {
        const view = this.watcher.current
        const leader = view.cluster?.members.find((m) => m.leader)
        const first = leader ? [this.dbUrl(leader.http)] : []
        return [...new Set([...first, ...view.urls])]
      },
    })
    app.post('/caches/join', async (req) => {
      const { http, peer } = parseJoin(req.body)
      const known = this.caches.get(http)
      const now = Date.now()
      if (!known || known.peer !== peer) {
        this.caches.set(http, {
          http,
          peer,
          joinedAt: now,
          lastOkAt: now,
          misses: 0,
          call: undefined,
          stale: false,
        })
        this.droppedCaches.delete(http)
        this.counters.cacheJoins++
        this.log.info({ event: 'cache_joined', http, peer }, 'cache node joined')
        this.onCachesChange()
      } else {
        known.misses = 0
        known.lastOkAt = now
      }
      return this.meta()
    })
    // A cache node that stops cleanly says so, and leaves the ring at once instead of after
    // three missed heartbeats.
    app.post('/caches/leave', async (req) => {
      const { http } = parseLeave(req.body)
      const known = this.caches.get(http)
      if (known) {
        this.caches.delete(http)
        this.counters.cacheLeaves++
        this.log.info({ event: 'cache_left', http }, 'cache node left')
        this.onCachesChange()
      }
      return { code: 1000, left: Boolean(known) }
    })
  }

  /** dbUrl is a member's URL: the members serve the scheme of the --db URLs (memberUrl). */
  private dbUrl(address: string): string {
    return memberUrl(address, this.opts.dbs[0] ?? 'http')
  }

  private get maxValueBytes(): number {
    return this.opts.maxValueBytes ?? VALUE_BYTES_MAX_DEFAULT
  }

  /** stats is the admin's own figures (GET /stats, /ws/stats, /metrics): read from what it
   * holds, no call to any node. */
  stats(): AdminStats {
    const c = this.counters
    const view = this.watcher.current
    const cluster = this.watcher.counts
    const polls = this.overview.counts
    let ws = 0
    for (const path of WS_PATHS) ws += this.ws.clients(path)
    return {
      node: this.url,
      caches: this.caches.size,
      caches_down: this.droppedCaches.size,
      cache_joins: c.cacheJoins,
      cache_leaves: c.cacheLeaves,
      cache_drops: c.cacheDrops,
      heartbeats: c.heartbeats,
      heartbeat_misses: c.heartbeatMisses,
      db_members: view.cluster?.members.length ?? 0,
      db_voters: view.urls.length,
      db_members_up: this.overview.current.nodes.filter((n) => n.kind === 'db' && n.health === 'up')
        .length,
      db_leader: view.cluster?.leader || null,
      db_term: view.cluster?.term ?? 0,
      db_view_age_ms: view.at === 0 ? -1 : Date.now() - view.at,
      db_ready: this.notReady(false) === undefined,
      cluster_polls: cluster.polls,
      cluster_poll_errors: cluster.failed,
      overview_polls: polls.polls,
      stats_polls: polls.statsPolls,
      stats_poll_errors: polls.statsErrors,
      api_lookups: c.apiLookups,
      api_lookup_errors: c.apiLookupErrors,
      api_puts: c.apiPuts,
      api_put_errors: c.apiPutErrors,
      ws_clients: ws,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...processMemory(),
    }
  }

  /** notReady says why the admin is not ready (undefined when it is): ready is when a
   * database member answered the latest round of GET /cluster, so the lists it hands out and
   * the overview are current. */
  private notReady(detailed: boolean): string | undefined {
    if (this.draining) return 'this admin is shutting down'
    const poll = this.watcher.lastPoll
    if (poll.ok) return undefined
    const view = this.watcher.current
    const where = detailed
      ? `: ${poll.at === 0 ? `asking ${this.opts.dbs.join(', ')}` : `tried ${poll.tried.join(', ')}`}`
      : ' (which members were tried shows with the read token)'
    if (view.at === 0) return `no database member has answered yet${where}`
    const age = Math.round((Date.now() - view.at) / 1000)
    return `no database member answered the latest poll${where}; the last view of the cluster is ${age} s old`
  }

  /** cacheUrls lists the live cache nodes' client URLs. */
  cacheUrls(): string[] {
    return [...this.caches.keys()].sort()
  }

  private meta(): MetaRequest {
    return {
      peers: [...this.caches.values()].map((c) => c.peer).sort(),
      dbs: this.watcher.current.urls,
    }
  }

  private onCachesChange(): void {
    this.ws.broadcast('/ws/caches', JSON.stringify(this.cacheUrls()))
    // Tell every node now rather than at the next beat.
    this.heartbeat()
  }

  private onDbChange(view: DbView): void {
    this.log.info({ event: 'dbs', dbs: view.urls, leader: view.cluster?.leader }, 'database view')
    this.ws.broadcast('/ws/dbs', JSON.stringify(view.urls))
    this.heartbeat()
  }

  /** heartbeat sends the lists to every cache node. Each node has its own call and its own
   * timeout: a hung node costs its own heartbeats, never the others'. */
  private heartbeat(): void {
    if (this.draining) return
    const body = JSON.stringify(this.meta())
    for (const c of this.caches.values()) void this.beat(c, body)
  }

  /**
   * beat sends body to c and counts the outcome; after dropAfterMisses misses in a row c is
   * dropped. Each call is given up after beatTimeoutMs, just under the interval, and counts
   * one miss at most: when it fails, or when the next beat finds it past that deadline,
   * whichever comes first. The second case matters on a busy machine, where the call's abort
   * may not have been processed by the time the next beat is due; without it that beat would
   * be skipped and a hung node dropped after twice the intervals. A call still within its
   * deadline is not doubled: it is sent again on success if the lists changed meanwhile.
   */
  private async beat(c: CacheMember, body: string): Promise<void> {
    const now = Date.now()
    const running = c.call
    if (running && now < running.deadline) {
      c.stale = true
      return
    }
    if (running) {
      this.missed(c, running, 'no answer within the heartbeat timeout')
      if (this.caches.get(c.http) !== c) return
    }
    const call: HeartbeatCall = { deadline: now + this.beatTimeoutMs, counted: false }
    c.call = call
    c.stale = false
    this.counters.heartbeats++
    let ok = false
    try {
      const res = await this.caller.call(`${c.http}/meta`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.adminAuth },
        body,
        timeoutMs: this.beatTimeoutMs,
      })
      if (!res.ok) throw new Error(`answered ${res.status}`)
      ok = true
      c.misses = 0
      c.lastOkAt = Date.now()
    } catch (e) {
      // Calls cut off by the shutdown (the caller closes) are no misses.
      if (this.draining) return
      this.missed(c, call, (e as Error).message)
    } finally {
      if (c.call === call) c.call = undefined
    }
    if (ok && c.stale && !c.call && !this.draining && this.caches.get(c.http) === c)
      void this.beat(c, JSON.stringify(this.meta()))
  }

  /** missed counts call's miss against c, once, and drops c after dropAfterMisses. */
  private missed(c: CacheMember, call: HeartbeatCall, why: string): void {
    if (call.counted) return
    call.counted = true
    c.misses++
    this.counters.heartbeatMisses++
    this.log.debug({ event: 'heartbeat_failed', http: c.http, misses: c.misses, err: why })
    if (c.misses >= (this.opts.dropAfterMisses ?? 3)) this.drop(c)
  }

  /** drop removes c for missing heartbeats (unless it left or joined again meanwhile). */
  private drop(c: CacheMember): void {
    if (this.caches.get(c.http) !== c) return
    this.caches.delete(c.http)
    this.droppedCaches.set(c.http, { peer: c.peer, at: Date.now() })
    this.counters.cacheDrops++
    this.log.warn(
      { event: 'cache_dropped', http: c.http, misses: c.misses },
      'cache node dropped: it stopped answering heartbeats',
    )
    this.onCachesChange()
  }

  /** pollOverview samples every node's stats and pushes the overview to the dashboards. */
  private async pollOverview(): Promise<void> {
    if (this.polling) return
    this.polling = true
    try {
      await this.pollOverviewOnce()
    } finally {
      this.polling = false
    }
  }

  private async pollOverviewOnce(): Promise<void> {
    const view = this.watcher.current
    const targets: Target[] = (view.cluster?.members ?? [])
      .filter((m) => m.http !== '')
      .map((m) => ({ kind: 'db', id: m.id, url: this.dbUrl(m.http), suffrage: m.suffrage }))
    const now = Date.now()
    for (const [http, d] of this.droppedCaches)
      if (now - d.at > DROPPED_SHOWN_MS) this.droppedCaches.delete(http)
    for (const http of [...this.caches.keys(), ...this.droppedCaches.keys()])
      targets.push({
        kind: 'cache',
        id: http.replace(/^https?:\/\//, ''),
        url: http,
        suffrage: null,
      })
    const overview = await this.overview.poll(targets, view)
    if (this.ws.clients('/ws/overview') > 0)
      this.ws.broadcast('/ws/overview', JSON.stringify(overview))
  }

  /** shutdown stops the loops and the listener. */
  async shutdown(): Promise<void> {
    this.draining = true
    clearInterval(this.timer)
    clearInterval(this.overviewTimer)
    clearInterval(this.statsTimer)
    this.watcher.stop()
    this.ws.close()
    try {
      await this.app.close()
    } finally {
      await this.caller.close()
    }
  }
}

/** OPEN_ROUTES are the admin's routes anyone may call: health, what the page needs to know
 * before it logs in, the login, and the page's own files (the static wildcard). */
const OPEN_ROUTES = new Set([
  '/ping',
  '/healthz',
  '/readyz',
  '/api/info',
  '/api/login',
  '/api/logout',
  '/',
  '/*',
])

/** READ_ROUTES are the admin's views of the system (the node lists a client finds the nodes
 * through, the overview `oncekv status` shows) and its own figures: read class, as a
 * member's /cluster, /stats and /metrics are. */
const READ_ROUTES = new Set(['/caches', '/dbs', '/overview', '/history', '/stats', '/metrics'])

/** adminRouteClass is the access class of an admin route: OPEN_ROUTES are open, GETs of
 * READ_ROUTES read, and every other route (the dashboard's API, cache registration), or
 * none matched, admin. */
function adminRouteClass(method: string, route: string | undefined): RouteClass {
  if (route === undefined) return 'admin'
  if (OPEN_ROUTES.has(route)) return 'open'
  if ((method === 'GET' || method === 'HEAD') && READ_ROUTES.has(route)) return 'read'
  return 'admin'
}

/** adminMetrics exports the admin's stats to Prometheus (oncekv_admin_*), besides the
 * process's default metrics. */
function adminMetrics(stats: () => AdminStats): StatsRegistry<AdminStats> {
  const m = new StatsRegistry(stats)
  const gauges: [string, (s: AdminStats) => number, string][] = [
    ['caches', (s) => s.caches, 'Cache nodes registered.'],
    ['caches_down', (s) => s.caches_down, 'Cache nodes dropped lately, shown as down.'],
    ['db_members', (s) => s.db_members, "Database members in the admin's view."],
    ['db_voters', (s) => s.db_voters, 'Voting members among them.'],
    ['db_members_up', (s) => s.db_members_up, 'Members whose stats answered the last poll.'],
    ['db_term', (s) => s.db_term, "The cluster's term in that view."],
    ['ready', (s) => (s.db_ready ? 1 : 0), '1 when a member answered the last cluster poll.'],
    ['ws_clients', (s) => s.ws_clients, 'WebSocket clients connected.'],
  ]
  for (const [name, read, help] of gauges) m.gauge(`oncekv_admin_${name}`, help, read)
  const counters: [string, (s: AdminStats) => number, string][] = [
    ['cache_joins', (s) => s.cache_joins, 'Cache node registrations.'],
    ['cache_leaves', (s) => s.cache_leaves, 'Cache nodes that left.'],
    ['cache_drops', (s) => s.cache_drops, 'Cache nodes dropped for missed heartbeats.'],
    ['heartbeats', (s) => s.heartbeats, 'Heartbeats sent to cache nodes.'],
    ['heartbeat_misses', (s) => s.heartbeat_misses, 'Heartbeats failed or unanswered.'],
    ['cluster_polls', (s) => s.cluster_polls, 'Rounds of GET /cluster.'],
    ['cluster_poll_errors', (s) => s.cluster_poll_errors, 'Rounds no member answered.'],
    ['overview_polls', (s) => s.overview_polls, 'Overview rounds.'],
    ['stats_polls', (s) => s.stats_polls, 'GET /stats calls to members and caches.'],
    ['stats_poll_errors', (s) => s.stats_poll_errors, 'Those that failed.'],
  ]
  for (const [name, read, help] of counters) m.counter(`oncekv_admin_${name}_total`, help, read)
  m.labeledCounter('oncekv_admin_api_calls_total', "The dashboard's API calls.", 'call', {
    lookup: (s) => s.api_lookups,
    put: (s) => s.api_puts,
  })
  m.labeledCounter(
    'oncekv_admin_api_errors_total',
    "The dashboard's API calls answered with an error.",
    'call',
    { lookup: (s) => s.api_lookup_errors, put: (s) => s.api_put_errors },
  )
  return m
}

const JOIN_SHAPE = '{"http": "<node URL>", "peer": "<peer URL>"}'

/** parseJoin validates the body of POST /caches/join. */
function parseJoin(body: unknown): CacheJoinRequest {
  const b = bodyObject(body, JOIN_SHAPE)
  return { http: urlField(b, 'http', JOIN_SHAPE), peer: urlField(b, 'peer', JOIN_SHAPE) }
}

/** parseLeave validates the body of POST /caches/leave. */
function parseLeave(body: unknown): { http: string } {
  const shape = '{"http": "<node URL>"}'
  return { http: urlField(bodyObject(body, shape), 'http', shape) }
}

/** bodyObject is body as a JSON object, else a 400 that shows the shape wanted. */
function bodyObject(body: unknown, shape: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body))
    throw new BadRequestError(`the body must be a JSON object ${shape}`)
  return body as Record<string, unknown>
}

/** urlField is the field name of b as a base URL, checked and trimmed as the lists' URLs are
 * (urlList), else a 400 that shows the shape wanted. */
function urlField(b: Record<string, unknown>, name: string, shape: string): string {
  const v = b[name]
  if (typeof v !== 'string' || !isBaseUrl(v))
    throw new BadRequestError(
      `${name} must be an http:// or https:// base URL (no path); the body must be ${shape}`,
    )
  return urlList([v], name)[0] as string
}
