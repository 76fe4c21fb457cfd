// The port plan of `oncekv dev`: the original's ports for the usual shape, and never one port
// wanted by two listeners, however many caches (seven or more ran the caches' peer ports
// 5541… into the admin's 5546).
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { clearDevFolder, devChildEnv, planPorts, type DevPorts } from './dev.ts'

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

describe('oncekv dev --fresh', () => {
  it('deletes nothing in a folder that is not an oncekv dev folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oncekv-dev-fresh-'))
    try {
      writeFileSync(join(dir, 'thesis.txt'), 'precious')
      await assert.rejects(
        clearDevFolder(dir),
        /is not one \(it has no ports\.json\): nothing was deleted/,
      )
      assert.equal(readFileSync(join(dir, 'thesis.txt'), 'utf8'), 'precious')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('deletes nothing while a recorded port answers, and empties a stopped system folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oncekv-dev-fresh-'))
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const live = (server.address() as AddressInfo).port
    try {
      const ports = planPorts(1, 0)
      writeFileSync(join(dir, 'ports.json'), JSON.stringify({ ...ports, admin: live }))
      writeFileSync(join(dir, 'n1-data'), 'member data')
      await assert.rejects(clearDevFolder(dir), new RegExp(`port ${live} .* answers`))
      assert(existsSync(join(dir, 'n1-data')))
      await new Promise<void>((r) => server.close(() => r()))
      await clearDevFolder(dir)
      assert(!existsSync(dir))
    } finally {
      server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('oncekv dev environment', () => {
  it('hands its processes no token and no cluster secret (auth off)', () => {
    const env = devChildEnv({
      PATH: '/bin',
      ONCEKV_WRITE_TOKEN: 'w'.repeat(20),
      ONCEKV_READ_TOKEN: 'r'.repeat(20),
      ONCEKV_ADMIN_TOKEN: 'a'.repeat(20),
      ONCEKV_CLUSTER_SECRET: 'c'.repeat(20),
    })
    assert.deepEqual(env, { PATH: '/bin' })
  })
})
