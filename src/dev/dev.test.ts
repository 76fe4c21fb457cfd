// The port plan of `oncekv dev`: the original's ports for the usual shape, and never one port
// wanted by two listeners, however many caches (seven or more ran the caches' peer ports
// 5541… into the admin's 5546).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { planPorts, type DevPorts } from './dev.ts'

function every(p: DevPorts): number[] {
  return [
    p.admin,
    ...p.dbs.flatMap((d) => [d.http, d.raft]),
    ...p.caches.flatMap((c) => [c.http, c.peer]),
  ]
}

describe('oncekv dev port plan', () => {
  it("is the original's ports for 3 members and 3 caches", () => {
    assert.deepEqual(planPorts(3, 3), {
      admin: 5546,
      dbs: [
        { id: 'n1', http: 11000, raft: 12000 },
        { id: 'n2', http: 11001, raft: 12001 },
        { id: 'n3', http: 11002, raft: 12002 },
      ],
      caches: [
        { id: 'c1', http: 5551, peer: 5541 },
        { id: 'c2', http: 5552, peer: 5542 },
        { id: 'c3', http: 5553, peer: 5543 },
      ],
    })
  })

  it('keeps the admin on 5546 with 7 caches: the peer ports skip it', () => {
    const p = planPorts(3, 7)
    assert.equal(p.admin, 5546)
    assert.deepEqual(
      p.caches.map((c) => c.peer),
      [5541, 5542, 5543, 5544, 5545, 5547, 5548],
    )
    assert.deepEqual(
      p.caches.map((c) => c.http),
      [5551, 5552, 5553, 5554, 5555, 5556, 5557],
    )
    const all = every(p)
    assert.equal(new Set(all).size, all.length, `a port wanted twice: ${all.join(' ')}`)
  })

  it('never wants a port twice, for any shape', () => {
    for (const [nodes, caches] of [
      [1, 1],
      [5, 6],
      [3, 12],
      [7, 40],
      [1200, 2],
    ] as const) {
      const all = every(planPorts(nodes, caches))
      assert.equal(all.length, 1 + 2 * nodes + 2 * caches)
      assert.equal(new Set(all).size, all.length, `${nodes} members, ${caches} caches`)
      assert.ok(
        all.every((x) => x > 0 && x < 65536),
        `${nodes} members, ${caches} caches`,
      )
    }
  })
})
