// The cache's read path, groupcache's Group: main cache, then hot cache, then one load per
// key at a time (single flight): from the owner over the peer protocol when another peer owns
// the key, else (or when the owner fails) from the database tier. Values are immutable, so
// anything cached is right forever; "not found" is never cached, since the key may be
// written at any moment.
import { ByteLru, slabBytesFor, type CacheStats } from './lru.ts'
import { HashRing } from './ring.ts'
import { SingleFlight } from './single-flight.ts'

/** GroupStats are groupcache's counters, under its names. */
export interface GroupStats {
  /** Gets counts every get, from clients and from peers. */
  Gets: number
  /** CacheHits counts gets answered by the main or the hot cache. */
  CacheHits: number
  /** PeerLoads counts values (or authoritative not-founds) fetched from the owner. */
  PeerLoads: number
  /** PeerErrors counts failed fetches from the owner (then the node loads itself). */
  PeerErrors: number
  /** Loads counts gets that missed both caches. */
  Loads: number
  /** LoadsDeduped counts the loads that ran after single flight merged the rest (a load
   * that joined one already running is in Loads, not here). */
  LoadsDeduped: number
  /** LocalLoads counts successful loads from the database tier. */
  LocalLoads: number
  /** LocalLoadErrs counts failed loads from the database tier. */
  LocalLoadErrs: number
  /** ServerRequests counts requests from peers served by this node. */
  ServerRequests: number
}

/** Lookup is where a value came from, for the response headers and the dashboard. */
export type Source = 'main' | 'hot' | 'peer' | 'db'

/** GetResult is a value and where it came from, or not found. */
export type GetResult =
  | { readonly found: true; readonly value: Uint8Array; readonly source: Source }
  | { readonly found: false }

/** PeerFetch asks the owner peer for key; it resolves to undefined for an authoritative
 * not-found and throws on any failure. */
export type PeerFetch = (peer: string, key: string) => Promise<Uint8Array | undefined>

/** DbLoad reads key from the database tier; undefined is an authoritative not-found. */
export type DbLoad = (key: string) => Promise<Uint8Array | undefined>

/** GroupOptions configure a Group. */
export interface GroupOptions {
  /** self is this node's peer URL, as it appears in the peer list. */
  readonly self: string
  /** cacheBytes bounds the main and hot caches together (entrySize: key + value bytes and
   * the per-entry overhead). */
  readonly cacheBytes: number
  readonly replicas?: number
  readonly fetchFromPeer: PeerFetch
  readonly loadFromDb: DbLoad
  /** hotChance is the share of peer loads kept in the hot cache (groupcache: 1/10). */
  readonly hotChance?: number
  /** random draws in [0, 1); Math.random by default. */
  readonly random?: () => number
}

type LoadResult = { value: Uint8Array | undefined; source: Source }

/** Group is one node's cache. */
export class Group {
  readonly stats: GroupStats = {
    Gets: 0,
    CacheHits: 0,
    PeerLoads: 0,
    PeerErrors: 0,
    Loads: 0,
    LoadsDeduped: 0,
    LocalLoads: 0,
    LocalLoadErrs: 0,
    ServerRequests: 0,
  }
  readonly cacheBytes: number
  private readonly main: ByteLru
  private readonly hot: ByteLru
  // Client loads (which may ask the owner) and database reads (shared by client loads and
  // peers' requests, so the owner reads a key once however it is asked) fly separately: a
  // peer's request never joins a load that may ask a peer, so two nodes whose peer lists
  // differ for a moment cannot wait on each other.
  private readonly flights = new SingleFlight<LoadResult>()
  private readonly dbFlights = new SingleFlight<LoadResult>()
  private ringNow: HashRing
  private readonly replicas: number | undefined
  private readonly self: string
  private readonly fetchFromPeer: PeerFetch
  private readonly loadFromDb: DbLoad
  private readonly hotChance: number
  private readonly random: () => number

  constructor(opts: GroupOptions) {
    if (!Number.isSafeInteger(opts.cacheBytes) || opts.cacheBytes < 0) {
      throw new RangeError(`cacheBytes must be a non-negative integer, not ${opts.cacheBytes}`)
    }
    this.cacheBytes = opts.cacheBytes
    this.main = new ByteLru(slabBytesFor(opts.cacheBytes))
    this.hot = new ByteLru(slabBytesFor(opts.cacheBytes))
    this.self = opts.self
    this.replicas = opts.replicas
    this.ringNow = new HashRing([opts.self], opts.replicas)
    this.fetchFromPeer = opts.fetchFromPeer
    this.loadFromDb = opts.loadFromDb
    this.hotChance = opts.hotChance ?? 0.1
    this.random = opts.random ?? Math.random
  }

  /** ring is the current ring. */
  get ring(): HashRing {
    return this.ringNow
  }

  /** setPeers replaces the peer list (self is always on it); false when nothing changed. */
  setPeers(peers: readonly string[]): boolean {
    const all = [...peers, this.self]
    if (this.ringNow.samePeers(all)) return false
    this.ringNow = new HashRing(all, this.replicas)
    return true
  }

  /** owner is the peer that owns key. */
  owner(key: string): string {
    return this.ringNow.owner(key) ?? this.self
  }

  /** get answers a client: caches, then the owner, then the database tier. */
  async get(key: string): Promise<GetResult> {
    return this.lookup(key, false)
  }

  /** getCached answers key from this node's caches alone (counted as a get and a hit), or
   * undefined; the caller then takes get(), which counts the miss. */
  getCached(key: string): GetResult | undefined {
    // A miss is not looked up (nor counted) here: get() looks and counts it once.
    if (!this.main.has(key) && !this.hot.has(key)) return undefined
    const cached = this.fromCache(key)
    if (cached) {
      this.stats.Gets++
      this.stats.CacheHits++
    }
    return cached
  }

  /** getForPeer answers a peer that believes this node owns key. It never asks another peer
   * (two nodes with different peer lists must not send a key back and forth). */
  async getForPeer(key: string): Promise<GetResult> {
    this.stats.ServerRequests++
    return this.lookup(key, true)
  }

  private async lookup(key: string, forPeer: boolean): Promise<GetResult> {
    this.stats.Gets++
    const cached = this.fromCache(key)
    if (cached) {
      this.stats.CacheHits++
      return cached
    }
    this.stats.Loads++
    const r = forPeer
      ? await this.fresh(this.dbFlights, key, () => this.loadFromDbAndKeep(key), true)
      : await this.fresh(this.flights, key, () => this.load(key), true)
    return r.value ? { found: true, value: r.value, source: r.source } : { found: false }
  }

  /**
   * fresh runs fn for key through flights so that what it answers was read after this call
   * began. A value is right whenever it was read (values never change), but a not-found is
   * only as new as the read behind it: a call that joined a flight started before it began
   * could be told "not found" of a key written, and acknowledged, in between (a stale read,
   * which the chaos run caught). Such a call asks again, once: any flight in progress by then
   * started after the first one ended, so after this call began. counted: count each flight
   * this call runs in LoadsDeduped.
   */
  private async fresh(
    flights: SingleFlight<LoadResult>,
    key: string,
    fn: () => Promise<LoadResult>,
    counted = false,
  ): Promise<LoadResult> {
    const first = flights.do(key, fn)
    if (counted && !first.joined) this.stats.LoadsDeduped++
    const r = await first.promise
    if (r.value || !first.joined) return r
    const again = flights.do(key, fn)
    if (counted && !again.joined) this.stats.LoadsDeduped++
    return again.promise
  }

  private fromCache(key: string): GetResult | undefined {
    const main = this.main.get(key)
    if (main) return { found: true, value: main, source: 'main' }
    const hot = this.hot.get(key)
    if (hot) return { found: true, value: hot, source: 'hot' }
    return undefined
  }

  private async load(key: string): Promise<LoadResult> {
    const owner = this.owner(key)
    if (owner !== this.self) {
      try {
        const value = await this.fetchFromPeer(owner, key)
        this.stats.PeerLoads++
        if (value && this.random() < this.hotChance) this.populate(this.hot, key, value)
        return { value, source: 'peer' }
      } catch {
        this.stats.PeerErrors++
      }
    }
    return this.fresh(this.dbFlights, key, () => this.loadFromDbAndKeep(key))
  }

  private async loadFromDbAndKeep(key: string): Promise<LoadResult> {
    let value: Uint8Array | undefined
    try {
      value = await this.loadFromDb(key)
    } catch (e) {
      this.stats.LocalLoadErrs++
      throw e
    }
    this.stats.LocalLoads++
    // A node keeps what it owns in the main cache. A load after a peer error, or for a peer
    // whose ring differs, is kept too: it is right forever, and eviction bounds it.
    if (value) this.populate(this.main, key, value)
    return { value, source: 'db' }
  }

  /** populate adds key to cache and evicts (groupcache's policy) until the bound holds: the
   * hot cache gives way while it is over 1/8 of the main cache, else the main cache does. */
  private populate(cache: ByteLru, key: string, value: Uint8Array): void {
    // One entry may not take over the cache: over 1/8 of the bound, it is served, not kept.
    if (cache.entrySize(key, value) > this.cacheBytes / 8) return
    cache.add(key, value)
    for (;;) {
      const mainBytes = this.main.bytes
      const hotBytes = this.hot.bytes
      if (mainBytes + hotBytes <= this.cacheBytes) return
      const victim = hotBytes > mainBytes / 8 ? this.hot : this.main
      if (!victim.removeOldest()) return
    }
  }

  /** mainStats and hotStats are the caches' counters. */
  mainStats(): CacheStats {
    return this.main.stats()
  }

  hotStats(): CacheStats {
    return this.hot.stats()
  }

  /** inFlight is the number of loads running. */
  get inFlight(): number {
    return this.flights.size + this.dbFlights.size
  }
}
