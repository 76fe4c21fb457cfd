// A byte-bounded LRU of immutable values: what groupcache calls a cache (its main and hot
// caches are two of these). Size counts the UTF-8 bytes of the key, the bytes of the value
// and what holding one entry costs the process beyond them (the entry overhead, measured),
// so a bound on the sum is a bound on the memory the entries take. Values never change in
// oncekv, so an entry is never stale; it only ages out.
//
// Small values are copied into shared slabs (64 KiB each) rather than kept in buffers of
// their own: a buffer of its own costs some 300 B beyond its bytes (its ArrayBuffer object
// and the backing-store record and allocation behind it), three times a 100 B value. A slab
// is freed when the last value in it goes (never reused before: a response being written may
// still read an evicted value); the bytes of evicted values in slabs still alive are waste,
// counted in `bytes` too, and when they outgrow the live bytes the cache copies its live small
// values into fresh slabs, so waste never exceeds what is live (plus two slabs).

/** CACHE_BYTES_DEFAULT is the default bound of a node's main and hot caches together. */
export const CACHE_BYTES_DEFAULT = 64 * 1024 * 1024

/** SLAB_BYTES is the size of the buffers small values share (a cache may take smaller ones:
 * slabBytesFor). */
export const SLAB_BYTES = 64 * 1024

/** SLAB_VALUE_MAX is the largest value kept in a 64 KiB slab; larger ones keep their own
 * buffer (in a smaller slab, an eighth of it). */
export const SLAB_VALUE_MAX = 1024

/** slabBytesFor is the slab size of caches bounded by cacheBytes together: a 64th of the
 * bound, so the slabs being filled weigh little against it, and at most SLAB_BYTES. */
export function slabBytesFor(cacheBytes: number): number {
  return Math.max(64, Math.min(SLAB_BYTES, Math.floor(cacheBytes / 64)))
}

/**
 * ENTRY_OVERHEAD_BYTES is the memory one cache entry takes beyond its key and value bytes when
 * the value has a buffer of its own (over SLAB_VALUE_MAX): the Map slot, the entry record, the
 * key string's header, the value's Uint8Array and ArrayBuffer objects on the JavaScript heap,
 * the backing-store record and allocation overhead off the heap, and the ETag string and its
 * WeakMap slot (src/http/values.ts). SLAB_ENTRY_OVERHEAD_BYTES is the same for a value in a
 * slab, which has no ArrayBuffer nor backing store of its own. Measured on Node.js 20 (x64)
 * by filling a ByteLru the way a cache node does (keys sliced from URLs, values copied from
 * network buffers, etagOf called once per held value), collecting garbage and dividing the
 * growth of the heap and of the resident set by the entries: values of 1,025-2,048 B grew
 * the heap by 436-476 B and the resident set by 760-860 B beyond key and value (1,000,000
 * values of 100 B in buffers of their own, before slabs: 663 B); values of 100-1,000 B in
 * slabs grew the heap by 349-388 B and the resident set by 437 B (1,000,000 entries) to
 * 517 B (300,000; the heap's spare room weighs more).
 */
export const ENTRY_OVERHEAD_BYTES = 800
export const SLAB_ENTRY_OVERHEAD_BYTES = 448

/** CacheStats are groupcache's per-cache counters. */
export interface CacheStats {
  readonly bytes: number
  readonly items: number
  readonly gets: number
  readonly hits: number
  readonly evictions: number
}

/** Slab is a buffer small values are copied into, front to back. */
class Slab {
  constructor(readonly buffer: ArrayBuffer) {}
  used = 0
  /** live is the bytes of the values in this slab still held. */
  live = 0
}

interface Entry {
  value: Uint8Array
  readonly size: number
  /** slab holds the value, when it is small. */
  slab: Slab | undefined
}

/** entrySize is what one key/value pair counts against a bound: key (UTF-8) and value
 * bytes plus the entry overhead (less for a value up to slabValueMax, kept in a slab). */
export function entrySize(key: string, value: Uint8Array, slabValueMax = SLAB_VALUE_MAX): number {
  const n = value.byteLength
  const overhead = n > 0 && n <= slabValueMax ? SLAB_ENTRY_OVERHEAD_BYTES : ENTRY_OVERHEAD_BYTES
  return Buffer.byteLength(key, 'utf8') + value.byteLength + overhead
}

/** ByteLru holds values, least recently used first; the owner evicts to keep a bound. */
export class ByteLru {
  // A Map iterates in insertion order: re-inserting on use keeps the oldest first.
  private readonly map = new Map<string, Entry>()
  private entryBytes = 0
  private slab: Slab | undefined
  /** slabs is the number of slabs holding a live value (or the current one); slabLive the
   * bytes of the values in them. */
  private slabs = 0
  private slabLive = 0
  private getCount = 0
  private hitCount = 0
  private evictionCount = 0
  /** slabValueMax is the largest value kept in a slab. */
  readonly slabValueMax: number

  /** slabBytes is the size of this cache's slabs (SLAB_BYTES by default). */
  constructor(readonly slabBytes = SLAB_BYTES) {
    this.slabValueMax = Math.min(SLAB_VALUE_MAX, Math.floor(slabBytes / 8))
  }

  /** entrySize is what key and value count against the bound in this cache. */
  entrySize(key: string, value: Uint8Array): number {
    return entrySize(key, value, this.slabValueMax)
  }

  /** get returns the value and marks it used. */
  get(key: string): Uint8Array | undefined {
    this.getCount++
    const e = this.map.get(key)
    if (!e) return undefined
    this.hitCount++
    this.map.delete(key)
    this.map.set(key, e)
    return e.value
  }

  /** has is true when key is held; it neither counts nor marks use. */
  has(key: string): boolean {
    return this.map.has(key)
  }

  /** add stores key (a key already held keeps its entry: values never change). A small value
   * is copied into a slab, so the caller's buffer is not kept. */
  add(key: string, value: Uint8Array): void {
    if (this.map.has(key)) return
    const size = this.entrySize(key, value)
    const e: Entry = { value, size, slab: undefined }
    // (An empty value has no bytes to share a slab with.)
    if (value.byteLength > 0 && value.byteLength <= this.slabValueMax) this.place(e)
    this.map.set(key, e)
    this.entryBytes += size
  }

  /** removeOldest evicts the least recently used entry; false when empty. */
  removeOldest(): boolean {
    const first = this.map.entries().next()
    if (first.done) return false
    const [key, e] = first.value
    this.map.delete(key)
    this.entryBytes -= e.size
    this.evictionCount++
    const slab = e.slab
    if (slab) {
      slab.live -= e.value.byteLength
      this.slabLive -= e.value.byteLength
      if (slab.live === 0) {
        // Empty, it is freed (the current one too: it is not written again).
        this.slabs--
        if (slab === this.slab) this.slab = undefined
      } else if (this.waste > this.slabLive && this.waste > 2 * this.slabBytes) this.compact()
    }
    return true
  }

  /** place copies e's value to the end of the current slab (a new one when it is full). */
  private place(e: Entry): void {
    const n = e.value.byteLength
    let slab = this.slab
    if (!slab || slab.used + n > this.slabBytes) {
      slab = this.slab = new Slab(new ArrayBuffer(this.slabBytes))
      this.slabs++
    }
    // A Buffer view: the fast path sends it as it is, with no wrapper per answer.
    const copy = Buffer.from(slab.buffer, slab.used, n)
    copy.set(e.value)
    slab.used += n
    slab.live += n
    this.slabLive += n
    e.value = copy
    e.slab = slab
  }

  /** compact copies every small value into fresh slabs; the old ones go with the last
   * response still reading from them. */
  private compact(): void {
    this.slab = undefined
    this.slabs = 0
    this.slabLive = 0
    for (const e of this.map.values()) if (e.slab) this.place(e)
  }

  /** waste is the slab bytes not holding a live value. */
  private get waste(): number {
    return this.slabs * this.slabBytes - this.slabLive
  }

  /** bytes is the sum of entry sizes held, plus the slab bytes not holding a live value. */
  get bytes(): number {
    return this.entryBytes + this.waste
  }

  /** items is the number of entries held. */
  get items(): number {
    return this.map.size
  }

  /** stats are the counters. */
  stats(): CacheStats {
    return {
      bytes: this.bytes,
      items: this.map.size,
      gets: this.getCount,
      hits: this.hitCount,
      evictions: this.evictionCount,
    }
  }
}
