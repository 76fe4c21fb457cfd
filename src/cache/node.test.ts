// Two cache nodes in this process over real sockets, without an admin, in front of one slow
// database member: with the default timeouts a node asking the owner waits for the owner's
// single database read rather than give up and read the key a second time.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { after, describe, it } from 'node:test'
import { CacheNode } from './node.ts'
import { HashRing } from './ring.ts'
import { DB_TIMEOUT_DEFAULT_MS, peerTimeoutFor } from './timeouts.ts'

/** freePort is a loopback port free a moment ago. */
async function freePort(): Promise<number> {
  const s = createNetServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const addr = s.address()
  await new Promise((r) => s.close(r))
  return typeof addr === 'object' && addr ? addr.port : 0
}

const started: CacheNode[] = []
const servers: Server[] = []
after(async () => {
  await Promise.all(started.map((n) => n.shutdown()))
  for (const s of servers) s.close()
})

describe('CacheNode timeouts', () => {
  it('waits for an owner still reading a slow database: one read of the key', async () => {
    // Slower than the former 1 s peer timeout, well within the 3 s database budget.
    const DB_DELAY_MS = 1_500
    const reads: string[] = []
    const db = createServer((req, res) => {
      reads.push(req.url ?? '')
      const t = setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('slow'),
        DB_DELAY_MS,
      )
      res.on('close', () => clearTimeout(t))
    })
    servers.push(db)
    await new Promise<void>((r) => db.listen(0, '127.0.0.1', r))
    const dbAddr = db.address()
    const dbUrl = `http://127.0.0.1:${typeof dbAddr === 'object' && dbAddr ? dbAddr.port : 0}`
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()])
    const peerUrls = [`http://127.0.0.1:${ports[1]}`, `http://127.0.0.1:${ports[3]}`]
    for (const i of [0, 1]) {
      started.push(
        await CacheNode.start({
          http: `127.0.0.1:${ports[2 * i]}`,
          peer: `127.0.0.1:${ports[2 * i + 1]}`,
          peers: peerUrls,
          dbs: [dbUrl],
          logLevel: 'silent',
        }),
      )
    }
    const [a, b] = started as [CacheNode, CacheNode]
    assert.equal(a.peerTimeoutMs, peerTimeoutFor(DB_TIMEOUT_DEFAULT_MS))
    assert(a.peerTimeoutMs > DB_TIMEOUT_DEFAULT_MS, 'the peer timeout is above the fill budget')
    // A key b owns, read through a.
    const ring = new HashRing(peerUrls)
    let key = 'slow'
    for (let i = 0; ring.owner(key) !== b.peerUrl; i++) key = `slow/${i}`
    const r = await a.group.get(key)
    assert(r.found)
    assert.equal(new TextDecoder().decode(r.value), 'slow')
    assert.equal(r.source, 'peer')
    assert.equal(a.group.stats.PeerErrors, 0)
    assert.equal(reads.length, 1, `the database was read ${reads.length} times`)
  })
})
