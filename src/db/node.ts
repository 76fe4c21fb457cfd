// DbNode composes one database member: the store, the peer transport, the Replica (Raft) and
// the HTTP server; it bootstraps or joins a cluster and shuts down gracefully (leadership is
// handed over first, requests in flight finish or fail clearly, the store closes cleanly).
import type { Security } from '../security/index.ts'
import { processFetch } from '../security/http-client.ts'
import type { HttpLimits } from '../http/limits.ts'
import pino, { type Logger } from 'pino'
import { bootstrapSnapshot, NONE } from '../raft/index.ts'
import { LmdbStore, StoreIdentityError, type MemberAddress } from '../storage/index.ts'
import { TcpTransport } from '../transport/index.ts'
import { memberUrl, VALUE_BYTES_MAX_DEFAULT, type ClusterResponse } from '../protocol/index.ts'
import { Replica } from './replica.ts'
import { DbServer } from './server.ts'
import { authHeaders } from '../http/auth.ts'
import { transportLogger } from './transport-log.ts'

/** DbNodeOptions configures a member (the flags of `oncekv db`). */
export interface DbNodeOptions {
  readonly id: string
  /** http is the address the HTTP API listens on and peers reach it at ("host:port"). */
  readonly http: string
  /** raft is the address of the peer transport ("host:port"). */
  readonly raft: string
  /** advertiseHttp and advertiseRaft are the addresses other members reach this one at, when
   * they differ from the listen addresses (a proxy, NAT, or a listener on 0.0.0.0). */
  readonly advertiseHttp?: string
  readonly advertiseRaft?: string
  readonly dataDir: string
  /** join lists members' HTTP URLs to join through; empty to bootstrap a new cluster. */
  readonly join?: readonly string[]
  readonly clusterName?: string
  readonly maxValueBytes?: number
  /** maxKeyBytes bounds keys (default and most: 1024 bytes). */
  readonly maxKeyBytes?: number
  readonly tickMs?: number
  readonly electionTicks?: number
  readonly snapshotEntries?: number
  /** batchWaitMs is the leader's wait for writers it answered to write again, so that their
   * writes share one transaction (ReplicaOptions.batchWaitMs; 0: none). */
  readonly batchWaitMs?: number
  /** snapshotChunkBytes is the size of the chunks a snapshot is sent in (default 512 KiB). */
  readonly snapshotChunkBytes?: number
  /** minFreeBytes is the free space kept on the data directory's disk (LmdbStoreOptions). */
  readonly minFreeBytes?: number
  /** security holds tokens, the cluster secret and TLS material (none: all open). */
  readonly security?: Security
  /** limits bound what HTTP clients may send (defaults: HTTP_LIMITS_DEFAULT). */
  readonly limits?: Partial<HttpLimits>
  readonly logLevel?: string
  readonly logger?: Logger
}

/** advertised is the address book entry of this member: where others reach it. */
function advertised(opts: DbNodeOptions): MemberAddress {
  return { http: opts.advertiseHttp ?? opts.http, raft: opts.advertiseRaft ?? opts.raft }
}

/** DbNode is a running member. */
export class DbNode {
  private stopping: Promise<void> | undefined
  // Aborts the join in progress, if any (a shutdown during the join).
  private readonly joinAbort = new AbortController()
  private removalTimer: NodeJS.Timeout | undefined
  private removalCheckInFlight = false
  // fetch calls other members (joins, removal checks): over TLS it trusts --tls-ca.
  private fetch: typeof globalThis.fetch = globalThis.fetch

  private constructor(
    readonly id: string,
    readonly replica: Replica,
    readonly server: DbServer,
    private readonly store: LmdbStore,
    readonly log: Logger,
    // The credential of the removal check's GET /cluster on peers.
    private readonly readAuth: Record<string, string> = {},
  ) {}

  /**
   * start opens the store, starts Raft and the HTTP API, and, for a member with no state yet,
   * starts joining: in the background, so that a shutdown (SIGTERM) can come while the join
   * is unanswered or refused for want of a quorum. onJoinFailed is called, after a graceful
   * shutdown, if the join is refused for good or does not succeed within 60 s; a shutdown
   * interrupts it, and the next start resumes it (the data directory records it).
   */
  static async start(
    opts: DbNodeOptions,
    onFatal: (e: Error) => void = () => {},
    onJoinFailed: (e: Error) => void = () => {},
  ): Promise<DbNode> {
    const log = opts.logger ?? pino({ level: opts.logLevel ?? 'info', base: { node: opts.id } })
    const store = LmdbStore.open(
      opts.dataDir,
      opts.minFreeBytes === undefined ? {} : { minFreeBytes: opts.minFreeBytes },
    )
    let join: readonly string[]
    try {
      join = DbNode.claimDirectory(store, opts, log)
    } catch (e) {
      await store.close()
      throw e
    }
    const transport = new TcpTransport({
      id: opts.id,
      clusterName: opts.clusterName ?? 'oncekv',
      listen: opts.raft,
      snapshotChunkBytes: opts.snapshotChunkBytes,
      clusterSecret: opts.security?.cluster,
      tls: opts.security?.tls,
      logger: transportLogger(log),
    })
    const replica = new Replica({
      id: opts.id,
      store,
      transport,
      logger: log,
      tickMs: opts.tickMs,
      electionTicks: opts.electionTicks,
      snapshotEntries: opts.snapshotEntries,
      batchWaitMs: opts.batchWaitMs,
    })
    const server = new DbServer({
      replica,
      logger: log,
      maxValueBytes: opts.maxValueBytes ?? VALUE_BYTES_MAX_DEFAULT,
      ...(opts.maxKeyBytes !== undefined ? { maxKeyBytes: opts.maxKeyBytes } : {}),
      ...(opts.security ? { security: opts.security } : {}),
      tls: opts.security?.tls,
      limits: opts.limits,
    })
    const node = new DbNode(
      opts.id,
      replica,
      server,
      store,
      log,
      authHeaders(opts.security, 'read'),
    )
    node.fetch = processFetch(opts.security?.tls)
    await replica.start((e) => {
      onFatal(e)
    })
    await server.listen(opts.http)
    log.info({ event: 'listening', http: opts.http, raft: opts.raft }, 'serving')
    node.watchRemoval((opts.tickMs ?? 50) * (opts.electionTicks ?? 10))
    if (!store.isBootstrapped() && join.length > 0) void node.join(join, opts, onJoinFailed)
    return node
  }

  /** join runs the join; a failure stops the member, a shutdown interrupts it. */
  private async join(
    urls: readonly string[],
    opts: DbNodeOptions,
    onJoinFailed: (e: Error) => void,
  ): Promise<void> {
    try {
      await this.joinVia(urls, opts)
    } catch (e) {
      if (this.joinAbort.signal.aborted) {
        this.log.info(
          { event: 'join_interrupted' },
          'join interrupted by the shutdown; the next start resumes it (recorded in the data directory)',
        )
        return
      }
      const error = e instanceof Error ? e : new Error(String(e))
      this.log.error({ event: 'join_failed', err: error }, 'could not join; stopping')
      await this.shutdown()
      onJoinFailed(error)
    }
  }

  /**
   * claimDirectory checks that the data directory is this member's and decides how it starts:
   * from its own state, by bootstrapping a new cluster, or by joining. The directory records
   * its member id and, until the member has state, the members it joins through, so a member
   * restarted before its join finished goes on joining instead of founding a second cluster.
   * It returns the URLs to join through (empty: no join).
   */
  private static claimDirectory(
    store: LmdbStore,
    opts: DbNodeOptions,
    log: Logger,
  ): readonly string[] {
    const stored = store.identity()
    if (stored !== undefined && stored.id !== opts.id)
      throw new StoreIdentityError(opts.dataDir, stored.id, opts.id)
    if (store.isBootstrapped()) {
      if (stored === undefined || stored.joinVia.length > 0)
        store.setIdentity({ id: opts.id, joinVia: [] })
      log.info(
        { event: 'restart', dir: opts.dataDir, ...store.initialState().hardState },
        'restarting from the data directory',
      )
      return []
    }
    const join = opts.join?.length ? opts.join : (stored?.joinVia ?? [])
    if (join.length === 0) {
      store.bootstrap(bootstrapSnapshot([opts.id]), {
        [opts.id]: advertised(opts),
      })
      store.setIdentity({ id: opts.id, joinVia: [] })
      log.info({ event: 'bootstrap', dir: opts.dataDir }, 'bootstrapped a new one-member cluster')
      return []
    }
    store.setIdentity({ id: opts.id, joinVia: join })
    log.info(
      { event: 'joining', via: join, resumed: !opts.join?.length },
      opts.join?.length
        ? 'starting empty, joining an existing cluster'
        : 'resuming an unfinished join (recorded in the data directory)',
    )
    return join
  }

  private async joinVia(urls: readonly string[], opts: DbNodeOptions): Promise<void> {
    const deadline = Date.now() + 60_000
    const aborted = this.joinAbort.signal
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      aborted.throwIfAborted()
      const url = urls[attempt % urls.length] as string
      try {
        const res = await this.fetch(`${url.replace(/\/$/, '')}/join`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...authHeaders(opts.security, 'admin') },
          body: JSON.stringify({ id: opts.id, ...advertised(opts) }),
          signal: AbortSignal.any([aborted, AbortSignal.timeout(15_000)]),
        })
        if (res.ok) {
          const body = (await res.json()) as { members?: Record<string, MemberAddress> }
          if (body.members && typeof body.members === 'object')
            this.replica.learnMembers(body.members)
          this.log.info({ event: 'joined', via: url }, 'added as a learner; catching up')
          return
        }
        const body = await res.text()
        this.log.warn(
          { event: 'join_refused', via: url, status: res.status, body },
          'join refused; retrying',
        )
        if (res.status >= 400 && res.status < 500)
          throw new Error(`join refused by ${url}: ${body}`)
      } catch (e) {
        if (aborted.aborted) throw e
        if (e instanceof Error && e.message.startsWith('join refused')) throw e
        this.log.warn({ event: 'join_retry', via: url, err: e }, 'join failed; retrying')
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          aborted.removeEventListener('abort', done)
          resolve()
        }
        const timer = setTimeout(done, Math.min(2000, 100 * 2 ** attempt))
        aborted.addEventListener('abort', done)
      })
    }
    throw new Error(`could not join through ${urls.join(', ')} within 60 s`)
  }

  /**
   * watchRemoval finds out when this member was removed without hearing of it: the leader
   * stops talking to a member once its removal applies, so a removed follower never learns
   * the outcome from Raft (and on a restart its data directory still lists it). When it has
   * heard no leader for three of its longest election timeouts, it asks its peers' GET
   * /cluster; a peer that applied at least as far and lists it no more proves the removal
   * (Replica.markRemoved), after which the member answers 503 "removed".
   */
  private watchRemoval(electionMs: number): void {
    const silentMs = 3 * 2 * electionMs
    this.removalTimer = setInterval(
      () => {
        if (this.removalCheckInFlight || !this.replica.removalSuspected(silentMs)) return
        this.removalCheckInFlight = true
        this.checkRemoval()
          .catch((e: unknown) => this.log.warn({ event: 'removal_check_failed', err: e }))
          .finally(() => {
            this.removalCheckInFlight = false
          })
      },
      Math.max(100, electionMs),
    )
    this.removalTimer.unref()
  }

  /** scheme is the one of every member's HTTP API: this member's own. */
  private get scheme(): string {
    return this.server.scheme
  }

  private async checkRemoval(): Promise<void> {
    const peers = Object.entries(this.replica.memberAddresses()).filter(([id]) => id !== this.id)
    await Promise.all(
      peers.map(async ([id, addr]) => {
        try {
          const res = await this.fetch(`${memberUrl(addr.http, this.scheme)}/cluster`, {
            headers: this.readAuth,
            signal: AbortSignal.timeout(1_000),
          })
          if (!res.ok) return
          const body = (await res.json()) as Partial<ClusterResponse>
          if (typeof body.applied !== 'number' || !Array.isArray(body.members)) return
          if (body.members.some((m) => m.id === this.id)) return
          this.replica.markRemoved(id, body.applied)
        } catch {
          // An unreachable peer proves nothing.
        }
      }),
    )
  }

  /** shutdown stops the member gracefully: hand leadership to the most caught-up voter,
   * stop taking requests and let those in flight end, stop Raft, close the store. */
  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown()
    return this.stopping
  }

  private async doShutdown(): Promise<void> {
    this.joinAbort.abort()
    clearInterval(this.removalTimer)
    const s = this.replica.status()
    if (s.role === 'leader') {
      let best = NONE
      let bestMatch = -1
      for (const [id, pr] of s.progress) {
        if (id !== this.id && !pr.isLearner && pr.match > bestMatch) {
          best = id
          bestMatch = pr.match
        }
      }
      if (best !== NONE) {
        const moved = await this.replica.transferLeadership(best, 3_000)
        this.log.info(
          { event: 'transfer_on_shutdown', to: best, moved },
          moved ? 'leadership handed over' : 'leadership transfer did not finish',
        )
      }
    }
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      const started = Date.now()
      await fn()
      this.log.info({ event: 'shutdown_step', step: name, ms: Date.now() - started }, name)
    }
    await step('http_closed', () => this.server.close())
    await step('raft_stopped', () => this.replica.stop())
    await step('store_closed', () => this.store.close())
    this.log.info({ event: 'stopped' }, 'stopped cleanly')
  }
}
