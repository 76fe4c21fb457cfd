// The hash ring: every node computes the same owner from the same peer list, keys spread
// evenly, and a change of one peer among N moves about 1/N of the keys, all to or from it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HashRing, REPLICAS_DEFAULT } from './ring.ts'

const peers = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `http://127.0.0.1:${5541 + i}`)
const keys = Array.from({ length: 30_000 }, (_, i) => `key-${i}/${(i * 7919) % 1000}`)

function owners(ring: HashRing): string[] {
  return keys.map((k) => ring.owner(k) as string)
}

describe('HashRing', () => {
  it('gives the same owners whatever the order or duplicates of the peer list', () => {
    const a = new HashRing(peers(3))
    const b = new HashRing([...peers(3)].reverse().concat(peers(1)))
    assert.deepEqual(owners(a), owners(b))
    assert.deepEqual(b.peers, peers(3))
  })

  it('hashes a key the same as a string and as its UTF-8 bytes', () => {
    const ring = new HashRing(peers(5))
    for (const k of ['a', 'ключ', '鍵/🔑', keys[17] as string])
      assert.equal(ring.owner(k), ring.owner(new TextEncoder().encode(k)))
  })

  it(`spreads keys evenly over 3 peers with ${REPLICAS_DEFAULT} points each`, () => {
    const counts = new Map<string, number>()
    for (const o of owners(new HashRing(peers(3)))) counts.set(o, (counts.get(o) ?? 0) + 1)
    assert.equal(counts.size, 3)
    for (const [peer, n] of counts) {
      const share = n / keys.length
      assert.ok(share > 0.28 && share < 0.39, `${peer} owns ${(share * 100).toFixed(1)} %`)
    }
  })

  it('moves about 1/N of the keys, all to the new peer, when a peer joins', () => {
    const before = owners(new HashRing(peers(3)))
    const after = owners(new HashRing(peers(4)))
    const newcomer = peers(4)[3]
    let moved = 0
    before.forEach((o, i) => {
      if (after[i] === o) return
      moved++
      assert.equal(after[i], newcomer, `key ${keys[i]} moved from ${o} to ${after[i]}`)
    })
    const share = moved / keys.length
    assert.ok(share > 0.18 && share < 0.32, `moved ${(share * 100).toFixed(1)} %, want ~25 %`)
  })

  it('moves only the keys of a peer that leaves', () => {
    const all = peers(4)
    const gone = all[1]
    const before = owners(new HashRing(all))
    const after = owners(new HashRing(all.filter((p) => p !== gone)))
    before.forEach((o, i) => {
      if (o !== gone) assert.equal(after[i], o, `key ${keys[i]} of ${o} moved`)
      else assert.notEqual(after[i], gone)
    })
  })

  it('answers undefined on an empty ring and refuses a bad replica count', () => {
    assert.equal(new HashRing([]).owner('k'), undefined)
    assert.throws(() => new HashRing(peers(1), 0), RangeError)
    assert.throws(() => new HashRing(peers(1), 1.5), RangeError)
  })

  it('samePeers compares as sets', () => {
    const ring = new HashRing(peers(3))
    assert.ok(ring.samePeers([...peers(3)].reverse()))
    assert.ok(!ring.samePeers(peers(2)))
    assert.ok(!ring.samePeers(peers(4)))
  })
})
