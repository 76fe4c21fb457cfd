// CacheNode composes one cache node: the Group (caches, ring, single flight), the database
// fill, the peer client and the two listeners; it keeps its peer and database lists either
// from flags (--peers, --db) or from the admin, which it joins and which heartbeats it every
// second. The data path never waits on the admin: without heartbeats the node keeps serving
// with the last lists it had, and joins again until the admin answers.
import type { Security } from '../security/index.ts'
import { processFetch } from '../security/http-client.ts'
import type { HttpLimits } from '../http/limits.ts'
import pino, { type Logger } from 'pino'
import {
  urlList,
  VALUE_BYTES_MAX_DEFAULT,
  type CacheNodeStats,
  type MetaRequest,
} from '../protocol/index.ts'
import { advertisedUrl, isUnspecifiedUrl } from './advertise.ts'
import { authHeaders } from '../http/auth.ts'
import { processMemory } from '../http/metrics.ts'
import { DbLoader } from './db-loader.ts'
import { Group } from './group.ts'
import { CACHE_BYTES_DEFAULT } from './lru.ts'
import { PeerClient } from './peer-client.ts'
import { CacheServer } from './server.ts'
import { DB_TIMEOUT_DEFAULT_MS, peerTimeoutFor } from './timeouts.ts'

export { CACHE_BYTES_DEFAULT }

/** CacheNodeOptions are the flags of `oncekv cache`. */
export interface CacheNodeOptions {
  /** http is the client listener ("host:port"); peer the peer-protocol listener. */
  readonly http: string
  readonly peer: string
  /** advertiseHttp and advertisePeer are the URLs others reach those listeners at (to the
   * admin, on the ring, in stats); http:// and the listen addresses by default. */
  readonly advertiseHttp?: string
  readonly advertisePeer?: string
  /** admin is the admin's URL; without it peers and dbs are fixed by the flags. */
  readonly admin?: string
  /** peers are other cache nodes' peer URLs (without an admin). */
  readonly peers?: readonly string[]
  /** dbs are database members' HTTP URLs (a start; the admin's list replaces it). */
  readonly dbs?: readonly string[]
  readonly cacheBytes?: number
  readonly replicas?: number
  readonly dbTimeoutMs?: number
  readonly hedgeMs?: number
  /** peerTimeoutMs bounds one fetch from the owner; peerTimeoutFor(dbTimeoutMs) by default. */
  readonly peerTimeoutMs?: number
  readonly maxValueBytes?: number
  /** heartbeatTimeoutMs: without a heartbeat this long, the node joins the admin again. */
  readonly heartbeatTimeoutMs?: number
  /** security holds tokens, the cluster secret and TLS material (none: all open). */
  readonly security?: Security
  /** limits bound what HTTP clients may send, on both listeners. */
  readonly limits?: Partial<HttpLimits>
  readonly logLevel?: string
  readonly logger?: Logger
}

/** CacheNode is a running cache node. */
export class CacheNode {
  /** url and peerUrl are the advertised URLs of the two listeners: the node's names. */
  readonly url: string
  readonly peerUrl: string
  readonly group: Group
  readonly log: Logger
  /** peerTimeoutMs is the bound of one fetch from an owner. */
  readonly peerTimeoutMs: number
  private readonly db: DbLoader
  private readonly peers: PeerClient
  private readonly server: CacheServer
  private readonly opts: CacheNodeOptions
  private readonly startedAt = Date.now()
  private lastMetaAt = 0
  private lastJoinAt = 0
  private joining = false
  private timer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  // fetch calls the admin: over TLS it trusts --tls-ca.
  private readonly fetch: typeof globalThis.fetch

  private constructor(opts: CacheNodeOptions) {
    this.opts = opts
    const tls = opts.security?.tls
    this.fetch = processFetch(tls)
    this.url = advertisedUrl(opts.http, opts.advertiseHttp, tls)
    this.peerUrl = advertisedUrl(opts.peer, opts.advertisePeer, tls)
    for (const url of [this.url, this.peerUrl])
      if (isUnspecifiedUrl(url))
        throw new Error(`${url} is no address others can reach: advertise the node's own`)
    const name = `cache ${this.url.replace(/^https?:\/\//, '')}`
    this.log = opts.logger ?? pino({ level: opts.logLevel ?? 'info', base: { node: name } })
    const maxValueBytes = opts.maxValueBytes ?? VALUE_BYTES_MAX_DEFAULT
    const dbTimeoutMs = opts.dbTimeoutMs ?? DB_TIMEOUT_DEFAULT_MS
    this.peerTimeoutMs = opts.peerTimeoutMs ?? peerTimeoutFor(dbTimeoutMs)
    this.db = new DbLoader(opts.dbs ?? [], {
      maxValueBytes,
      timeoutMs: dbTimeoutMs,
      hedgeMs: opts.hedgeMs,
      headers: authHeaders(opts.security, 'read'),
      tls,
    })
    this.peers = new PeerClient({
      maxValueBytes,
      timeoutMs: this.peerTimeoutMs,
      // The cluster secret when held, else the read token (a peer without the secret guards
      // its peer listener with the read token).
      authorization: authHeaders(opts.security, 'read').authorization,
      tls,
    })
    this.group = new Group({
      self: this.peerUrl,
      cacheBytes: opts.cacheBytes ?? CACHE_BYTES_DEFAULT,
      replicas: opts.replicas,
      fetchFromPeer: (peer, key) => this.peers.fetch(peer, key),
      loadFromDb: (key) => this.db.load(key),
    })
    this.group.setPeers(opts.peers ?? [])
    this.server = new CacheServer({
      clusterSecret: opts.security?.cluster,
      group: this.group,
      logger: this.log,
      stats: () => this.stats(),
      onMeta: opts.admin ? (meta) => this.onMeta(meta) : undefined,
      ready: () => this.db.urls.length > 0,
      ...(opts.security ? { security: opts.security } : {}),
      tls,
      limits: opts.limits,
    })
  }

  /** start listens and, with an admin, joins it. */
  static async start(opts: CacheNodeOptions): Promise<CacheNode> {
    const node = new CacheNode(opts)
    await node.server.listen(opts.http, opts.peer)
    node.log.info(
      {
        event: 'listening',
        listen: opts.http,
        listenPeer: opts.peer,
        http: node.url,
        peer: node.peerUrl,
        admin: opts.admin ?? null,
        cacheBytes: node.group.cacheBytes,
        peerTimeoutMs: node.peerTimeoutMs,
      },
      'cache node listening',
    )
    const dbTimeoutMs = opts.dbTimeoutMs ?? DB_TIMEOUT_DEFAULT_MS
    if (node.peerTimeoutMs <= dbTimeoutMs)
      node.log.warn(
        { event: 'peer_timeout_short', peerTimeoutMs: node.peerTimeoutMs, dbTimeoutMs },
        'the peer timeout is not above the database timeout: a node may give up on an owner ' +
          'still reading a key and read it a second time',
      )
    if (opts.admin) {
      void node.join()
      const timeout = opts.heartbeatTimeoutMs ?? 3_000
      node.timer = setInterval(() => {
        const now = Date.now()
        if (now - node.lastMetaAt > timeout && now - node.lastJoinAt > 1_000) void node.join()
      }, 250)
    }
    return node
  }

  /** join registers this node at the admin and applies the lists it answers with. */
  private async join(): Promise<void> {
    const admin = this.opts.admin
    if (!admin || this.joining || this.stopping) return
    this.joining = true
    this.lastJoinAt = Date.now()
    try {
      const res = await this.fetch(`${admin.replace(/\/$/, '')}/caches/join`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...authHeaders(this.opts.security, 'admin'),
        },
        body: JSON.stringify({ http: this.url, peer: this.peerUrl }),
        signal: AbortSignal.timeout(2_000),
      })
      if (res.status === 401 || res.status === 403)
        throw new Error(
          `the admin refused the registration (${res.status}): it takes the admin token or the cluster secret`,
        )
      if (!res.ok) throw new Error(`the admin answered ${res.status}`)
      const body = (await res.json()) as Record<string, unknown>
      this.applyLists(urlList(body.peers, 'peers'), urlList(body.dbs, 'dbs'))
      this.lastMetaAt = Date.now()
      this.log.info({ event: 'joined', admin }, 'joined the admin')
    } catch (e) {
      this.log.warn(
        { event: 'join_failed', admin, err: (e as Error).message },
        'could not join the admin; serving with the lists known, retrying',
      )
    } finally {
      this.joining = false
    }
  }

  /** leave tells the admin this node is going (best effort: it drops the node anyway after
   * three missed heartbeats). */
  private async leave(): Promise<void> {
    const admin = this.opts.admin
    if (!admin) return
    try {
      const res = await this.fetch(`${admin.replace(/\/$/, '')}/caches/leave`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...authHeaders(this.opts.security, 'admin'),
        },
        body: JSON.stringify({ http: this.url }),
        signal: AbortSignal.timeout(1_000),
      })
      await res.arrayBuffer()
    } catch {
      // The admin is down: nothing to tell.
    }
  }

  private onMeta(meta: MetaRequest): void {
    this.lastMetaAt = Date.now()
    // An admin that dropped this node (it was paused, say) heartbeats it no more soon:
    // join again at once.
    if (!meta.peers.includes(this.peerUrl)) {
      void this.join()
      return
    }
    this.applyLists(meta.peers, meta.dbs)
  }

  private applyLists(peers: readonly string[], dbs: readonly string[]): void {
    if (this.group.setPeers(peers)) {
      this.peers.retain(this.group.ring.peers)
      this.log.info({ event: 'peers', peers: this.group.ring.peers }, 'cache ring changed')
    }
    // An admin that has not reached the database yet sends none: keep what we have.
    if (dbs.length > 0 && this.db.setMembers(dbs))
      this.log.info({ event: 'dbs', dbs }, 'database members changed')
  }

  /** stats is the body of GET /stats. */
  stats(): CacheNodeStats {
    const s = this.group.stats
    const main = this.group.mainStats()
    const hot = this.group.hotStats()
    return {
      node: this.url,
      peer: this.peerUrl,
      ...s,
      cache_bytes_limit: this.group.cacheBytes,
      main_bytes: main.bytes,
      main_items: main.items,
      main_gets: main.gets,
      main_hits: main.hits,
      main_evictions: main.evictions,
      hot_bytes: hot.bytes,
      hot_items: hot.items,
      hot_gets: hot.gets,
      hot_hits: hot.hits,
      hot_evictions: hot.evictions,
      loads_in_flight: this.group.inFlight,
      peers: this.group.ring.peers,
      dbs: this.db.stats(),
      admin: this.opts.admin ?? null,
      last_meta_ms: this.lastMetaAt === 0 ? -1 : Date.now() - this.lastMetaAt,
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      ...processMemory(),
    }
  }

  /** shutdown stops serving: requests in flight finish, new ones get 503. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer)
      await this.leave()
      await this.server.close()
      await Promise.all([this.db.close(), this.peers.close()])
      this.log.info({ event: 'stopped' }, 'cache node stopped')
    })()
    return this.stopping
  }
}
