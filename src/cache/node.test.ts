// Two cache nodes in this process over real sockets, without an admin, in front of one slow
// database member: with the default timeouts a node asking the owner waits for the owner's
// single database read rather than give up and read the key a second time.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { after, describe, it } from 'node:test'
import { Secret, type Security } from '../security/index.ts'
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

/** stubDb starts a database stand-in that answers every read with "value", and gives its URL. */
async function stubDb(): Promise<string> {
  const db = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('value'),
  )
  servers.push(db)
  await new Promise<void>((r) => db.listen(0, '127.0.0.1', r))
  const addr = db.address()
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
}

describe('CacheNode peer protocol with a cluster secret', () => {
  it('peers that hold it fetch from each other; without it, or with another, 401 / 403', async () => {
    const dbUrl = await stubDb()
    const ports = await Promise.all([...Array(6).keys()].map(() => freePort()))
    const peerUrls = [`http://127.0.0.1:${ports[1]}`, `http://127.0.0.1:${ports[3]}`]
    const secret = new Secret('cache-cluster-secret-0123456789', 'test')
    const node = async (i: number, security: Security): Promise<CacheNode> => {
      const n = await CacheNode.start({
        http: `127.0.0.1:${ports[2 * i]}`,
        peer: `127.0.0.1:${ports[2 * i + 1]}`,
        peers: [...peerUrls, `http://127.0.0.1:${ports[5]}`].slice(0, i === 2 ? 3 : 2),
        dbs: [dbUrl],
        logLevel: 'silent',
        security,
      })
      started.push(n)
      return n
    }
    const a = await node(0, { cluster: secret })
    const b = await node(1, { cluster: secret })
    // c knows b as a peer, but holds no secret.
    const c = await node(2, {})
    // A key b owns on a's ring and on c's.
    const ring = new HashRing(peerUrls)
    const ringOfC = new HashRing([...peerUrls, `http://127.0.0.1:${ports[5]}`])
    let key = 'k'
    for (let i = 0; ring.owner(key) !== b.peerUrl || ringOfC.owner(key) !== b.peerUrl; i++)
      key = `k/${i}`
    const r = await a.group.get(key)
    assert(r.found)
    assert.equal(r.source, 'peer')
    assert.equal(a.group.stats.PeerErrors, 0)

    const url = `${b.peerUrl}/_oncekv/kv/${encodeURIComponent(key)}`
    const none = await fetch(url)
    assert.equal(none.status, 401)
    assert.equal(none.headers.get('www-authenticate'), 'Bearer')
    assert.deepEqual(
      { ...((await none.json()) as object), message: undefined },
      { code: 1001, error: 'unauthorized', message: undefined },
    )
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-secret-0123456' } })
    assert.equal(wrong.status, 403)
    const body = (await wrong.json()) as { error: string; message: string }
    assert.equal(body.error, 'forbidden')
    assert(!JSON.stringify(body).includes(secret.reveal()))
    for (const path of ['/_oncekv/ping', '/_oncekv/nothing', '/other'])
      assert.equal((await fetch(`${b.peerUrl}${path}`)).status, 401, path)
    const right = await fetch(url, { headers: { authorization: secret.bearer() } })
    assert.equal(right.status, 200)
    assert.equal(await right.text(), 'value')

    // c holds no secret: b refuses it, and c reads the database itself.
    const viaC = await c.group.get(key)
    assert(viaC.found)
    assert.equal(viaC.source, 'db')
    assert.equal(c.group.stats.PeerErrors, 1)
  })

  it('without the secret, a read token guards the peer listener too, and peers send it', async () => {
    const dbUrl = await stubDb()
    const ports = await Promise.all([...Array(4).keys()].map(() => freePort()))
    const peerUrls = [`http://127.0.0.1:${ports[1]}`, `http://127.0.0.1:${ports[3]}`]
    const read = new Secret('cache-read-token-0123456789', 'test')
    const nodes = await Promise.all(
      [0, 1].map((i) =>
        CacheNode.start({
          http: `127.0.0.1:${ports[2 * i]}`,
          peer: `127.0.0.1:${ports[2 * i + 1]}`,
          peers: peerUrls,
          dbs: [dbUrl],
          logLevel: 'silent',
          security: { read },
        }),
      ),
    )
    started.push(...nodes)
    const [a, b] = nodes as [CacheNode, CacheNode]
    const ring = new HashRing(peerUrls)
    let key = 'k'
    for (let i = 0; ring.owner(key) !== b.peerUrl; i++) key = `k/${i}`
    const url = `${b.peerUrl}/_oncekv/kv/${encodeURIComponent(key)}`
    assert.equal((await fetch(url)).status, 401, 'no way around the read token through --peer')
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-token-0123456' } })
    assert.equal(wrong.status, 403)
    const r = await a.group.get(key)
    assert(r.found)
    assert.equal(r.source, 'peer', 'a peer with the read token is served')
    assert.equal(a.group.stats.PeerErrors, 0)
  })
})

describe("CacheNode values' Cache-Control", () => {
  it('is private when reads need a token, public when they are open: fills, hits, HEAD, 304', async () => {
    const dbUrl = await stubDb()
    const read = new Secret('cache-read-token-0123456789', 'test')
    const auth = { authorization: read.bearer() }
    for (const [security, expected] of [
      [{ read }, 'private, max-age=31536000, immutable'],
      [{}, 'public, max-age=31536000, immutable'],
    ] as const) {
      const [http, peer] = await Promise.all([freePort(), freePort()])
      const node = await CacheNode.start({
        http: `127.0.0.1:${http}`,
        peer: `127.0.0.1:${peer}`,
        peers: [`http://127.0.0.1:${peer}`],
        dbs: [dbUrl],
        logLevel: 'silent',
        security,
      })
      started.push(node)
      const url = `${node.url}/keys/cc`
      // A fill (the route), then a hit (the fast path), then HEAD (the route).
      const sources: string[] = []
      let etag = ''
      for (const method of ['GET', 'GET', 'HEAD']) {
        const res = await fetch(url, { method, headers: auth })
        assert.equal(res.status, 200, `${method} ${expected}`)
        assert.equal(res.headers.get('cache-control'), expected, `${method} ${expected}`)
        assert.equal(res.headers.get('vary'), null)
        sources.push(res.headers.get('x-oncekv-source') ?? '')
        etag = res.headers.get('etag') ?? ''
        await res.arrayBuffer()
      }
      assert.deepEqual(sources, ['db', 'main', 'main'])
      // A revalidation is a 304 with the same headers, on the fast path and through the route
      // (a query string leaves the fast path).
      for (const path of [url, `${url}?x=1`]) {
        const res = await fetch(path, { headers: { ...auth, 'if-none-match': etag } })
        assert.equal(res.status, 304, path)
        assert.equal(res.headers.get('cache-control'), expected, path)
      }
    }
  })
})
