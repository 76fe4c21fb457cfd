// A cache node's two listeners, as the original had: the client API (reads of the original's
// JSON route and of raw bytes, stats, metrics, health, and POST /meta for the admin's
// heartbeat) and the peer protocol under /_oncekv/ on its own port, through which other
// cache nodes ask this one for keys it owns.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { createApp, splitHostPort } from '../http/app.ts'
import { Auth, type RouteClass } from '../http/auth.ts'
import { httpLimits, type HttpLimits } from '../http/limits.ts'
import { serverTlsOptions, serving, type Security, type TlsConfig } from '../security/index.ts'
import { refuseMethods, sendError } from '../http/errors.ts'
import { StatsRegistry } from '../http/metrics.ts'
import {
  getResponseOf,
  rawKeyOfFastPath,
  sendRawValue,
  sendRawValueFast,
  valueCacheControl,
} from '../http/values.ts'
import { WsHub, sameOrigin } from '../http/ws-hub.ts'
import {
  BadRequestError,
  ForbiddenError,
  KeyNotFoundError,
  withoutStack,
  MemberConflictError,
  checkKey,
  UnauthorizedError,
  UnavailableError,
  type CacheNodeStats,
  type MetaRequest,
  urlList,
} from '../protocol/index.ts'
import type { Group, GetResult } from './group.ts'
import { PEER_BASE } from './peer-client.ts'
import { bearerToken, type Secret } from '../security/secrets.ts'

/** CacheServerOptions configure the listeners. */
export interface CacheServerOptions {
  readonly group: Group
  /** clusterSecret, when set, is what every request to the peer listener must carry. */
  readonly clusterSecret?: Secret
  readonly logger: Logger
  readonly stats: () => CacheNodeStats
  /** onMeta applies a heartbeat from the admin; undefined for a node run without one (its
   * peers and databases come from flags, and POST /meta is refused). */
  readonly onMeta: ((meta: MetaRequest) => void) | undefined
  /** ready is true when the node can fill misses (it knows a database member). */
  readonly ready: () => boolean
  /** security holds the tokens that protect the client listener (none: all open). The peer
   * listener is not guarded here. */
  readonly security?: Security
  /** tls: both listeners serve HTTPS; the peer listener asks peers for a certificate under
   * --peer-mtls. */
  readonly tls?: TlsConfig
  /** limits bound what clients may send, on both listeners. */
  readonly limits?: Partial<HttpLimits>
}

const READ_ONLY =
  'cache nodes are read-only: write to a database member (POST /key or PUT /keys/:key)'

const NO_ADMIN =
  'this cache node has no admin (it runs without --admin): its peers and databases come from --peers and --db, and it takes no heartbeat'

/** CacheServer is the client and peer listeners of one cache node. */
export class CacheServer {
  readonly app: FastifyInstance
  readonly peerApp: FastifyInstance
  private readonly group: Group
  private readonly opts: CacheServerOptions
  private readonly metrics: StatsRegistry<CacheNodeStats>
  private readonly ws: WsHub
  private statsTimer: NodeJS.Timeout | undefined
  private draining = false
  private readonly auth: Auth
  // The Cache-Control of values: private when reads need a token (valueCacheControl).
  private readonly valueCacheControl: string

  constructor(opts: CacheServerOptions) {
    this.opts = opts
    this.group = opts.group
    this.auth = new Auth(opts.security)
    this.valueCacheControl = valueCacheControl(this.auth.protects('read'))
    this.app = createApp({
      logger: opts.logger,
      bodyLimit: 256 * 1024,
      draining: () => this.draining,
      fastPath: (req, res) => this.fastRead(req, res),
      ...(serving(opts.tls) ? { tls: serverTlsOptions(opts.tls, false) } : {}),
      limits: opts.limits,
    })
    this.peerApp = createApp({
      logger: opts.logger,
      bodyLimit: 1024,
      draining: () => this.draining,
      ...(serving(opts.tls) ? { tls: serverTlsOptions(opts.tls, true) } : {}),
      limits: opts.limits,
    })
    // The peer protocol serves every cached value: with the cluster secret it takes that
    // alone; without one, a read token guards it as it guards the client listener (else a
    // read token could be bypassed through --peer).
    const secret = opts.clusterSecret
    if (secret) this.peerApp.addHook('onRequest', peerGuard(secret))
    else if (this.auth.protects('read'))
      this.peerApp.addHook(
        'onRequest',
        this.auth.hook(() => 'read'),
      )
    this.metrics = cacheMetrics(opts.stats)
    if (this.auth.on) this.app.addHook('onRequest', this.auth.hook(cacheRouteClass))
    this.ws = new WsHub(this.app.server, {
      checkOrigin: sameOrigin(),
      authorize: (_path, req) => this.auth.problem('read', req.headers),
      maxPayload: httpLimits(opts.limits).maxWsMessageBytes,
    })
    this.ws.route('/ws/stats', (ws) => ws.send(JSON.stringify(opts.stats())))
    this.clientRoutes()
    this.peerRoutes()
  }

  /** listen starts both listeners. */
  async listen(http: string, peer: string): Promise<void> {
    const [host, port] = splitHostPort(http)
    const [peerHost, peerPort] = splitHostPort(peer)
    await this.peerApp.listen({ host: peerHost, port: peerPort })
    await this.app.listen({ host, port })
    this.statsTimer = setInterval(() => {
      if (this.ws.clients('/ws/stats') > 0)
        this.ws.broadcast('/ws/stats', JSON.stringify(this.opts.stats()))
    }, 1000)
  }

  /** close stops accepting requests, lets those in flight finish, and closes. */
  async close(): Promise<void> {
    this.draining = true
    clearInterval(this.statsTimer)
    this.ws.close()
    await Promise.all([this.app.close(), this.peerApp.close()])
  }

  private clientRoutes(): void {
    const app = this.app
    app.get('/ping', async (_req, reply) => reply.type('text/plain').send('pong'))
    app.get('/healthz', async () => ({ status: 'ok' }))
    app.get('/readyz', async (_req, reply) => {
      if (this.draining || !this.opts.ready())
        return sendError(reply, new UnavailableError('no database member known yet'))
      return { status: 'ready', peers: this.group.ring.size }
    })
    app.get('/stats', async () => this.opts.stats())
    app.get('/metrics', async (_req, reply) =>
      reply.type(this.metrics.contentType).send(await this.metrics.render()),
    )
    const onMeta = this.opts.onMeta
    if (onMeta) {
      app.post('/meta', async (req) => {
        onMeta(parseMeta(req.body))
        return { code: 1000 }
      })
    } else {
      // Refused before the body is read: whatever it holds, nothing here would take it.
      const noAdmin = async (): Promise<never> => {
        throw new MemberConflictError(NO_ADMIN)
      }
      app.route({ method: 'POST', url: '/meta', onRequest: noAdmin, handler: noAdmin })
    }

    const getJson = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const key = (req.params as { key: string }).key
      const value = await this.read(key, reply)
      return reply.send(getResponseOf(key, value))
    }
    app.get('/key/:key', getJson)
    app.get('/i/key/:key', getJson)
    app.get('/keys/*', async (req, reply) => {
      const key = (req.params as { '*': string })['*']
      return sendRawValue(req, reply, await this.read(key, reply), this.valueCacheControl)
    })
    // A write sent here by mistake: a 405 whose Allow header lists what the route takes,
    // reads or nothing at all (POST /key).
    refuseMethods(app, '/key', ['POST'], '', READ_ONLY)
    for (const url of ['/keys/*', '/key/:key', '/i/key/:key'])
      refuseMethods(app, url, ['PUT', 'POST', 'DELETE', 'PATCH'], 'GET, HEAD', READ_ONLY)
  }

  private peerRoutes(): void {
    const app = this.peerApp
    app.get(`${PEER_BASE}/ping`, async (_req, reply) => reply.type('text/plain').send('pong'))
    app.get(`${PEER_BASE}/kv/:key`, async (req, reply) => {
      const key = (req.params as { key: string }).key
      checkKey(key)
      const r = await this.group.getForPeer(key)
      if (!r.found) throw withoutStack(() => new KeyNotFoundError(key))
      return reply
        .type('application/octet-stream')
        .header('x-oncekv-source', r.source)
        .send(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength))
    })
  }

  /** fastRead answers a plain GET /keys/<key> held in this node's caches without Fastify
   * (the hot path); anything else, misses included, goes to the routes above. */
  private fastRead(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.draining) return false
    const key = rawKeyOfFastPath(req)
    if (key === undefined) return false
    // A refusal is the route's to answer.
    if (!this.auth.allows('read', req.headers)) return false
    try {
      checkKey(key)
    } catch {
      return false
    }
    const r = this.group.getCached(key)
    if (!r?.found) return false
    sendRawValueFast(req, res, r.value, this.valueCacheControl, r.source)
    return true
  }

  /** read looks key up through the cache; it answers 404 for an authoritative not-found. */
  private async read(key: string, reply: FastifyReply): Promise<Uint8Array> {
    checkKey(key)
    const r: GetResult = await this.group.get(key)
    if (!r.found) throw withoutStack(() => new KeyNotFoundError(key))
    reply.header('x-oncekv-source', r.source)
    return r.value
  }
}

/** cacheRouteClass is the access class of a client-listener route: health is open, the
 * admin's heartbeat (POST /meta) is admin, everything else reads. */
function cacheRouteClass(_method: string, route: string | undefined): RouteClass {
  if (route === '/ping' || route === '/healthz' || route === '/readyz') return 'open'
  if (route === '/meta') return 'admin'
  return 'read'
}

function parseMeta(body: unknown): MetaRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Buffer.isBuffer(body))
    throw new BadRequestError('the body must be a JSON object {"peers": [...], "dbs": [...]}')
  const b = body as Record<string, unknown>
  return { peers: urlList(b.peers, 'peers'), dbs: urlList(b.dbs, 'dbs') }
}

/** cacheMetrics exports a cache node's stats to Prometheus. */
function cacheMetrics(stats: () => CacheNodeStats): StatsRegistry<CacheNodeStats> {
  const m = new StatsRegistry(stats)
  const counters: [string, keyof CacheNodeStats, string][] = [
    ['gets', 'Gets', 'Gets from clients and peers.'],
    ['cache_hits', 'CacheHits', 'Gets answered by the main or hot cache.'],
    ['peer_loads', 'PeerLoads', 'Values fetched from the owner peer.'],
    ['peer_errors', 'PeerErrors', 'Failed fetches from the owner peer.'],
    ['loads', 'Loads', 'Gets that missed both caches.'],
    ['loads_deduped', 'LoadsDeduped', 'Loads that ran after single flight.'],
    ['local_loads', 'LocalLoads', 'Loads from the database tier.'],
    ['local_load_errors', 'LocalLoadErrs', 'Failed loads from the database tier.'],
    ['server_requests', 'ServerRequests', 'Requests from peers served.'],
    ['main_evictions', 'main_evictions', 'Evictions from the main cache.'],
    ['hot_evictions', 'hot_evictions', 'Evictions from the hot cache.'],
  ]
  for (const [name, field, help] of counters)
    m.counter(`oncekv_cache_${name}_total`, help, (s) => s[field] as number)
  // The two caches' own lookups (/stats: main_gets, main_hits, hot_gets, hot_hits): a get
  // looks in the main cache, then, on a miss there, in the hot cache.
  m.labeledCounter('oncekv_cache_lookups_total', 'Lookups in each cache.', 'cache', {
    main: (s) => s.main_gets,
    hot: (s) => s.hot_gets,
  })
  m.labeledCounter(
    'oncekv_cache_lookup_hits_total',
    'Lookups that found the key, per cache.',
    'cache',
    {
      main: (s) => s.main_hits,
      hot: (s) => s.hot_hits,
    },
  )
  m.gauge(
    'oncekv_cache_bytes_limit',
    'The cache bound (--cache-bytes).',
    (s) => s.cache_bytes_limit,
  )
  m.gauge('oncekv_cache_main_bytes', 'Bytes in the main cache.', (s) => s.main_bytes)
  m.gauge('oncekv_cache_main_items', 'Items in the main cache.', (s) => s.main_items)
  m.gauge('oncekv_cache_hot_bytes', 'Bytes in the hot cache.', (s) => s.hot_bytes)
  m.gauge('oncekv_cache_hot_items', 'Items in the hot cache.', (s) => s.hot_items)
  m.gauge('oncekv_cache_peers', 'Cache peers in the ring.', (s) => s.peers.length)
  m.gauge('oncekv_cache_loads_in_flight', 'Loads running.', (s) => s.loads_in_flight)
  return m
}

/** peerGuard refuses a request to the peer listener that does not carry the cluster secret
 * (`Authorization: Bearer <secret>`): 401 without one, 403 with another. */
function peerGuard(
  secret: Secret,
): (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (req, reply) => {
    const token = bearerToken(req.headers.authorization)
    if (token !== undefined && secret.matches(token)) return undefined
    return sendError(
      reply,
      token === undefined
        ? new UnauthorizedError(
            'the peer protocol needs the cluster secret (Authorization: Bearer)',
          )
        : new ForbiddenError('that is not the cluster secret'),
    )
  }
}
