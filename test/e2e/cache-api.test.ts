// End to end: the HTTP surface of cache nodes and the admin. Bad input on both listeners of a
// cache node and on the admin gets a clear 4xx JSON error (code, error, message) and changes
// nothing; the nodes stay healthy. Stats under groupcache's names, Prometheus metrics, the
// stats WebSocket and its Origin check, health routes, and a node run without an admin.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { HashRing } from '../../src/cache/ring.ts'
import type { CacheNodeStats } from '../../src/protocol/index.ts'
import { GiveUp, waitFor, type CacheProcess, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import {
  BAD_ESCAPES,
  headersOf,
  keyPath,
  parsePrometheus,
  postJson,
  request,
  type HttpResponse,
} from './http.ts'
import { wsOutcome } from './ws.ts'

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

/** assertMessageStarts checks the start of a JSON error answer's message. */
function assertMessageStarts(res: HttpResponse, start: string): void {
  const message = res.json<{ message: string }>().message
  assert.ok(message.startsWith(start), `${JSON.stringify(message)} starts ${JSON.stringify(start)}`)
}

/** LONGER_KEYS are over 1024 bytes and, escaped, over 4096 characters. */
const LONGER_KEYS = ['é'.repeat(700), 'k'.repeat(5000)]

const GROUPCACHE_COUNTERS = [
  'Gets',
  'CacheHits',
  'PeerLoads',
  'PeerErrors',
  'Loads',
  'LoadsDeduped',
  'LocalLoads',
  'LocalLoadErrs',
  'ServerRequests',
] as const

describe('cache node and admin HTTP API', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let caches: CacheProcess[]

  before(async () => {
    // One member is enough: this file is about the caches' and the admin's API.
    cluster = await clusters.start({ name: 'cache-api', size: 1 })
    await cluster.startAdmin()
    caches = await cluster.startCaches(3)
    const member = cluster.running()[0]
    assert(member)
    for (const [key, value] of [
      ['present', 'present value'],
      ['a/b c', 'slashes and spaces'],
    ]) {
      const res = await member.request(`/keys/${keyPath(key as string)}`, {
        method: 'PUT',
        body: value,
      })
      assert.equal(res.status, 201, res.text())
    }
  })

  it('answers bad input on the client listener with a JSON 4xx', async () => {
    const longKey = 'k'.repeat(1025)
    const longUtf8Key = 'é'.repeat(513) // 513 characters, 1026 bytes
    const json = { 'content-type': 'application/json' }
    for (const c of caches) {
      // Empty keys.
      assertError(await c.request('/key/'), 400, 1001, 'bad_request')
      assertError(await c.request('/i/key/'), 400, 1001, 'bad_request')
      assertError(await c.request('/keys/'), 400, 1001, 'bad_request')
      // Keys over 1024 bytes of UTF-8, also ones whose escaped form is over the router's
      // 4096 characters for a path parameter; 1024 bytes is fine (and missing).
      for (const key of [longKey, longUtf8Key, ...LONGER_KEYS]) {
        for (const route of ['/key/', '/i/key/', '/keys/'])
          assertError(await c.request(route + keyPath(key)), 413, 1001, 'too_large')
      }
      assertError(await c.request(`/keys/${'k'.repeat(1024)}`), 404, 1002, 'key_not_found')
      // Invalid percent-encoding and lone surrogates, in our words, naming the bad escape.
      for (const [path, bad] of BAD_ESCAPES) {
        const res = await c.request(path)
        assertError(res, 400, 1001, 'bad_request')
        assertMessageStarts(res, `the URL has an invalid percent-escape: ${bad} in ${path} (`)
      }
      // Unknown routes.
      assertError(await c.request('/nope'), 404, 1001, 'not_found')
      assertError(await c.request('/key'), 404, 1001, 'not_found')
      assertError(await c.request('/_oncekv/kv/present'), 404, 1001, 'not_found')
      assertError(await c.request('/meta'), 404, 1001, 'not_found')
      // Writes: a cache is read-only, and says where to write.
      const posted = await postJson(`${c.url}/key`, { key: 'w', value: 'x' })
      assertError(posted, 405, 1001, 'method_not_allowed')
      assert.match(posted.json<{ message: string }>().message, /read-only.*database member/)
      assert.equal(posted.headers.get('allow'), '')
      for (const path of ['/keys/w', '/key/w', '/i/key/w'])
        for (const method of ['PUT', 'POST', 'DELETE', 'PATCH']) {
          const res = await c.request(path, { method, body: 'x' })
          assertError(res, 405, 1001, 'method_not_allowed')
          assert.match(res.json<{ message: string }>().message, /PUT \/keys/)
          assert.equal(res.headers.get('allow'), 'GET, HEAD', `${method} ${path}`)
        }
      // Refused before the body is read, whatever its size.
      const big = await c.request('/keys/w', { method: 'PUT', body: new Uint8Array(2 << 20) })
      assertError(big, 405, 1001, 'method_not_allowed')
      // The admin's heartbeat route: bodies over the limit, malformed or mistyped ones.
      const meta = (body: string | Uint8Array, headers = json): Promise<HttpResponse> =>
        c.request('/meta', { method: 'POST', body, headers })
      const bigMeta = JSON.stringify({ peers: [], dbs: ['x'.repeat(300 * 1024)] })
      const tooBig = await meta(bigMeta)
      assertError(tooBig, 413, 1001, 'too_large')
      assert.equal(
        tooBig.json<{ message: string }>().message,
        `the request body is ${bigMeta.length} bytes; the limit is ${256 * 1024} bytes`,
      )
      for (const body of [
        '',
        '{"peers": [',
        'null',
        '[]',
        '"peers"',
        '{}',
        '{"peers": []}',
        '{"peers": "http://127.0.0.1:1", "dbs": []}',
        '{"peers": ["not a url"], "dbs": []}',
        '{"peers": ["http://127.0.0.1:1/path"], "dbs": []}',
        '{"peers": [], "dbs": ["ftp://127.0.0.1:1"]}',
        '{"peers": [], "dbs": [5]}',
        JSON.stringify({
          peers: Array.from({ length: 1001 }, () => 'http://127.0.0.1:1'),
          dbs: [],
        }),
      ])
        assertError(await meta(body), 400, 1001, 'bad_request')
      assertError(await meta('peers=x', { 'content-type': 'text/plain' }), 400, 1001)
    }
    // Nothing changed: the same ring and database members everywhere.
    const peers = caches.map((c) => c.peerUrl).sort()
    for (const c of caches) {
      const s = await c.stats()
      assert.deepEqual(s.peers, peers)
      assert.deepEqual(
        s.dbs.map((d) => d.url),
        cluster.running().map((n) => n.url),
      )
    }
  })

  it('serves the peer protocol, and answers bad input on the peer listener with a JSON 4xx', async () => {
    for (const c of caches) {
      const present = await request(`${c.peerUrl}/_oncekv/kv/present`)
      assert.equal(present.status, 200, present.text())
      assert.equal(present.text(), 'present value')
      assert.equal(present.headers.get('content-type'), 'application/octet-stream')
      const slashes = await request(`${c.peerUrl}/_oncekv/kv/${keyPath('a/b c')}`)
      assert.equal(slashes.text(), 'slashes and spaces')
      assertError(await request(`${c.peerUrl}/_oncekv/kv/missing`), 404, 1002, 'key_not_found')
      assertError(await request(`${c.peerUrl}/_oncekv/kv/`), 400, 1001, 'bad_request')
      const badEscape = await request(`${c.peerUrl}/_oncekv/kv/%zz`)
      assertError(badEscape, 400, 1001, 'bad_request')
      assertMessageStarts(
        badEscape,
        'the URL has an invalid percent-escape: %zz in /_oncekv/kv/%zz (',
      )
      for (const key of ['k'.repeat(1025), ...LONGER_KEYS])
        assertError(
          await request(`${c.peerUrl}/_oncekv/kv/${keyPath(key)}`),
          413,
          1001,
          'too_large',
        )
      assertError(await request(`${c.peerUrl}/_oncekv/nope`), 404, 1001, 'not_found')
      assertError(await request(`${c.peerUrl}/_oncekv/kv/a/b`), 404, 1001, 'not_found')
      assertError(await request(`${c.peerUrl}/key/present`), 404, 1001, 'not_found')
      assertError(await request(`${c.peerUrl}/stats`), 404, 1001, 'not_found')
      assertError(
        await request(`${c.peerUrl}/_oncekv/kv/present`, { method: 'PUT', body: 'x' }),
        404,
        1001,
      )
      const ping = await request(`${c.peerUrl}/_oncekv/ping`)
      assert.equal(ping.text(), 'pong')
    }
  })

  it('answers bad joins and leaves on the admin with a JSON 4xx and lists the same caches', async () => {
    const admin = cluster.admin
    const before = await admin.caches()
    const join = (body: unknown): Promise<HttpResponse> =>
      postJson(`${admin.url}/caches/join`, body)
    for (const body of [
      {},
      { http: 'http://127.0.0.1:1' },
      { peer: 'http://127.0.0.1:1' },
      { http: 5, peer: 'http://127.0.0.1:1' },
      { http: 'not a url', peer: 'http://127.0.0.1:2' },
      { http: 'http://127.0.0.1:1/path', peer: 'http://127.0.0.1:2' },
      { http: 'http://user:pw@127.0.0.1:1', peer: 'http://127.0.0.1:2' },
      { http: 'ftp://127.0.0.1:1', peer: 'http://127.0.0.1:2' },
      { http: 'http://127.0.0.1:1', peer: ['http://127.0.0.1:2'] },
      [],
      null,
      'http://127.0.0.1:1',
    ])
      assertError(await join(body), 400, 1001, 'bad_request')
    const raw = (body: string, type = 'application/json'): Promise<HttpResponse> =>
      request(`${admin.url}/caches/join`, {
        method: 'POST',
        body,
        headers: { 'content-type': type },
      })
    assertError(await raw(''), 400, 1001, 'bad_request')
    assertError(await raw('{"http": '), 400, 1001, 'bad_request')
    assertError(await raw('http=x', 'text/plain'), 400, 1001, 'bad_request')
    const form = await raw('http=x', 'application/x-www-form-urlencoded')
    assertError(form, 415, 1001)
    assert.equal(
      form.json<{ message: string }>().message,
      'this route does not take a body of content type "application/x-www-form-urlencoded"; it takes application/json',
    )
    const padded = JSON.stringify({ pad: 'x'.repeat(128 * 1024) })
    const tooBig = await raw(padded)
    assertError(tooBig, 413, 1001, 'too_large')
    assert.equal(
      tooBig.json<{ message: string }>().message,
      `the request body is ${padded.length} bytes; the limit is ${64 * 1024} bytes`,
    )
    assertError(await admin.request('/nope'), 404, 1001, 'not_found')
    assertError(await admin.request('/caches/join'), 404, 1001, 'not_found')
    // A bad percent-escape, in our words.
    for (const path of ['/api/lookup/bad%FF', '/caches/%zz']) {
      const res = await admin.request(path)
      assertError(res, 400, 1001, 'bad_request')
      assert.match(
        res.json<{ message: string }>().message,
        /^the URL has an invalid percent-escape: /,
      )
    }
    // Leaves take the same URLs; an unknown node's leave changes nothing.
    const leave = (body: unknown): Promise<HttpResponse> =>
      postJson(`${admin.url}/caches/leave`, body)
    for (const body of [
      {},
      { http: 5 },
      { http: 'not a url' },
      { http: 'http://127.0.0.1:1/path' },
      { http: ['http://127.0.0.1:1'] },
      [],
      null,
    ])
      assertError(await leave(body), 400, 1001, 'bad_request')
    const unknown = await leave({ http: 'http://127.0.0.1:1/' })
    assert.equal(unknown.status, 200, unknown.text())
    assert.deepEqual(unknown.json(), { code: 1000, left: false })
    assert.deepEqual(await admin.caches(), before)
    assert.deepEqual(before, caches.map((c) => c.url).sort())
  })

  it("says what the admin's put takes", async () => {
    const admin = cluster.admin
    const put = (headers: Record<string, string>, body = '{"key": "p", "value": "v"}') =>
      // Bytes, not a string: fetch would add a text/plain content type to a string.
      request(`${admin.url}/api/put`, { method: 'POST', body: Buffer.from(body), headers })
    const shape =
      'POST /api/put takes a JSON body {"key": "<key>", "value": "<UTF-8 text>"} with content-type: application/json'
    for (const [headers, rest] of [
      [{}, '; this request has no content-type'],
      [{ 'content-type': 'text/plain' }, ', not "text/plain"'],
      [
        { 'content-type': 'application/x-www-form-urlencoded' },
        ', not "application/x-www-form-urlencoded"',
      ],
    ] as const) {
      const res = await put(headers)
      assertError(res, 415, 1001, 'unsupported_media_type')
      assert.equal(res.json<{ message: string }>().message, shape + rest)
    }
    // Refused before the body is read, whatever its size.
    const big = await put({ 'content-type': 'text/plain' }, 'x'.repeat(2 << 20))
    assertError(big, 415, 1001, 'unsupported_media_type')
    // JSON with parameters is JSON; nothing above was written.
    const ok = await put({ 'content-type': 'Application/JSON; charset=utf-8' })
    assert.equal(ok.status, 200, ok.text())
    assert.equal(ok.json<{ outcome: string }>().outcome, 'created')
  })

  it('stays healthy after all of that', async () => {
    for (const c of caches) {
      assert(c.running, `${c.id} is running`)
      assert.deepEqual((await c.request('/healthz')).json(), { status: 'ok' })
      const present = await c.request('/key/present')
      assert.equal(present.status, 200)
      assert.deepEqual(present.json(), { key: 'present', value: 'present value' })
      const s = await c.stats()
      assert.equal(s.LocalLoadErrs, 0)
      assert(s.last_meta_ms >= 0 && s.last_meta_ms < 3_000, `${c.id} hears the admin`)
    }
    // The writes sent to the caches reached nothing.
    const member = cluster.running()[0]
    assert(member)
    assertError(await member.request('/keys/w'), 404, 1002, 'key_not_found')
    assert(cluster.admin.running)
    assert.deepEqual((await cluster.admin.request('/healthz')).json(), { status: 'ok' })
    await cluster.waitRing({ timeoutMs: 5_000 })
  })

  it('answers a hit (fast path) exactly as a fill (the routes), but for the source', async () => {
    const member = cluster.running()[0]
    assert(member)
    const c = caches[1] as CacheProcess
    // A key c owns: it keeps what it fills (a key owned elsewhere reaches its hot cache on
    // one fill in ten only, and the second read would be the owner's too).
    const ring = new HashRing(caches.map((x) => x.peerUrl))
    let key = 'fast-path'
    for (let i = 0; ring.owner(key) !== c.peerUrl; i++) key = `fast-path/${i}`
    const path = `/keys/${keyPath(key)}`
    assert.equal((await member.request(path, { method: 'PUT', body: 'fp' })).status, 201)
    const before = await c.stats()
    const fill = await c.request(path)
    const hit = await c.request(path)
    assert.notEqual(fill.headers.get('x-oncekv-source'), hit.headers.get('x-oncekv-source'))
    assert.match(hit.headers.get('x-oncekv-source') ?? '', /^(main|hot)$/)
    assert.deepEqual(headersOf(hit, ['x-oncekv-source']), headersOf(fill, ['x-oncekv-source']))
    assert.equal(hit.text(), 'fp')
    const etag = hit.headers.get('etag') ?? ''
    const hit304 = await c.request(path, { headers: { 'if-none-match': etag } })
    const routed304 = await c.request(`${path}?x=1`, { headers: { 'if-none-match': etag } })
    assert.equal(hit304.status, 304)
    assert.deepEqual(
      headersOf(hit304, ['x-oncekv-source']),
      headersOf(routed304, ['x-oncekv-source']),
    )
    const after = await c.stats()
    assert.equal(after.Gets - before.Gets, 4, 'every read is counted once')
    assert.equal(after.main_gets - before.main_gets, 4, 'every read looks in the main cache once')
    assert(after.CacheHits - before.CacheHits >= 2, 'hits through the fast path are counted')
  })

  it('serves stats under groupcache names, with the main and hot caches', async () => {
    const c = caches[0] as CacheProcess
    assert.equal((await c.request('/keys/present')).status, 200)
    const s: CacheNodeStats = await c.stats()
    for (const name of GROUPCACHE_COUNTERS) {
      assert.equal(typeof s[name], 'number', name)
      assert(s[name] >= 0, name)
    }
    assert(s.Gets > 0)
    for (const cache of ['main', 'hot'] as const)
      for (const field of ['bytes', 'items', 'gets', 'hits', 'evictions'] as const)
        assert.equal(typeof s[`${cache}_${field}`], 'number', `${cache}_${field}`)
    assert.equal(s.cache_bytes_limit, 64 * 1024 * 1024)
    assert.equal(s.node, c.url)
    assert.equal(s.peer, c.peerUrl)
    assert.equal(s.admin, cluster.admin.url)
    assert.deepEqual(s.peers, caches.map((x) => x.peerUrl).sort())
    for (const d of s.dbs) {
      assert.equal(typeof d.url, 'string')
      assert.equal(typeof d.down, 'boolean')
      assert.equal(typeof d.reads, 'number')
      assert.equal(typeof d.errors, 'number')
    }
    assert.equal(typeof s.uptime_seconds, 'number')
    assert(s.rss_bytes > 0)
  })

  it('serves /metrics in the Prometheus text format', async () => {
    const c = caches[1] as CacheProcess
    assert.equal((await c.request('/keys/present')).status, 200)
    const earlier = await c.stats()
    const res = await c.request('/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = res.text()
    const samples = parsePrometheus(text)
    assert.match(text, /^# TYPE oncekv_cache_gets_total counter$/m)
    for (const name of [
      'oncekv_cache_gets_total',
      'oncekv_cache_cache_hits_total',
      'oncekv_cache_peer_loads_total',
      'oncekv_cache_local_loads_total',
      'oncekv_cache_main_evictions_total',
      'oncekv_cache_bytes_limit',
      'oncekv_cache_main_bytes',
      'oncekv_cache_hot_bytes',
      'oncekv_cache_peers',
    ])
      assert(samples.has(name), name)
    const s = await c.stats()
    assert(samples.get('oncekv_cache_gets_total')! > 0)
    assert(samples.get('oncekv_cache_gets_total')! <= s.Gets)
    assert.equal(samples.get('oncekv_cache_bytes_limit'), s.cache_bytes_limit)
    assert.equal(samples.get('oncekv_cache_peers'), 3)
    // The main and hot caches' gets and hits, one series per cache.
    assert.match(text, /^# TYPE oncekv_cache_lookups_total counter$/m)
    assert.match(text, /^# TYPE oncekv_cache_lookup_hits_total counter$/m)
    const labeled = (name: string, cache: string): number => {
      const m = new RegExp(`^${name}\\{cache="${cache}"\\} (\\d+)$`, 'm').exec(text)
      assert(m, `${name}{cache="${cache}"} in /metrics`)
      return Number(m[1])
    }
    for (const cache of ['main', 'hot'] as const) {
      const gets = labeled('oncekv_cache_lookups_total', cache)
      const hits = labeled('oncekv_cache_lookup_hits_total', cache)
      // Scraped between the two /stats reads, which only grow.
      assert(
        gets >= earlier[`${cache}_gets`] && gets <= s[`${cache}_gets`],
        `${cache} gets ${gets}`,
      )
      assert(
        hits >= earlier[`${cache}_hits`] && hits <= s[`${cache}_hits`],
        `${cache} hits ${hits}`,
      )
      assert(hits <= gets)
    }
    assert(labeled('oncekv_cache_lookups_total', 'main') > 0)
    assert.match(text, /^oncekv_process_\w*resident_memory_bytes \d+$/m)
  })

  it('pushes stats over /ws/stats at least twice, and refuses a foreign origin', async () => {
    const c = caches[2] as CacheProcess
    const pushed = await wsOutcome(`ws://${c.http}/ws/stats`, { count: 2 })
    const stats = pushed.messages.map((m) => JSON.parse(m) as CacheNodeStats)
    assert.equal(stats.length, 2)
    for (const s of stats) {
      assert.equal(s.node, c.url)
      assert.equal(typeof s.Gets, 'number')
      assert.equal(s.peers.length, 3)
    }
    // A page of this node's own origin may connect; any other is refused on upgrade.
    const own = await wsOutcome(`ws://${c.http}/ws/stats`, { headers: { origin: c.url } })
    assert.equal(own.status, undefined)
    assert.equal(own.messages.length, 1)
    const foreign = await wsOutcome(`ws://${c.http}/ws/stats`, {
      headers: { origin: 'http://evil.example' },
    })
    assert.equal(foreign.status, 403)
    assert.equal(foreign.messages.length, 0)
    const unknown = await wsOutcome(`ws://${c.http}/ws/nothing`)
    assert.equal(unknown.status, 404)
    // The same on the admin.
    const adminForeign = await wsOutcome(`ws://${cluster.admin.http}/ws/caches`, {
      headers: { origin: 'http://evil.example' },
    })
    assert.equal(adminForeign.status, 403)
    const adminCaches = await wsOutcome(`ws://${cluster.admin.http}/ws/caches`)
    assert.deepEqual(JSON.parse(adminCaches.messages[0] as string), caches.map((x) => x.url).sort())
  })

  it('answers /healthz, /readyz and /ping', async () => {
    for (const c of caches) {
      const health = await c.request('/healthz')
      assert.equal(health.status, 200)
      assert.deepEqual(health.json(), { status: 'ok' })
      const ready = await c.request('/readyz')
      assert.equal(ready.status, 200)
      assert.deepEqual(ready.json(), { status: 'ready', peers: 3 })
      const ping = await c.request('/ping')
      assert.equal(ping.status, 200)
      assert.equal(ping.text(), 'pong')
    }
    const ping = await cluster.admin.request('/ping')
    assert.equal(ping.text(), 'pong')
  })

  it('serves reads from a node run without an admin (--db and --peers)', async (t) => {
    const member = cluster.running()[0]
    assert(member)
    // Its ring is itself and the three nodes above (which do not know it): it asks them for
    // the keys they own, and reads the rest from the database itself.
    const alone = await cluster.addCache({
      dbs: [member.url],
      peers: caches.map((c) => c.peerUrl),
    })
    await waitFor(`${alone.id} to be ready`, async () => {
      if (!alone.running) throw new GiveUp(`${alone.id} exited: ${JSON.stringify(alone.exits)}`)
      return alone.isReady()
    })
    const s = await alone.stats()
    assert.equal(s.admin, null)
    assert.deepEqual(s.peers, [...caches.map((c) => c.peerUrl), alone.peerUrl].sort())
    assert.deepEqual(
      s.dbs.map((d) => d.url),
      [member.url],
    )
    const keys = Array.from({ length: 40 }, (_, i) => `alone/${i}`)
    for (const key of keys) {
      const res: HttpResponse = await member.request(`/keys/${keyPath(key)}`, {
        method: 'PUT',
        body: `v ${key}`,
      })
      assert.equal(res.status, 201)
    }
    const sources = new Map<string, number>()
    for (const key of keys) {
      const res = await alone.request(`/key/${keyPath(key)}`)
      assert.equal(res.status, 200, res.text())
      assert.deepEqual(res.json(), { key, value: `v ${key}` })
      const source = res.headers.get('x-oncekv-source') ?? '?'
      sources.set(source, (sources.get(source) ?? 0) + 1)
    }
    assertError(await alone.request('/key/alone-missing'), 404, 1002, 'key_not_found')
    // Without an admin it takes no heartbeat: its lists stay those of its flags.
    const meta: HttpResponse = await alone.request('/meta', {
      method: 'POST',
      body: JSON.stringify({ peers: [alone.peerUrl], dbs: ['http://127.0.0.1:1'] }),
      headers: { 'content-type': 'application/json' },
    })
    assertError(meta, 409, 1003, 'member_conflict')
    assert.match(meta.json<{ message: string }>().message, /no admin.*--peers and --db/)
    const unchanged = await alone.stats()
    assert.deepEqual(unchanged.peers, s.peers)
    assert.deepEqual(
      unchanged.dbs.map((d) => d.url),
      [member.url],
    )
    assert.equal(unchanged.last_meta_ms, -1)
    t.diagnostic(
      `sources of 40 reads through a node without an admin: ${JSON.stringify(Object.fromEntries(sources))}`,
    )
    assert(sources.get('peer')! > 0, 'it asked its peers')
    assert(sources.get('db')! > 0, 'it read its own keys from the database')
    await cluster.kill(alone.id)
  })
})
