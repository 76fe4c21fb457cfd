// NodeTier: fastest healthy nodes first, never-used ones before them, paused ones last (the
// soonest back first); pauses double with failures in a row, a success ends them; a new list
// keeps what was learned about nodes still in it.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NodeTier } from './nodes.ts'

describe('NodeTier', () => {
  it('orders never-used nodes first, then by latency average', () => {
    const t = new NodeTier()
    t.set(['a', 'b', 'c'])
    assert.deepEqual(t.order(0), { up: ['a', 'b', 'c'], down: [] })
    t.success('a', 30)
    t.success('b', 10)
    assert.deepEqual(t.order(0).up, ['c', 'b', 'a'])
    t.success('c', 20)
    assert.deepEqual(t.order(0).up, ['b', 'c', 'a'])
    // The average moves by 30 % of each new sample.
    t.success('b', 110)
    assert.equal(t.info(0).find((n) => n.url === 'b')?.ewmaMs, 40)
    assert.deepEqual(t.order(0).up, ['c', 'a', 'b'])
  })

  it('pauses a failed node, doubling per failure in a row, until a success', () => {
    const t = new NodeTier()
    t.set(['a', 'b'])
    t.success('a', 1)
    t.success('b', 5)
    t.failure('a', 1000)
    assert.deepEqual(t.order(1000), { up: ['b'], down: ['a'] })
    assert.deepEqual(t.order(1250).up, ['a', 'b'])
    t.failure('a', 2000)
    assert.deepEqual(t.order(2499).down, ['a'])
    assert.deepEqual(t.order(2500).down, [])
    for (let i = 0; i < 20; i++) t.failure('a', 3000)
    assert.deepEqual(t.order(12_999).down, ['a'])
    assert.deepEqual(t.order(13_000).down, [], 'pauses stop growing at 10 s')
    t.failure('b', 3000)
    assert.deepEqual(t.order(3000).down, ['b', 'a'], 'the soonest back first')
    t.success('a', 1)
    const a = t.info(3000).find((n) => n.url === 'a')
    assert.deepEqual(
      { down: a?.down, failures: a?.failures, errors: a?.errors, requests: a?.requests },
      { down: false, failures: 0, errors: 22, requests: 24 },
    )
  })

  it('keeps what it learned across new lists', () => {
    const t = new NodeTier()
    t.set(['a', 'b'])
    t.success('a', 7)
    t.set(['c', 'a', 'a'])
    assert.deepEqual(t.urls, ['c', 'a'])
    assert.equal(t.info(0).find((n) => n.url === 'a')?.ewmaMs, 7)
    t.success('gone', 1)
    assert.equal(t.has('gone'), false)
  })
})
