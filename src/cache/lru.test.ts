import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ByteLru, ENTRY_OVERHEAD_BYTES, entrySize } from './lru.ts'

describe('ByteLru', () => {
  it('counts key bytes (UTF-8) plus value bytes plus the per-entry overhead', () => {
    const lru = new ByteLru()
    lru.add('ключ', new Uint8Array(10))
    assert.equal(entrySize('ключ', new Uint8Array(10)), 18 + ENTRY_OVERHEAD_BYTES)
    assert.equal(lru.bytes, 18 + ENTRY_OVERHEAD_BYTES)
    assert.equal(lru.items, 1)
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
    assert.equal(lru.bytes, 0)
    assert.deepEqual(lru.stats(), { bytes: 0, items: 0, gets: 1, hits: 1, evictions: 3 })
  })

  it('keeps the first value of a key (values never change)', () => {
    const lru = new ByteLru()
    lru.add('k', Uint8Array.of(1))
    lru.add('k', Uint8Array.of(2, 3))
    assert.deepEqual(lru.get('k'), Uint8Array.of(1))
    assert.equal(lru.bytes, 2 + ENTRY_OVERHEAD_BYTES)
    assert.equal(lru.get('missing'), undefined)
    assert.equal(lru.stats().gets, 2)
    assert.equal(lru.stats().hits, 1)
  })
})
