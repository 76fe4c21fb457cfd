import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SeededRng } from '../base/index.ts'
import {
  ByteLru,
  ENTRY_OVERHEAD_BYTES,
  entrySize,
  SLAB_BYTES,
  SLAB_ENTRY_OVERHEAD_BYTES,
  SLAB_VALUE_MAX,
  slabBytesFor,
} from './lru.ts'

/** bytes compares a value by its bytes alone (small values come back as Buffer views). */
function bytes(v: Uint8Array | undefined): Uint8Array | undefined {
  return v === undefined ? undefined : new Uint8Array(v)
}

describe('ByteLru', () => {
  it('counts key bytes (UTF-8) plus value bytes plus the per-entry overhead', () => {
    const big = new Uint8Array(SLAB_VALUE_MAX + 1)
    assert.equal(entrySize('ключ', big), 8 + big.byteLength + ENTRY_OVERHEAD_BYTES)
    assert.equal(entrySize('ключ', new Uint8Array(10)), 18 + SLAB_ENTRY_OVERHEAD_BYTES)
    const lru = new ByteLru()
    lru.add('ключ', big)
    assert.equal(lru.bytes, entrySize('ключ', big))
    assert.equal(lru.items, 1)
  })

  it('copies small values into a shared slab and counts the slab bytes not in use', () => {
    const lru = new ByteLru()
    const small = Uint8Array.of(1, 2, 3)
    lru.add('a', small)
    lru.add('b', Uint8Array.of(4))
    const a = lru.get('a') as Uint8Array
    const b = lru.get('b') as Uint8Array
    assert.deepEqual(bytes(a), small)
    assert.ok(Buffer.isBuffer(a), 'a Buffer view: the fast path sends it as it is')
    assert.notEqual(a, small, 'a copy, not the caller buffer')
    assert.equal(a.buffer, b.buffer, 'one slab')
    assert.equal(a.buffer.byteLength, SLAB_BYTES)
    small[0] = 9
    assert.equal(a[0], 1)
    // The slab is charged whole: its unused bytes count until it is freed.
    assert.equal(lru.bytes, entrySize('a', a) + entrySize('b', b) + SLAB_BYTES - 4)
    // A value over SLAB_VALUE_MAX keeps its own buffer, as given.
    const big = new Uint8Array(SLAB_VALUE_MAX + 1)
    lru.add('big', big)
    assert.equal(lru.get('big'), big)
  })

  it('takes smaller slabs under a small bound, and keeps empty values out of them', () => {
    assert.equal(slabBytesFor(64 * 1024 * 1024), SLAB_BYTES)
    assert.equal(slabBytesFor(1024 * 1024), 16 * 1024)
    const lru = new ByteLru(slabBytesFor(16 * 1024))
    assert.equal(lru.slabBytes, 256)
    assert.equal(lru.slabValueMax, 32)
    const own = new Uint8Array(33)
    lru.add('own', own)
    assert.equal(lru.get('own'), own)
    lru.add('empty', new Uint8Array(0))
    lru.add('small', new Uint8Array(32))
    assert.equal(lru.get('small')?.buffer.byteLength, 256)
    assert.equal(lru.get('empty')?.byteLength, 0)
    const sizes = lru.entrySize('own', own) + lru.entrySize('empty', new Uint8Array(0))
    assert.equal(lru.bytes, sizes + lru.entrySize('small', new Uint8Array(32)) + 256 - 32)
    while (lru.removeOldest());
    assert.equal(lru.bytes, 0)
  })

  it('evicts the least recently used first; a get counts as use', () => {
    const lru = new ByteLru()
    for (const k of ['a', 'b', 'c']) lru.add(k, new Uint8Array(1))
    assert.ok(lru.get('a'))
    assert.ok(lru.removeOldest())
    assert.ok(!lru.has('b'))
    assert.ok(lru.has('a') && lru.has('c'))
    assert.ok(lru.removeOldest() && lru.removeOldest())
    assert.ok(!lru.removeOldest())
    // Empty, it holds no slab either.
    assert.equal(lru.bytes, 0)
    assert.deepEqual(lru.stats(), { bytes: 0, items: 0, gets: 1, hits: 1, evictions: 3 })
  })

  it('keeps the first value of a key (values never change)', () => {
    const lru = new ByteLru()
    lru.add('k', Uint8Array.of(1))
    lru.add('k', Uint8Array.of(2, 3))
    assert.deepEqual(bytes(lru.get('k')), Uint8Array.of(1))
    assert.equal(lru.items, 1)
    assert.equal(lru.get('missing'), undefined)
    assert.equal(lru.stats().gets, 2)
    assert.equal(lru.stats().hits, 1)
  })

  it('keeps every value intact and the waste within the live bytes under random use', (t) => {
    const seed = Number(process.env.ONCEKV_SEED ?? Date.now() % 1_000_000)
    const rng = new SeededRng(seed)
    const replay = `replay: ONCEKV_SEED=${seed} node --import tsx --test src/cache/lru.test.ts`
    t.diagnostic(`seed ${seed}; ${replay}`)
    const lru = new ByteLru()
    const want = new Map<string, Uint8Array>()
    // Values handed out and then evicted: a response may still be writing them.
    const inFlight: [Uint8Array, Uint8Array][] = []
    const bound = 8 * SLAB_BYTES
    let maxWasteSeen = 0
    for (let i = 0; i < 20_000; i++) {
      if (rng.chance(0.4) && want.size > 0) {
        // A skewed read: a few keys often, keeping values alive across many slabs.
        const key = `k${rng.chance(0.5) ? rng.int(64) : rng.int(i)}`
        const v = lru.get(key)
        if (v) {
          assert.deepEqual(bytes(v), want.get(key), `${key} at step ${i}; ${replay}`)
          if (rng.chance(0.01)) inFlight.push([v, Uint8Array.from(v)])
        }
        continue
      }
      const key = `k${i}`
      const value = new Uint8Array(1 + rng.int(rng.chance(0.05) ? 3000 : 300)).map(() =>
        rng.int(256),
      )
      lru.add(key, value)
      want.set(key, value)
      while (lru.bytes > bound) assert.ok(lru.removeOldest(), `step ${i}; ${replay}`)
      if (i % 8 !== 0) continue
      for (const k of want.keys()) if (!lru.has(k)) want.delete(k)
      const held = [...want].reduce((n, [k, v]) => n + entrySize(k, v), 0)
      const waste = lru.bytes - held
      maxWasteSeen = Math.max(maxWasteSeen, waste)
      const live = [...want.values()]
        .filter((v) => v.byteLength <= SLAB_VALUE_MAX)
        .reduce((n, v) => n + v.byteLength, 0)
      assert.ok(waste >= 0, `step ${i}: waste ${waste}; ${replay}`)
      assert.ok(
        waste <= Math.max(live, 2 * SLAB_BYTES) + SLAB_BYTES,
        `step ${i}: waste ${waste} over live ${live}; ${replay}`,
      )
    }
    for (const [k, v] of want)
      if (lru.has(k)) assert.deepEqual(bytes(lru.get(k)), v, `${k}; ${replay}`)
    for (const [v, copy] of inFlight)
      assert.deepEqual(bytes(v), copy, `a value in flight changed; ${replay}`)
    t.diagnostic(
      `${lru.items} items, ${lru.stats().evictions} evictions, most waste ${maxWasteSeen} B, ${inFlight.length} values checked after eviction`,
    )
    assert.ok(lru.stats().evictions > 5000, replay)
  })
})
