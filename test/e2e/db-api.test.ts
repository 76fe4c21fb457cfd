// End to end: the database member's HTTP API on a real three-member cluster. Writes through
// every member, reads from every member, create-once semantics, caching headers, every
// route, and bad input: a clear 4xx JSON error with its code, and nothing written.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { before, describe, it } from 'node:test'
import { CACHE_NODE_FLAGS, RUNTIME_YOUNG_FLAG } from '../../src/cache/node-flags.ts'
import { DB_NODE_FLAGS, HEAP_FLAG, RUNTIME_HEAP_FLAG, YOUNG_FLAG } from '../../src/db/node-flags.ts'
import type { DbStats } from '../../src/protocol/index.ts'
import { encodeHello, encodeMessages, PROTOCOL_VERSION } from '../../src/transport/codec.ts'
import { freePort, waitFor, type CacheProcess, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import {
  BAD_ESCAPES,
  headersOf,
  keyPath,
  parsePrometheus,
  postJson,
  type HttpResponse,
} from './http.ts'
import { wsMessages, wsOutcome } from './ws.ts'

const MAX_VALUE_BYTES = 4096
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** assertError checks a JSON error answer: status, numeric code, machine name, a message. */
function assertError(res: HttpResponse, status: number, code: number, error?: string): void {
  const what = `${res.status} ${res.text().slice(0, 300)}`
  assert.equal(res.status, status, what)
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, what)
  const body = res.json<{ code: unknown; error: unknown; message: unknown }>()
  assert.equal(body.code, code, what)
  if (error !== undefined) assert.equal(body.error, error, what)
  assert.equal(typeof body.error, 'string', what)
  assert(typeof body.message === 'string' && body.message.length > 0, what)
}

function putRaw(n: DbProcess, key: string, value: string | Uint8Array): Promise<HttpResponse> {
  return n.request(`/keys/${keyPath(key)}`, {
    method: 'PUT',
    body: value,
    headers: { 'content-type': 'application/octet-stream' },
  })
}

function postKey(n: DbProcess, key: string, value: string): Promise<HttpResponse> {
  return postJson(`${n.url}/key`, { key, value })
}

async function keyCounts(cluster: Cluster): Promise<number[]> {
  await cluster.waitCaughtUp()
  return Promise.all(cluster.running().map(async (n) => (await n.stats()).keys))
}

describe('db API on a three-member cluster', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let nodes: DbProcess[]

  before(async () => {
    // No failover here: a longer election timeout keeps the leader put on a busy machine.
    cluster = await clusters.start({
      name: 'api',
      size: 3,
      maxValueBytes: MAX_VALUE_BYTES,
      tickMs: 50,
    })
    nodes = cluster.running()
  })

  it('writes through every member and reads from every member', async () => {
    const written = new Map<string, string>()
    for (const [i, n] of nodes.entries()) {
      const raw = await putRaw(n, `raw-${i}`, `raw value ${i}`)
      assert.equal(raw.status, 201, raw.text())
      assert.deepEqual(raw.json(), { code: 1000, created: true })
      written.set(`raw-${i}`, `raw value ${i}`)
      const json = await postKey(n, `json-${i}`, `json value ${i} ✓`)
      assert.equal(json.status, 200, json.text())
      assert.deepEqual(json.json(), { code: 1000, created: true })
      written.set(`json-${i}`, `json value ${i} ✓`)
    }
    for (const n of nodes) {
      for (const [key, value] of written) {
        for (const route of ['/key/', '/i/key/']) {
          const res = await n.request(route + keyPath(key))
          assert.equal(res.status, 200, `${n.id} ${route}${key}: ${res.text()}`)
          assert.deepEqual(res.json(), { key, value })
        }
        const raw = await n.request(`/keys/${keyPath(key)}`)
        assert.equal(raw.status, 200)
        assert.equal(raw.text(), value)
        assert.equal(raw.headers.get('content-type'), 'application/octet-stream')
      }
    }
  })

  it('names the leader in a follower’s successful answer to a write (x-oncekv-leader), not in the leader’s', async () => {
    // A new leader during the writes would rightly change the header: then the case runs again.
    for (let attempt = 1; ; attempt++) {
      const { node: leader, stats } = await cluster.leader()
      const seen: { id: string; status: number; header: string | null }[] = []
      for (const [i, n] of nodes.entries()) {
        const key = `hint-${attempt}-${i}`
        const answers = [
          await putRaw(n, `${key}-raw`, 'v'), // the fast path
          await putRaw(n, `${key}-raw`, 'v'), // the same again: 200
          await n.request(`/keys/${key}-text`, {
            method: 'PUT',
            body: 'v',
            headers: { 'content-type': 'text/plain' }, // the route
          }),
          await postKey(n, `${key}-json`, 'v'),
          await putRaw(n, `${key}-raw`, 'w'), // a conflict: no header
        ]
        for (const res of answers)
          seen.push({ id: n.id, status: res.status, header: res.headers.get('x-oncekv-leader') })
      }
      if ((await cluster.leader()).stats.term !== stats.term && attempt < 3) continue
      const want = nodes.flatMap((n) =>
        [201, 200, 201, 200, 409].map((status) => ({
          id: n.id,
          status,
          header: n.id === leader.id || status === 409 ? null : leader.url,
        })),
      )
      assert.deepEqual(seen, want)
      return
    }
  })

  it('treats an identical re-put as a success and other bytes as a conflict, on every member', async () => {
    const leader = (await cluster.leader()).node
    assert.equal((await postKey(leader, 'dup-json', 'first')).status, 200)
    assert.equal((await putRaw(leader, 'dup-raw', 'first')).status, 201)
    for (const n of nodes) {
      const again = await postKey(n, 'dup-json', 'first')
      assert.equal(again.status, 200, `${n.id}: ${again.text()}`)
      assert.deepEqual(again.json(), { code: 1000, created: false })
      const againRaw = await putRaw(n, 'dup-raw', 'first')
      assert.equal(againRaw.status, 200, `${n.id}: ${againRaw.text()}`)
      assert.deepEqual(againRaw.json(), { code: 1000, created: false })
      // The same key written through the other route with the same bytes is identical too.
      assert.equal((await putRaw(n, 'dup-json', 'first')).status, 200)
      assertError(await postKey(n, 'dup-json', 'second'), 409, 1003, 'key_conflict')
      assertError(await putRaw(n, 'dup-raw', 'second'), 409, 1003, 'key_conflict')
    }
    for (const n of nodes) {
      assert.equal((await n.request('/keys/dup-json')).text(), 'first')
      assert.equal((await n.request('/keys/dup-raw')).text(), 'first')
    }
  })

  it('answers a plain PUT (fast path) exactly as the route does (a query string takes it)', async () => {
    // Each member in turn: the leader, and followers that pass the write on.
    for (const [i, n] of nodes.entries()) {
      const put = (key: string, query: string, value: string): Promise<HttpResponse> =>
        n.request(`/keys/${keyPath(key)}${query}`, {
          method: 'PUT',
          body: value,
          headers: { 'content-type': 'application/octet-stream' },
        })
      const answers = async (query: string, key: string): Promise<HttpResponse[]> => [
        await put(key, query, 'one'), // created
        await put(key, query, 'one'), // exists
        await put(key, query, 'two'), // conflict
      ]
      const fast = await answers('', `fast-put-${i}`)
      const routed = await answers('?via=route', `slow-put-${i}`)
      assert.deepEqual(
        fast.map((r) => r.status),
        [201, 200, 409],
      )
      for (const [j, f] of fast.entries()) {
        const r = routed[j] as HttpResponse
        assert.deepEqual(headersOf(f), headersOf(r), `${n.id}: answer ${j}`)
        assert.equal(f.text().replace('fast-put', 'slow-put'), r.text(), `${n.id}: answer ${j}`)
      }
    }
  })

  it('runs concurrent puts of one key to a single winner, everywhere', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        putRaw(nodes[i % nodes.length] as DbProcess, 'race', `contender ${i % 4}`),
      ),
    )
    const statuses = attempts.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 201).length, 1, `statuses ${statuses.join(',')}`)
    assert(
      statuses.every((s) => s === 201 || s === 200 || s === 409),
      statuses.join(','),
    )
    const values = new Set<string>()
    for (const n of nodes) values.add((await n.request('/keys/race')).text())
    assert.equal(values.size, 1, [...values].join(' | '))
    const winner = [...values][0] as string
    for (const [i, r] of attempts.entries()) {
      const mine = `contender ${i % 4}`
      assert.equal(r.status === 409, mine !== winner, `attempt ${i}: ${r.status}`)
    }
  })

  it('keeps keys with slashes, spaces, unicode and reserved characters, and binary values', async () => {
    const leader = (await cluster.leader()).node
    const keys = [
      'a/b/c',
      'with space',
      'ключ/日本語',
      'q?x=1&y=2#frag',
      'plus+sign',
      'a/../b',
      '...',
      'é'.repeat(512),
    ]
    for (const [i, key] of keys.entries()) {
      const n = nodes[i % nodes.length] as DbProcess
      assert.equal((await putRaw(n, key, `v:${key}`)).status, 201, key)
    }
    // Slashes may also stay unescaped under /keys/.
    assert.equal((await leader.request('/keys/x/y/z', { method: 'PUT', body: 'xyz' })).status, 201)
    const binary = new Uint8Array([0, 255, 254, 1, 128, 10])
    assert.equal((await putRaw(leader, 'binary', binary)).status, 201)
    assert.equal((await putRaw(leader, 'empty-value', '')).status, 201)
    for (const n of nodes) {
      for (const key of keys) {
        assert.equal((await n.request(`/keys/${keyPath(key)}`)).text(), `v:${key}`, key)
        assert.deepEqual((await n.request(`/key/${keyPath(key)}`)).json(), {
          key,
          value: `v:${key}`,
        })
      }
      assert.equal((await n.request('/keys/x%2Fy%2Fz')).text(), 'xyz')
      assert.deepEqual((await n.request('/key/x%2Fy%2Fz')).json(), { key: 'x/y/z', value: 'xyz' })
      assert.deepEqual((await n.request('/keys/binary')).body, binary)
      assert.deepEqual((await n.request('/key/binary')).json(), {
        key: 'binary',
        value: Buffer.from(binary).toString('base64'),
        encoding: 'base64',
      })
      const empty = await n.request('/keys/empty-value')
      assert.equal(empty.status, 200)
      assert.equal(empty.body.byteLength, 0)
    }
  })

  it('answers 404 with code 1002 for a missing key on every member, in every consistency', async () => {
    for (const n of nodes) {
      for (const path of [
        '/key/never-written',
        '/i/key/never-written',
        '/keys/never-written',
        '/keys/never-written?consistency=stale',
        '/key/never-written?consistency=linearizable',
      ]) {
        assertError(await n.request(path), 404, 1002, 'key_not_found')
      }
      const head = await n.request('/keys/never-written', { method: 'HEAD' })
      assert.equal(head.status, 404)
      assert.equal(head.body.byteLength, 0)
    }
  })

  it('answers a plain GET of a missing key (fast path, after ReadIndex) exactly as the route does, and counts it', async () => {
    for (const n of nodes) {
      const before = await n.stats()
      const fast = await n.request('/keys/never-written-fast')
      const routed = await n.request('/keys/never-written-fast?consistency=linearizable')
      assertError(fast, 404, 1002, 'key_not_found')
      assert.deepEqual(headersOf(fast), headersOf(routed))
      assert.equal(fast.text(), routed.text())
      const after = await n.stats()
      assert.equal(after.reads - before.reads, 2, n.id)
      assert.equal(after.reads_not_found - before.reads_not_found, 2, n.id)
    }
  })

  it('serves GET /keys with a strong ETag and immutable caching; If-None-Match gives 304; HEAD has no body', async () => {
    const leader = (await cluster.leader()).node
    const put = await putRaw(leader, 'cached', 'cache me')
    assert.equal(put.status, 201)
    const putEtag = put.headers.get('etag')
    const etags = new Set<string>()
    for (const n of nodes) {
      const res = await n.request('/keys/cached')
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('cache-control'), IMMUTABLE)
      const etag = res.headers.get('etag') ?? ''
      assert.match(etag, /^"[^"]+"$/, 'a strong ETag is quoted, without W/')
      etags.add(etag)

      const notModified = await n.request('/keys/cached', { headers: { 'if-none-match': etag } })
      assert.equal(notModified.status, 304)
      assert.equal(notModified.body.byteLength, 0)
      assert.equal(notModified.headers.get('etag'), etag)
      assert.equal(notModified.headers.get('cache-control'), IMMUTABLE)

      const modified = await n.request('/keys/cached', { headers: { 'if-none-match': '"other"' } })
      assert.equal(modified.status, 200)
      assert.equal(modified.text(), 'cache me')

      const head = await n.request('/keys/cached', { method: 'HEAD' })
      assert.equal(head.status, 200)
      assert.equal(head.body.byteLength, 0)
      assert.equal(head.headers.get('etag'), etag)
      assert.equal(head.headers.get('cache-control'), IMMUTABLE)
      assert.equal(head.headers.get('content-length'), String('cache me'.length))
    }
    assert.equal(etags.size, 1, 'every member gives the same ETag')
    assert.equal(putEtag, [...etags][0], 'PUT answers with the ETag GET serves')

    // A plain GET of a stored key is answered by the fast path, the same GET with a query
    // string by the router: the two answers must not differ.
    for (const n of nodes) {
      const fast = await n.request('/keys/cached')
      const routed = await n.request('/keys/cached?consistency=stale')
      assert.deepEqual(headersOf(fast), headersOf(routed))
      assert.equal(fast.text(), routed.text())
      const fast304 = await n.request('/keys/cached', {
        headers: { 'if-none-match': putEtag ?? '' },
      })
      const routed304 = await n.request('/keys/cached?consistency=stale', {
        headers: { 'if-none-match': putEtag ?? '' },
      })
      assert.deepEqual(headersOf(fast304), headersOf(routed304))
    }
  })

  it('answers bad input with a clear 4xx JSON error and writes nothing', async () => {
    const before = await keyCounts(cluster)
    const json = { 'content-type': 'application/json' }
    const longKey = 'k'.repeat(1025)
    const longUtf8Key = 'é'.repeat(513) // 513 characters, 1026 bytes
    for (const n of nodes) {
      const post = (body: string, headers: Record<string, string> = json): Promise<HttpResponse> =>
        n.request('/key', { method: 'POST', body, headers })
      // Malformed and mistyped JSON.
      assertError(await post('{"key": "bad-1", "value": '), 400, 1001, 'bad_request')
      assertError(await post(''), 400, 1001, 'bad_request')
      assertError(await post('[1,2]'), 400, 1001, 'bad_request')
      assertError(await post('"just a string"'), 400, 1001, 'bad_request')
      assertError(await post('null'), 400, 1001, 'bad_request')
      assertError(await post('{"key":"bad-2","value":5}'), 400, 1001, 'bad_request')
      assertError(await post('{"key":"bad-3"}'), 400, 1001, 'bad_request')
      assertError(await post('{"key":7,"value":"x"}'), 400, 1001, 'bad_request')
      assertError(await post('{"value":"x"}'), 400, 1001, 'bad_request')
      assertError(await post('{"key":"\\ud800","value":"x"}'), 400, 1001, 'bad_request')
      // Text that is not UTF-8: a lone surrogate in the value, invalid bytes in the body (read
      // as text they would become U+FFFD, a value the client never sent).
      assertError(await post('{"key":"bad-u1","value":"\\ud800"}'), 400, 1001, 'bad_request')
      const badBytes = (k: string, v: string): Uint8Array =>
        Buffer.concat([
          Buffer.from(`{"key":"${k}`),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(`","value":"${v}"}`),
        ])
      for (const body of [badBytes('bad-u2', 'x'), badBytes('', 'bad-u3')]) {
        const res = await n.request('/key', { method: 'POST', body, headers: json })
        assertError(res, 400, 1001, 'bad_request')
      }
      // Wrong content type.
      const ok = JSON.stringify({ key: 'bad-4', value: 'x' })
      assertError(await post(ok, { 'content-type': 'text/plain' }), 415, 1001)
      assertError(
        await post(ok, { 'content-type': 'application/x-www-form-urlencoded' }),
        415,
        1001,
      )
      // Empty key.
      assertError(await post('{"key":"","value":"x"}'), 400, 1001, 'bad_request')
      assertError(await n.request('/keys/', { method: 'PUT', body: 'x' }), 400, 1001)
      assertError(await n.request('/key/'), 400, 1001)
      // Oversized key (> 1024 bytes of UTF-8), value and body.
      assertError(await post(JSON.stringify({ key: longKey, value: 'x' })), 413, 1001, 'too_large')
      assertError(
        await post(JSON.stringify({ key: longUtf8Key, value: 'x' })),
        413,
        1001,
        'too_large',
      )
      assertError(await putRaw(n, longKey, 'x'), 413, 1001, 'too_large')
      assertError(await putRaw(n, longUtf8Key, 'x'), 413, 1001, 'too_large')
      assertError(await n.request(`/key/${keyPath(longUtf8Key)}`), 413, 1001, 'too_large')
      assertError(await n.request(`/keys/${keyPath(longKey)}`), 413, 1001, 'too_large')
      const bigValue = 'v'.repeat(MAX_VALUE_BYTES + 1)
      assertError(
        await post(JSON.stringify({ key: 'bad-5', value: bigValue })),
        413,
        1001,
        'too_large',
      )
      // A body over its route's limit names the limit, and the size the request gave.
      const bigRaw = await putRaw(n, 'bad-6', bigValue)
      assertError(bigRaw, 413, 1001, 'too_large')
      assert.equal(
        bigRaw.json<{ message: string }>().message,
        `the request body is ${MAX_VALUE_BYTES + 1} bytes; the limit is ${MAX_VALUE_BYTES} bytes`,
      )
      const bigBody = JSON.stringify({
        key: 'bad-7',
        value: 'v'.repeat(MAX_VALUE_BYTES * 6 + 9000),
      })
      const bigPost = await post(bigBody)
      assertError(bigPost, 413, 1001, 'too_large')
      assert.equal(
        bigPost.json<{ message: string }>().message,
        `the request body is ${bigBody.length} bytes; the limit is ${MAX_VALUE_BYTES * 6 + 8192} bytes`,
      )
      // A value at the limit is fine elsewhere; multi-byte characters count as bytes.
      const multiByte = 'é'.repeat(MAX_VALUE_BYTES / 2 + 1)
      assertError(await post(JSON.stringify({ key: 'bad-8', value: multiByte })), 413, 1001)
      // Unknown routes and methods.
      assertError(await n.request('/nope'), 404, 1001, 'not_found')
      assertError(await n.request('/key'), 404, 1001)
      // Other methods on the key routes: a 405 naming what the route takes; a key is
      // never changed or deleted.
      for (const [path, method, allow] of [
        ['/keys/bad-9', 'DELETE', 'GET, HEAD, PUT'],
        ['/keys/bad-9', 'POST', 'GET, HEAD, PUT'],
        ['/keys/bad-9', 'PATCH', 'GET, HEAD, PUT'],
        ['/key/bad-9', 'PUT', 'GET, HEAD'],
        ['/key/bad-9', 'DELETE', 'GET, HEAD'],
        ['/i/key/bad-9', 'POST', 'GET, HEAD'],
      ] as const) {
        const res = await n.request(path, { method, body: method === 'DELETE' ? undefined : 'x' })
        assertError(res, 405, 1001, 'method_not_allowed')
        assert.equal(res.headers.get('allow'), allow, `${method} ${path}`)
        assert.match(res.json<{ message: string }>().message, /never changed or deleted/)
      }
      // A bad consistency parameter on a missing key.
      assertError(await n.request('/key/bad-10?consistency=bogus'), 400, 1001, 'bad_request')
      assertError(await n.request('/keys/bad-10?consistency=bogus'), 400, 1001, 'bad_request')
    }
    // Nothing was written: the counts did not move and the keys read 404 everywhere.
    assert.deepEqual(await keyCounts(cluster), before)
    for (const n of nodes) {
      for (let i = 1; i <= 10; i++) assertError(await n.request(`/key/bad-${i}`), 404, 1002)
      assertError(await n.request(`/keys/${keyPath(longKey.slice(0, 1024))}`), 404, 1002)
    }
  })

  it('answers bad membership requests with 400 and changes nothing', async () => {
    const before = await nodes[0]!.clusterView()
    for (const n of nodes) {
      assertError(await postJson(`${n.url}/join`, {}), 400, 1001)
      assertError(await postJson(`${n.url}/join`, { id: 'x', http: 5, raft: 'y:1' }), 400, 1001)
      for (const bad of ['not an address', 'garbage', 'h:99999', 'a b:1', 'h:'])
        assertError(await postJson(`${n.url}/join`, { id: 'x', http: 'h:1', raft: bad }), 400, 1001)
      // An IPv6 host is hex digits, colons and dots (and a zone): a member's address goes into
      // a header (x-oncekv-leader), where a CR or LF would break the answer.
      for (const bad of ['[::1\r\nx-evil: y]:80', '[::1 ]:80', '[g::1]:80'])
        assertError(await postJson(`${n.url}/join`, { id: 'x', http: bad, raft: 'h:1' }), 400, 1001)
      assertError(
        await n.request('/join', {
          method: 'POST',
          body: 'id=x',
          headers: { 'content-type': 'text/plain' },
        }),
        400,
        1001,
      )
      const other = nodes.find((m) => m !== n) as DbProcess
      assertError(
        await postJson(`${n.url}/join`, { id: other.id, http: '127.0.0.1:1', raft: '127.0.0.1:2' }),
        409,
        1003,
      )
      // A new id at a member's addresses (either of them, in either field, or written
      // another way) would take that member's place in every book: 409, naming the member.
      for (const [http, raft, field, as] of [
        [other.http, '127.0.0.1:1', 'http', 'http'],
        ['127.0.0.1:1', other.raft, 'raft', 'raft'],
        [other.http, other.raft, 'http', 'http'],
        [other.raft, '127.0.0.1:1', 'http', 'raft'],
        ['127.0.0.1:1', other.raft.replace('127.0.0.1:', '127.1:'), 'raft', 'raft'],
      ]) {
        const res = await postJson(`${n.url}/join`, { id: 'n9', http, raft })
        assertError(res, 409, 1003, 'member_conflict')
        assert.match(
          res.json<{ message: string }>().message,
          new RegExp(`^${field} address \\S+ is already member ${other.id}'s ${as} address`),
        )
      }
      assertError(await postJson(`${n.url}/remove`, {}), 400, 1001)
      assertError(await postJson(`${n.url}/transfer-leader`, { id: 'nobody' }), 400, 1001)
      assertError(await postJson(`${n.url}/transfer-leader`, {}), 400, 1001)
      // Removing a member that is not there is a 404 (passed on by a follower as it is).
      const gone = await postJson(`${n.url}/remove`, { id: 'not-a-member' })
      assertError(gone, 404, 1001, 'member_not_found')
      assert.match(gone.json<{ message: string }>().message, /^not-a-member is not a member/)
    }
    const after = await nodes[0]!.clusterView()
    assert.deepEqual(
      after.members.map((m) => [m.id, m.http, m.raft, m.suffrage]),
      before.members.map((m) => [m.id, m.http, m.raft, m.suffrage]),
    )
  })

  it('answers a join on a follower with the members as the leader has them; removes once', async () => {
    const leader = (await cluster.leader()).node
    const [asked, again] = nodes.filter((n) => n !== leader) as [DbProcess, DbProcess]
    // Addresses no process listens on: a learner that never catches up, removed below.
    const ghost = {
      id: 'ghost',
      http: `127.0.0.1:${await freePort()}`,
      raft: `127.0.0.1:${await freePort()}`,
    }
    const joined = await postJson(`${asked.url}/join`, ghost, 15_000)
    assert.equal(joined.status, 200, joined.text())
    try {
      const body = joined.json<{ members: Record<string, { http: string; raft: string }> }>()
      const expected = Object.fromEntries(
        [...nodes, ghost].map((m) => [m.id, { http: m.http, raft: m.raft }]),
      )
      assert.deepEqual(body.members, expected)
      // The same join again (a joining member's retry) still passes, through another member.
      const retried = await postJson(`${again.url}/join`, ghost, 15_000)
      assert.equal(retried.status, 200, retried.text())
      assert.deepEqual(retried.json<typeof body>().members, expected)
    } finally {
      const removed = await postJson(`${asked.url}/remove`, { id: ghost.id }, 15_000)
      assert.equal(removed.status, 200, removed.text())
      assert.deepEqual(removed.json(), { code: 1000, id: ghost.id, removed: true })
    }
    // Removed once: a second removal finds no such member.
    assertError(
      await postJson(`${leader.url}/remove`, { id: ghost.id }),
      404,
      1001,
      'member_not_found',
    )
    const three = nodes
      .map((n) => n.id)
      .sort()
      .join()
    for (const n of nodes)
      await waitFor(
        `${n.id} to list three members`,
        async () =>
          (await n.clusterView()).members
            .map((m) => m.id)
            .sort()
            .join() === three,
      )
  })

  it('describes the cluster the same way on every member', async () => {
    const leader = (await cluster.leader()).node
    for (const n of nodes) {
      const view = await n.clusterView()
      assert.equal(view.id, n.id)
      assert.equal(view.leader, leader.id)
      assert.equal(view.members.length, 3)
      for (const m of nodes) {
        const member = view.members.find((x) => x.id === m.id)
        assert(member, `${m.id} listed by ${n.id}`)
        assert.equal(member.http, m.http)
        assert.equal(member.raft, m.raft)
        assert.equal(member.suffrage, 'voter')
        assert.equal(member.leader, m.id === leader.id)
      }
    }
  })

  it('runs its members with the Node.js flags of src/db/node-flags.ts (none logs node_flags)', () => {
    for (const n of nodes) {
      const argv = readFileSync(`/proc/${n.pid}/cmdline`, 'utf8').split('\0')
      for (const f of DB_NODE_FLAGS) assert.ok(argv.includes(f), `${n.id}: ${argv.join(' ')}`)
      assert.doesNotMatch(n.log(), /"event":"node_flags"/)
    }
  })

  it('serves stats, health, readiness and ping on every member', async () => {
    const leader = (await cluster.leader()).node
    for (const n of nodes) {
      const s: DbStats = await n.stats()
      assert.equal(s.id, n.id)
      assert.equal(s.state, n === leader ? 'Leader' : 'Follower')
      assert.equal(s.leader, leader.id)
      assert.equal(s.num_peers, 2)
      for (const field of [
        'term',
        'last_log_index',
        'commit_index',
        'applied_index',
        'last_snapshot_index',
        'last_contact',
        'keys',
        'db_bytes',
        'uptime_seconds',
      ] as const) {
        assert.equal(typeof s[field], 'number', field)
      }
      assert(s.applied_index <= s.commit_index)
      assert(s.commit_index <= s.last_log_index)
      // Every member wrote its log since it started, in fsynced transactions that took time.
      assert(s.disk_writes >= 1, `disk_writes ${s.disk_writes}`)
      assert(s.log_entries_written >= 1, `log_entries_written ${s.log_entries_written}`)
      assert(s.disk_write_seconds > 0, `disk_write_seconds ${s.disk_write_seconds}`)
      assert.deepEqual((await n.request('/healthz')).json(), { status: 'ok' })
      const ready = await n.request('/readyz')
      assert.equal(ready.status, 200)
      assert.deepEqual(ready.json(), { status: 'ready', leader: leader.id })
      const ping = await n.request('/ping')
      assert.equal(ping.status, 200)
      assert.equal(ping.text(), 'pong')
    }
  })

  it('serves /metrics in the Prometheus text format', async () => {
    for (const n of nodes) {
      const res = await n.request('/metrics')
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      const text = res.text()
      const samples = parsePrometheus(text)
      for (const name of ['oncekv_raft_term', 'oncekv_raft_commit_index', 'oncekv_keys']) {
        assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'))
        assert(samples.has(name), name)
      }
      assert.match(text, /^# TYPE oncekv_op_duration_seconds histogram$/m)
      assert.match(text, /^# TYPE oncekv_disk_writes_total counter$/m)
      assert(Number(samples.get('oncekv_log_entries_written_total')) >= 1)
      assert.match(text, /^oncekv_process_\w*resident_memory_bytes \d+$/m)
      const s = await n.stats()
      assert.equal(samples.get('oncekv_keys'), s.keys)
      assert.equal(samples.get('oncekv_raft_num_peers'), 2)
    }
  })

  it('pushes stats over /ws/stats at least twice', async () => {
    const n = nodes[1] as DbProcess
    const messages = await wsMessages<DbStats>(`ws://${n.http}/ws/stats`, 3, { timeoutMs: 5_000 })
    for (const m of messages) {
      assert.equal(m.id, n.id)
      assert.equal(typeof m.commit_index, 'number')
      assert.equal(m.num_peers, 2)
    }
    assert(messages[2]!.uptime_seconds >= messages[0]!.uptime_seconds)
  })

  it('refuses a WebSocket upgrade on any other path', async () => {
    const out = await wsOutcome(`ws://${nodes[0]!.http}/ws/nothing`)
    assert.equal(out.status, 404)
  })

  it('answers a bad percent-encoding in the key with the JSON error shape', async () => {
    // The message is ours, and names the bad escape.
    for (const [path, bad] of BAD_ESCAPES) {
      const res = await nodes[0]!.request(path)
      assertError(res, 400, 1001, 'bad_request')
      assert.ok(
        res
          .json<{ message: string }>()
          .message.startsWith(`the URL has an invalid percent-escape: ${bad} in ${path} (`),
        res.text(),
      )
    }
    const put = await nodes[0]!.request('/keys/%zz', { method: 'PUT', body: 'x' })
    assertError(put, 400, 1001)
    assert.match(put.json<{ message: string }>().message, /^the URL has an invalid percent-escape/)
  })

  it('writes and reads a key containing "%" as that key, through any member', async () => {
    const leader = (await cluster.leader()).node
    const follower = nodes.find((n) => n !== leader) as DbProcess
    // JSON through a follower: the key must be "%42", not "B".
    assert.equal((await postKey(follower, '%42', 'not B')).status, 200)
    assertError(await leader.request('/key/B'), 404, 1002)
    // Raw through a follower: a key that looks like an escape must not alias another key.
    assert.equal((await putRaw(follower, '%43', 'not C')).status, 201)
    assertError(await leader.request('/key/C'), 404, 1002)
    // A "%" that is no escape, written through a follower and read by path.
    const written = await postKey(follower, '50%', 'percent')
    assert.equal(written.status, 200, written.text())
    const byPath = await follower.request(`/key/${keyPath('50%')}`)
    assert.equal(byPath.status, 200, byPath.text())
    assert.deepEqual(byPath.json(), { key: '50%', value: 'percent' })
  })

  it('refuses ?consistency=bogus on a key that exists, too', async () => {
    assert.equal((await putRaw(nodes[0]!, 'consistency-check', 'x')).status, 201)
    await cluster.waitCaughtUp()
    assertError(await nodes[1]!.request('/key/consistency-check?consistency=bogus'), 400, 1001)
  })

  it('ignores well-formed Raft messages from an id outside the configuration', async () => {
    const { node: leader, stats } = await cluster.leader()
    // A peer that says hello as "x9" and claims a huge term and commit index, to a follower
    // and to the leader: no assertion may fire, no term may move, the leader stays.
    for (const target of nodes) {
      const socket = connect({ host: '127.0.0.1', port: Number(target.raft.split(':').pop()) })
      socket.on('error', () => {})
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve)
        socket.once('error', reject)
      })
      socket.write(
        encodeHello({
          version: PROTOCOL_VERSION,
          clusterName: 'oncekv',
          id: 'x9',
          purpose: 'raft',
        }),
      )
      socket.write(
        encodeMessages([
          { type: 'heartbeat', from: 'x9', to: target.id, term: 1e9, commit: 1e9, ctx: '' },
          {
            type: 'app',
            from: 'x9',
            to: target.id,
            term: 1e9,
            index: 1e9,
            logTerm: 1e9,
            entries: [],
            commit: 1e9,
          },
          {
            type: 'vote',
            from: 'x9',
            to: target.id,
            term: 1e9,
            index: 1e9,
            logTerm: 1e9,
            transfer: true,
          },
        ]),
      )
      // The member logs the drop; a member that crashed instead ends the wait at once.
      await waitFor(`${target.id} to drop the stranger's messages`, async () => {
        assert(target.running, `${target.id} exited: ${target.logTail()}`)
        return target.logOfLastRun().includes('"event":"raft_from_non_member"')
      })
      socket.destroy()
    }
    for (const n of nodes) {
      assert(n.running, `${n.id} exited: ${n.logTail()}`)
      const s = await n.stats()
      assert.equal(s.term, stats.term, `${n.id} term`)
      assert.equal(s.leader, leader.id, `${n.id} leader`)
    }
    assert.equal((await putRaw(nodes[1]!, 'after-stranger', 'still serving')).status, 201)
    assert.equal((await cluster.leader()).node.id, leader.id)
  })
})

describe('a member and a cache node started by hand, without the Node.js flags', () => {
  const clusters = useClusters()

  /** flagsLine is the node_flags line of a process's log, once it is there. */
  function flagsLine(
    p: DbProcess | CacheProcess,
  ): Promise<{ missing: string[]; set: string | null; msg: string }> {
    return waitFor(`the node_flags line of ${p.id}`, () => {
      const line = p
        .log()
        .split('\n')
        .find((l) => l.includes('"event":"node_flags"'))
      return line === undefined
        ? undefined
        : (JSON.parse(line) as { missing: string[]; set: string | null; msg: string })
    })
  }

  it('set the run-time stand-ins for them, say so, and serve', async () => {
    const cluster = await clusters.start({ name: 'noflags', size: 1, nodeFlags: [] })
    const [n] = cluster.all()
    assert.ok(n)
    const [c] = await cluster.startCaches(1, { nodeFlags: [] })
    assert.ok(c)
    for (const [p, flags] of [
      [n, DB_NODE_FLAGS],
      [c, CACHE_NODE_FLAGS],
    ] as const) {
      const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')
      for (const f of flags) assert.ok(!argv.includes(f), argv.join(' '))
    }
    const member = await flagsLine(n)
    assert.deepEqual(member.missing, [...DB_NODE_FLAGS])
    assert.equal(member.set, RUNTIME_HEAP_FLAG)
    assert.match(member.msg, /instead/)
    const cache = await flagsLine(c)
    assert.deepEqual(cache.missing, [...CACHE_NODE_FLAGS])
    assert.equal(cache.set, RUNTIME_YOUNG_FLAG)
    assert.equal((await putRaw(n, 'by-hand', 'v')).status, 201)
    for (const url of [n.url, c.url]) {
      const got = await fetch(`${url}/keys/${keyPath('by-hand')}`)
      assert.equal(got.status, 200, url)
      assert.equal(await got.text(), 'v', url)
    }
  })

  it("name the young generation's cap alone when only it is missing", async () => {
    const cluster = await clusters.start({ name: 'noyoung', size: 1, nodeFlags: [HEAP_FLAG] })
    const [n] = cluster.all()
    assert.ok(n)
    const member = await flagsLine(n)
    assert.deepEqual(member.missing, [YOUNG_FLAG])
    assert.equal(member.set, null)
    assert.match(member.msg, /flag --max-semi-space-size=8 .*16 MiB per semi-space/)
    assert.doesNotMatch(member.msg, /heap-growing/)
  })
})
