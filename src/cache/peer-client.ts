// The client side of the peer protocol: `GET /_oncekv/kv/:key` on the owner's peer listener,
// over one keep-alive pool per peer, bounded by a timeout so a slow or dead owner costs at
// most that long (then the asking node fills from the database itself). The node sets the
// timeout above the owner's database fill budget (node.ts, PEER_TIMEOUT_MARGIN_MS).
import { Pool } from 'undici'
import { poolTlsOptions } from '../security/http-client.ts'
import type { TlsConfig } from '../security/index.ts'
import { FetchError, fetchValue, keyPath } from './fetch-value.ts'

/** PEER_BASE is the base path of the peer protocol. */
export const PEER_BASE = '/_oncekv'

/** PeerClientOptions configure the peer protocol's client side. */
export interface PeerClientOptions {
  /** authorization is the Authorization header every peer request carries (the cluster
   * secret as a Bearer token), if any. */
  readonly authorization?: string
  readonly timeoutMs?: number
  readonly maxValueBytes: number
  readonly connections?: number
  /** tls: connections to https:// peers trust its CA and, under --peer-mtls, show its
   * certificate. */
  readonly tls?: TlsConfig
}

/** PeerClient fetches values from owner peers. */
export class PeerClient {
  private readonly headers: Record<string, string> | undefined
  private readonly pools = new Map<string, Pool>()
  // Peers that failed lately are not asked until the time here: a hung owner costs one
  // timeout, then the asking node reads the database itself until the pause ends.
  private readonly paused = new Map<string, { until: number; failures: number }>()
  private readonly timeoutMs: number
  private readonly maxValueBytes: number
  private readonly connections: number
  private readonly tls: TlsConfig | undefined

  constructor(opts: PeerClientOptions) {
    this.headers = opts.authorization ? { authorization: opts.authorization } : undefined
    this.timeoutMs = opts.timeoutMs ?? 1_000
    this.maxValueBytes = opts.maxValueBytes
    this.connections = opts.connections ?? 64
    this.tls = opts.tls
  }

  /** fetch asks peer for key: the value, undefined for not found; it throws on failure. */
  async fetch(peer: string, key: string): Promise<Uint8Array | undefined> {
    const pause = this.paused.get(peer)
    if (pause && pause.until > Date.now())
      throw new FetchError(`${peer} is paused after ${pause.failures} failures`)
    try {
      const value = await this.fetchNow(peer, key)
      this.paused.delete(peer)
      return value
    } catch (e) {
      const failures = (pause?.failures ?? 0) + 1
      this.paused.set(peer, {
        failures,
        until: Date.now() + Math.min(5_000, 250 * 2 ** Math.min(failures - 1, 5)),
      })
      throw e
    }
  }

  private fetchNow(peer: string, key: string): Promise<Uint8Array | undefined> {
    let pool = this.pools.get(peer)
    if (!pool) {
      pool = new Pool(peer, { connections: this.connections, ...poolTlsOptions(this.tls, true) })
      this.pools.set(peer, pool)
    }
    const path = `${PEER_BASE}/kv/${keyPath(key)}`
    // A timer cleared with the answer (AbortSignal.timeout's lives out its full span).
    const controller = new AbortController()
    const ms = this.timeoutMs
    const timer = setTimeout(
      () => controller.abort(new Error(`${peer} did not answer within ${ms} ms`)),
      ms,
    )
    return fetchValue(pool, path, controller.signal, this.maxValueBytes, this.headers).finally(() =>
      clearTimeout(timer),
    )
  }

  /** retain closes the pools of peers that left. */
  retain(peers: readonly string[]): void {
    for (const [peer, pool] of this.pools) {
      if (!peers.includes(peer)) {
        this.pools.delete(peer)
        this.paused.delete(peer)
        void pool.close()
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()))
    this.pools.clear()
  }
}
