// End to end: the client library against a real system (three members with a 1 KiB value
// limit, the admin, three cache nodes): every method and every error type (with the server's
// code and message), the retry of a put whose first attempt applied but timed out, the
// preference for the fastest node, the token on every request and in no error, a fetch given
// to the client used for every request, batches stopped by their deadline or signal, and nodes
// reached under paths of one origin (a page behind a reverse proxy).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { inspect } from 'node:util'
import { Agent, fetch as undiciFetch } from 'undici'
import {
  InvalidKeyError,
  KeyConflictError,
  OnceKV,
  OnceKVError,
  TimeoutError,
  UnavailableError,
  ValueTooLargeError,
  type OnceKVOptions,
} from '../../src/client/index.ts'
import { waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'
import {
  BlackHole,
  CapturingProxy,
  closedPortUrl,
  HoldingProxy,
  StubNode,
} from './client-net.test-helper.ts'

const MAX_VALUE = 1024

/** ErrorBody is the API's JSON error body. */
interface ErrorBody {
  readonly code: number
  readonly error: string
  readonly message: string
}

/** elapsed runs fn and says how long it took, in ms. */
async function elapsed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

describe('client library', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let client: OnceKV
  const closers: (() => Promise<void>)[] = []

  before(async () => {
    cluster = await clusters.start({ name: 'client', size: 3, maxValueBytes: MAX_VALUE })
    await cluster.startAdmin()
    await cluster.startCaches(3)
    client = new OnceKV({ admin: cluster.admin.url })
  })

  after(async () => {
    await Promise.all(closers.map((c) => c()))
  })

  it('puts once and reads back through the admin-discovered caches', async () => {
    assert.deepEqual(await client.put('greeting', 'hello, wörld'), { created: true })
    assert.deepEqual(await client.put('greeting', 'hello, wörld'), { created: false })
    assert.equal(await client.getString('greeting'), 'hello, wörld')
    assert.deepEqual(await client.get('greeting'), new TextEncoder().encode('hello, wörld'))
    assert.equal(await client.has('greeting'), true)
    assert.equal(await client.get('no-such-key'), undefined)
    assert.equal(await client.getString('no-such-key'), undefined)
    assert.equal(await client.has('no-such-key'), false)

    // Bytes as they are (zeros, invalid UTF-8), and keys that need escaping in a URL.
    const bytes = randomBytes(MAX_VALUE)
    bytes[0] = 0
    bytes[1] = 0xff
    for (const key of ['bin/a b?c#d%e', 'ключ/🙂', 'x'.repeat(1024)]) {
      assert.deepEqual(await client.put(key, bytes), { created: true }, key)
      assert.deepEqual(Buffer.from((await client.get(key)) ?? []), bytes, key)
    }
    const empty = await client.put('empty-value', new Uint8Array(0))
    assert.equal(empty.created, true)
    assert.deepEqual(await client.get('empty-value'), new Uint8Array(0))

    const nodes = client.nodes()
    assert.equal(nodes.caches.length, 3)
    assert.equal(nodes.dbs.length, 3)
    assert.equal(nodes.adminError, undefined)
    // Reads went to the caches (never a member while the caches answer).
    assert.ok(nodes.caches.reduce((n, c) => n + c.requests, 0) >= 6)
    assert.equal(
      nodes.dbs.reduce((n, d) => n + d.errors, 0) + nodes.caches.reduce((n, c) => n + c.errors, 0),
      0,
    )
  })

  it('reports a conflict with the existing value’s ETag, and never for the same value', async () => {
    await client.put('conflict', 'first')
    const err = await client.put('conflict', 'second').then(
      () => assert.fail('a second value was accepted'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof KeyConflictError, String(err))
    assert.ok(err instanceof OnceKVError)
    assert.equal(err.key, 'conflict')
    assert.equal(err.status, 409)
    assert.equal(err.code, 1003)
    assert.equal(err.error, 'key_conflict')
    const member = cluster.all()[0]!
    const head = await member.request(`/keys/${keyPath('conflict')}`, { method: 'HEAD' })
    assert.equal(err.etag, head.headers.get('etag'))
    // The server's own answer to the same put: the error keeps its code, name and message.
    const raw = await member.request(`/keys/${keyPath('conflict')}`, {
      method: 'PUT',
      body: 'second',
    })
    assert.equal(raw.status, 409)
    const body = raw.json<ErrorBody>()
    assert.equal(err.code, body.code)
    assert.equal(err.error, body.error)
    assert.equal(err.serverMessage, body.message)
    assert.equal(body.message, 'key "conflict" already holds a different value')
    assert.equal(err.message, `${body.message} (etag ${err.etag})`)
    assert.deepEqual(await client.put('conflict', 'first'), { created: false })
    assert.equal(await client.getString('conflict'), 'first')
  })

  it('puts and gets many with bounded concurrency', async () => {
    const entries = Array.from({ length: 200 }, (_, i) => [`many/${i}`, `value ${i}`] as const)
    const results = await client.putMany(entries, { concurrency: 8, batchTimeoutMs: 20_000 })
    assert.equal(results.length, 200)
    assert.ok(results.every((r) => r.created))
    const again = await client.putMany(entries)
    assert.ok(again.every((r) => !r.created))
    const keys = [...entries.map(([k]) => k), 'many/missing']
    const values = await client.getMany(keys, { concurrency: 4 })
    assert.equal(values.length, 201)
    for (const [i, [, v]] of entries.entries()) assert.equal(new TextDecoder().decode(values[i]), v)
    assert.equal(values[200], undefined)
    // The first failure rejects the batch.
    await assert.rejects(
      client.putMany([
        ['many/0', 'other'],
        ['many/new', 'x'],
      ]),
      KeyConflictError,
    )
  })

  it('works from explicit lists without an admin', async () => {
    const direct = new OnceKV({
      dbs: cluster.running().map((n) => n.url),
      caches: cluster.runningCaches().map((c) => c.url),
    })
    assert.deepEqual(await direct.put('direct', 'd'), { created: true })
    assert.equal(await direct.getString('direct'), 'd')
    assert.equal(await direct.getString('greeting'), 'hello, wörld')
    const dbOnly = new OnceKV({ dbs: [cluster.all()[1]!.url] })
    assert.equal(await dbOnly.getString('direct'), 'd')
    assert.equal(await dbOnly.has('nope'), false)
  })

  it('says "no value" to has() only on a 404 whose x-oncekv-code is 1002; any other 404 is the node’s failure', async () => {
    await client.put('has/there', 'x')
    // Every oncekv error carries its code in a header, a HEAD's too (it has no body): a member's
    // and a cache's "key not found" (1002) on GET and HEAD, and a route that does not exist
    // (1001) on the admin and on a cache's peer port.
    const member = cluster.running()[0]!
    const cache = cluster.runningCaches()[0]!
    const path = `/keys/${keyPath('has/none')}`
    for (const base of [member.url, cache.url]) {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(base + path, { method })
        assert.equal(res.status, 404, `${method} ${base}`)
        assert.equal(res.headers.get('x-oncekv-code'), '1002', `${method} ${base}`)
        await res.arrayBuffer()
      }
    }
    for (const base of [cluster.admin.url, cache.peerUrl]) {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(base + path, { method })
        assert.equal(res.status, 404, `${method} ${base}`)
        assert.equal(res.headers.get('x-oncekv-code'), '1001', `${method} ${base}`)
        await res.arrayBuffer()
      }
    }

    // Caches that are not a key API: the admin's URL, a cache's peer URL, and a reverse proxy
    // without a matching location (a 404 with no code at all). has() moves on past them to a
    // node that knows, as get() does.
    const proxy = await CapturingProxy.start(cache.url, { prefix: '/oncekv/cache/1' })
    closers.push(() => proxy.close())
    const wrong = [cluster.admin.url, cache.peerUrl, `${proxy.url}/elsewhere`]
    for (const url of wrong) {
      const c = new OnceKV({ caches: [url], dbs: [member.url], refreshMs: 60_000 })
      assert.equal(await c.has('has/there'), true, url)
      assert.equal(await c.has('has/none'), false, url)
      assert.equal(await c.getString('has/there'), 'x', url)
      const [first] = c.nodes().caches
      assert.ok(first!.errors >= 1, `${url}: ${JSON.stringify(first)}`)
    }
    // Only wrong nodes: has() fails rather than say "no value".
    const lost = new OnceKV({ caches: wrong, retries: 2 })
    const err = await lost.has('has/there').catch((e: unknown) => e)
    assert.ok(err instanceof UnavailableError, String(err))
    assert.equal(err.status, 404)
    assert.match(err.message, /3 attempts failed; the last at .*: HTTP 404$/)
  })

  it('refuses invalid keys before sending anything', async () => {
    const hole = await BlackHole.start()
    closers.push(() => hole.close())
    const c = new OnceKV({ dbs: [hole.url], caches: [hole.url] })
    const bad = ['', 'x'.repeat(1025), 'é'.repeat(513), '\ud800', '.', '..']
    for (const key of bad) {
      for (const call of [() => c.put(key, 'v'), () => c.get(key), () => c.has(key)]) {
        const e = await call().then(
          () => assert.fail(`key ${JSON.stringify(key)} was accepted`),
          (err: unknown) => err,
        )
        assert.ok(e instanceof InvalidKeyError, `${JSON.stringify(key)}: ${String(e)}`)
        assert.equal(e.code, 1001)
        assert.equal(e.status, undefined)
      }
    }
    assert.equal(hole.accepted, 0)
  })

  it('maps the server’s refusals of a key and of a value, with its code and message', async () => {
    const member = cluster.running()[0]!
    const c = new OnceKV({ dbs: [member.url], checkKeys: false })
    /** said is the server's own answer to a put of value under the raw key path. */
    const said = async (path: string, value: string | Uint8Array): Promise<ErrorBody> =>
      (await member.request(`/keys/${path}`, { method: 'PUT', body: value })).json<ErrorBody>()
    /** keeps checks that e carries the server's answer. */
    const keeps = (e: OnceKVError, body: ErrorBody): void => {
      assert.equal(e.code, body.code)
      assert.equal(e.error, body.error)
      assert.equal(e.serverMessage, body.message)
      assert.equal(e.message, body.message)
    }
    const empty = await c.put('', 'v').catch((e: unknown) => e)
    assert.ok(empty instanceof InvalidKeyError, String(empty))
    assert.equal(empty.status, 400)
    assert.equal(empty.code, 1001)
    assert.equal(empty.message, 'key must not be empty')
    keeps(empty, await said('', 'v'))
    const long = await c.put('k'.repeat(1025), 'v').catch((e: unknown) => e)
    assert.ok(long instanceof InvalidKeyError, String(long))
    assert.equal(long.status, 413)
    assert.match(long.message, /^key is 1025 bytes/)
    keeps(long, await said('k'.repeat(1025), 'v'))
    const longGet = await c.get('k'.repeat(1025)).catch((e: unknown) => e)
    assert.ok(longGet instanceof InvalidKeyError, String(longGet))
    assert.equal(longGet.status, 413)
    const longHas = await c.has('k'.repeat(1025)).catch((e: unknown) => e)
    assert.ok(longHas instanceof InvalidKeyError, String(longHas))

    const big = await client.put('big', new Uint8Array(MAX_VALUE + 1)).catch((e: unknown) => e)
    assert.ok(big instanceof ValueTooLargeError, String(big))
    assert.equal(big.status, 413)
    assert.equal(big.code, 1001)
    assert.equal(big.error, 'too_large')
    keeps(big, await said('big', new Uint8Array(MAX_VALUE + 1)))
    assert.equal(await client.has('big'), false)
  })

  it('throws UnavailableError when no node can be reached, TimeoutError at the deadline', async () => {
    const dead = [await closedPortUrl(), await closedPortUrl(), await closedPortUrl()]
    const lists = { dbs: dead.slice(0, 2), caches: dead.slice(2) }
    // With few retries the attempts run out first; with the default, the deadline ends the call.
    // The deadline must come before the default 21 attempts can end: reads try 3 nodes a round,
    // so 21 attempts are 7 rounds with 6 backoffs between them, at least 25 + 50 + 100 + 200 +
    // 400 + 500 = 1,275 ms with the least jitter (writes, 2 members a round, wait longer).
    const many = new OnceKV({ ...lists, timeoutMs: 1_000 })
    const few = new OnceKV({ ...lists, retries: 2 })
    const calls = (c: OnceKV) => [() => c.put('k', 'v'), () => c.get('k'), () => c.has('k')]
    for (const call of calls(few)) {
      let err: unknown
      const ms = await elapsed(() => call().catch((e: unknown) => (err = e)))
      assert.ok(err instanceof UnavailableError, String(err))
      assert.equal(err.code, 1005)
      assert.match(
        err.message,
        /^(put|get|has) "k": 3 attempts failed; the last at http:.*ECONNREFUSED/,
      )
      assert.ok(ms < 1_000, `gave up after ${ms} ms`)
    }
    for (const call of calls(many)) {
      let err: unknown
      const ms = await elapsed(() => call().catch((e: unknown) => (err = e)))
      assert.ok(err instanceof TimeoutError, String(err))
      assert.equal(err.code, 1005)
      assert.match(
        err.message,
        /^(put|get|has) "k": no answer within 1000 ms; the last failure: .*ECONNREFUSED/,
      )
      assert.ok(ms >= 900 && ms < 2_000, `gave up after ${ms} ms`)
    }
    const viaAdmin = new OnceKV({ admin: dead[0] })
    const err = await viaAdmin.get('k').catch((e: unknown) => e)
    assert.ok(err instanceof UnavailableError, String(err))
    assert.match(err.message, /cannot get the node lists from the admin/)
    assert.ok(viaAdmin.nodes().adminError)
  })

  it('throws TimeoutError at the deadline, or when a timeout signal fires', async () => {
    const hole = await BlackHole.start()
    closers.push(() => hole.close())
    const c = new OnceKV({ dbs: [hole.url], timeoutMs: 400 })
    let err: unknown
    let ms = await elapsed(() => c.put('k', 'v').catch((e: unknown) => (err = e)))
    assert.ok(err instanceof TimeoutError, String(err))
    assert.ok(err instanceof OnceKVError)
    assert.match(err.message, /no answer within 400 ms/)
    assert.ok(ms >= 390 && ms < 2_000, `took ${ms} ms`)

    const slow = new OnceKV({ dbs: [hole.url] })
    ms = await elapsed(() =>
      slow.get('k', { signal: AbortSignal.timeout(200) }).catch((e: unknown) => (err = e)),
    )
    assert.ok(err instanceof TimeoutError, String(err))
    assert.ok(ms >= 190 && ms < 1_500, `took ${ms} ms`)

    // A per-call timeoutMs overrides the client's.
    ms = await elapsed(() => slow.has('k', { timeoutMs: 150 }).catch((e: unknown) => (err = e)))
    assert.ok(err instanceof TimeoutError, String(err))
    assert.ok(ms < 1_500, `took ${ms} ms`)

    // An abort for another reason rejects with that reason, as fetch does.
    const ctl = new AbortController()
    const reason = new Error('the caller gave up')
    const pending = slow.put('k', 'v', { signal: ctl.signal })
    setTimeout(() => ctl.abort(reason), 50)
    await assert.rejects(pending, (e) => e === reason)
    await assert.rejects(slow.get('k', { signal: AbortSignal.abort(reason) }), (e) => e === reason)
    assert.ok(hole.accepted >= 3)
  })

  it('keeps what the last attempt learned in a TimeoutError, and says whole milliseconds', async () => {
    // A member that answers every request with 503 "no leader": each call ends at its deadline.
    const noLeader = await StubNode.start(() => ({
      status: 503,
      body: { code: 1005, error: 'unavailable', message: 'no leader known yet' },
    }))
    const hole = await BlackHole.start()
    closers.push(
      () => noLeader.close(),
      () => hole.close(),
    )
    const c = new OnceKV({ dbs: [noLeader.url], timeoutMs: 600.4 })
    const said = /^(put|get|has) "k": no answer within 600 ms; the last failure: http:\S+: HTTP 503/
    for (const call of [() => c.put('k', 'v'), () => c.get('k')]) {
      const err = await call().catch((e: unknown) => e)
      assert.ok(err instanceof TimeoutError, String(err))
      assert.equal(err.status, 503)
      assert.equal(err.code, 1005)
      assert.equal(err.error, 'unavailable')
      assert.equal(err.serverMessage, 'no leader known yet')
      assert.match(err.message, said)
      assert.match(err.message, /: HTTP 503: no leader known yet$/)
    }
    // A HEAD's answer has no body: the status stays.
    const headErr = await c.has('k').catch((e: unknown) => e)
    assert.ok(headErr instanceof TimeoutError, String(headErr))
    assert.equal(headErr.status, 503)
    assert.match(headErr.message, said)
    // A timeout signal's TimeoutError keeps it too.
    const signalled = await c
      .get('k', { signal: AbortSignal.timeout(300) })
      .catch((e: unknown) => e)
    assert.ok(signalled instanceof TimeoutError, String(signalled))
    assert.equal(signalled.status, 503)
    assert.equal(signalled.serverMessage, 'no leader known yet')
    assert.match(
      signalled.message,
      /^get "k": timed out \(the signal's timeout\); the last failure: /,
    )
    // An attempt's own timeout is said in whole milliseconds too.
    const slow = new OnceKV({ dbs: [hole.url], attemptTimeoutMs: 150.6, retries: 0 })
    const err = await slow.get('k').catch((e: unknown) => e)
    assert.ok(err instanceof UnavailableError, String(err))
    assert.equal(err.status, undefined)
    assert.match(
      err.message,
      /^get "k": 1 attempts failed; the last at http:\S+: no answer within 151 ms$/,
    )
  })

  it('reports created: false when a put is retried after a timed-out attempt that applied', async () => {
    const member = cluster.running()[0]!
    const proxy = await HoldingProxy.start(member.url, { holdFirstMs: 1_500 })
    closers.push(() => proxy.close())
    const c = new OnceKV({ dbs: [proxy.url], attemptTimeoutMs: 300, timeoutMs: 5_000 })
    let result: unknown
    const ms = await elapsed(async () => (result = await c.put('retried', 'once')))
    assert.deepEqual(result, { created: false })
    // The first attempt created the key: its answer (201) was held back past the timeout.
    assert.equal(proxy.firstStatus, 201)
    assert.ok(proxy.connections >= 2)
    assert.ok(ms >= 300 && ms < 1_500, `took ${ms} ms`)
    const info = c.nodes().dbs[0]!
    assert.equal(info.errors, 1)
    assert.equal(await client.getString('retried'), 'once')
    // A retry with other bytes is still a conflict: only identical bytes succeed.
    await assert.rejects(c.put('retried', 'twice'), KeyConflictError)
  })

  it('sends writes to the leader once a follower’s answer names it', async () => {
    // A new leader during the writes would rightly move them: then the case runs again.
    for (let attempt = 1; ; attempt++) {
      const { node: leader, stats } = await cluster.leader()
      const [f1, f2] = cluster.running().filter((n) => n.id !== leader.id)
      // Never-used members come first, in the order given: the first write goes to f1.
      const c = new OnceKV({ dbs: [f1!.url, f2!.url, leader.url] })
      for (let i = 0; i < 10; i++)
        assert.deepEqual(await c.put(`routed-${attempt}-${i}`, 'v'), { created: true })
      if ((await cluster.leader()).stats.term !== stats.term && attempt < 3) continue
      const nodes = c.nodes()
      assert.equal(nodes.leader, leader.url)
      const requests = (url: string): number | undefined =>
        nodes.dbs.find((d) => d.url === url)?.requests
      assert.deepEqual(
        [requests(f1!.url), requests(f2!.url), requests(leader.url)],
        [1, 0, 9],
        JSON.stringify(nodes.dbs),
      )
      return
    }
  })

  it('prefers the fastest node of a tier', async () => {
    const [a, b] = cluster.running()
    const slowProxy = await HoldingProxy.start(a!.url, { delayMs: 40 })
    closers.push(() => slowProxy.close())
    const c = new OnceKV({ dbs: [slowProxy.url, b!.url] })
    for (let i = 0; i < 30; i++) assert.equal(await c.getString('greeting'), 'hello, wörld')
    const [slow, fast] = c.nodes().dbs
    assert.ok(slow!.requests <= 2, `the slow node got ${slow!.requests} requests`)
    assert.ok(fast!.requests >= 28, `the fast node got ${fast!.requests} requests`)
    assert.ok(slow!.ewmaMs! > fast!.ewmaMs!, JSON.stringify(c.nodes().dbs))
  })
  it('sends the token on every request (admin lists, writes, reads) through the given fetch', async () => {
    const token = `tok-${randomBytes(16).toString('hex')}`
    // A recording proxy in front of every node; the admin's lists name the proxies.
    const proxies = new Map<string, CapturingProxy>()
    for (const n of [...cluster.running(), ...cluster.runningCaches()])
      proxies.set(n.url, await CapturingProxy.start(n.url))
    const adminProxy = await CapturingProxy.start(cluster.admin.url, {
      rewrite: new Map([...proxies].map(([url, p]) => [url, p.url])),
    })
    const all = [adminProxy, ...proxies.values()]
    closers.push(...all.map((p) => () => p.close()))
    const proxyOf = (url: string): CapturingProxy => proxies.get(url) as CapturingProxy
    const fetched: string[] = []
    const recording: typeof fetch = (input, init) => {
      fetched.push(`${init?.method ?? 'GET'} ${String(input)}`)
      return fetch(input, init)
    }
    // No background refresh: every request below is one a call made.
    const opts = { token, fetch: recording, refreshMs: 60_000 }

    const c = new OnceKV({ admin: adminProxy.url, ...opts })
    assert.deepEqual(await c.put('auth/one', 'one'), { created: true })
    assert.deepEqual(await c.put('auth/one', 'one'), { created: false })
    await assert.rejects(c.put('auth/one', 'two'), KeyConflictError) // a HEAD for its ETag too
    assert.equal(await c.getString('auth/one'), 'one')
    assert.equal(await c.has('auth/one'), true)
    assert.equal(await c.get('auth/none'), undefined)
    assert.equal(
      (
        await c.putMany([
          ['auth/a', 'a'],
          ['auth/b', 'b'],
        ])
      ).length,
      2,
    )
    assert.equal((await c.getMany(['auth/a', 'auth/b'])).length, 2)
    await c.refresh()
    assert.equal(c.nodes().caches.length, cluster.runningCaches().length)
    // Reads from members: a client given the members' proxies only.
    const members = new OnceKV({ dbs: cluster.running().map((n) => proxyOf(n.url).url), ...opts })
    assert.equal(await members.getString('auth/one'), 'one')
    assert.equal(await members.has('auth/none'), false)

    const seen = all.flatMap((p) => p.seen.map((r) => ({ at: p.url, ...r })))
    const without = seen.filter((r) => r.headers.authorization !== `Bearer ${token}`)
    assert.deepEqual(without, [], 'requests without the token')
    const kinds = (nodes: { url: string }[]): Set<string> =>
      new Set(nodes.flatMap((n) => proxyOf(n.url).seen.map((r) => r.method)))
    const adminPaths = adminProxy.seen.map((r) => `${r.method} ${r.path}`)
    assert.ok(adminPaths.includes('GET /caches'), adminPaths.join(', '))
    assert.ok(adminPaths.includes('GET /dbs'), adminPaths.join(', '))
    assert.deepEqual([...kinds(cluster.running())].sort(), ['GET', 'HEAD', 'PUT'])
    assert.deepEqual([...kinds(cluster.runningCaches())].sort(), ['GET', 'HEAD'])
    // Each of them went through the given fetch, and none went around the proxies.
    assert.equal(fetched.length, seen.length, fetched.join('\n'))
    for (const f of fetched)
      assert.ok(
        all.some((p) => f.includes(` ${p.url}/`)),
        f,
      )
  })

  it('uses a pooled fetch given to it: one connection for a whole batch', async (t) => {
    const member = cluster.running()[0]!
    const pooledProxy = await CapturingProxy.start(member.url)
    const plainProxy = await CapturingProxy.start(member.url)
    const agent = new Agent({ connections: 1 })
    closers.push(
      () => pooledProxy.close(),
      () => plainProxy.close(),
      () => agent.close(),
    )
    const entries = Array.from({ length: 40 }, (_, i) => [`pooled/${i}`, `v${i}`] as const)
    const keys = entries.map(([k]) => k)
    // undici's fetch with its own pool, written exactly as the README's example (no cast): the
    // type-check of this file proves that the example compiles.
    const viaPool = new OnceKV({
      dbs: [pooledProxy.url],
      fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
    })
    assert.ok((await viaPool.putMany(entries, { concurrency: 8 })).every((r) => r.created))
    const values = await viaPool.getMany(keys, { concurrency: 8 })
    assert.deepEqual(
      values.map((v) => new TextDecoder().decode(v)),
      entries.map(([, v]) => v),
    )
    assert.equal(pooledProxy.seen.length, 80)
    assert.equal(pooledProxy.connections, 1)
    // The same batch through the built-in fetch opens several connections.
    const plain = new OnceKV({ dbs: [plainProxy.url] })
    await plain.getMany(keys, { concurrency: 8 })
    assert.ok(plainProxy.connections > 1, `${plainProxy.connections} connection(s)`)
    t.diagnostic(
      `80 calls, concurrency 8: ${pooledProxy.connections} connection through the pool, ` +
        `${plainProxy.connections} for 40 through the built-in fetch`,
    )
  })

  it('never shows the token in an error, even one a server echoes', async () => {
    const token = `tok-${randomBytes(16).toString('hex')}`
    const hole = await BlackHole.start()
    // A node that refuses writes (401) and is unavailable for reads (503), quoting the
    // Authorization header it got in its message.
    const echo = await StubNode.start((r) => {
      const write = r.method === 'PUT'
      return {
        status: write ? 401 : 503,
        body: {
          code: write ? 1001 : 1005,
          error: write ? 'unauthorized' : 'unavailable',
          message: `refused: ${String(r.headers.authorization)}`,
        },
      }
    })
    closers.push(
      () => hole.close(),
      () => echo.close(),
    )
    const dead = await closedPortUrl()
    const dbs = cluster.running().map((n) => n.url)
    const kv = (o: OnceKVOptions): OnceKV => new OnceKV({ token, ...o })
    const viaDeadAdmin = kv({ admin: dead })
    const calls: [string, () => Promise<unknown>, new (...a: never[]) => OnceKVError][] = [
      [
        'conflict',
        async () => {
          const c = kv({ admin: cluster.admin.url })
          await c.put('auth/conflict', 'a')
          return c.put('auth/conflict', 'b')
        },
        KeyConflictError,
      ],
      [
        'too large',
        () => kv({ dbs }).put('big', new Uint8Array(MAX_VALUE + 1)),
        ValueTooLargeError,
      ],
      ['bad key', () => kv({ dbs, checkKeys: false }).put('', 'v'), InvalidKeyError],
      ['timeout', () => kv({ dbs: [hole.url], timeoutMs: 300 }).get('k'), TimeoutError],
      ['refused', () => kv({ dbs: [dead], retries: 1 }).get('k'), UnavailableError],
      ['no admin', () => viaDeadAdmin.get('k'), UnavailableError],
      ['401', () => kv({ dbs: [echo.url] }).put('k', 'v'), OnceKVError],
      ['503', () => kv({ dbs: [echo.url], retries: 1 }).get('k'), UnavailableError],
    ]
    const errors = new Map<string, OnceKVError>()
    for (const [name, call, type] of calls) {
      const e = await call().then(
        () => assert.fail(`${name}: no error`),
        (err: unknown) => err,
      )
      assert.ok(e instanceof type, `${name}: ${String(e)}`)
      const shown = [String(e), e.stack, inspect(e, { depth: 5 }), JSON.stringify(e)].join('\n')
      assert.ok(!shown.includes(token), `${name} shows the token: ${shown}`)
      errors.set(name, e)
    }
    assert.ok(!JSON.stringify(viaDeadAdmin.nodes()).includes(token))
    // A server's message keeps its words, with the token hidden.
    const refused = errors.get('401') as OnceKVError
    assert.equal(refused.status, 401)
    assert.equal(refused.error, 'unauthorized')
    assert.equal(refused.serverMessage, 'refused: Bearer <token>')
    const unavailable = errors.get('503') as OnceKVError
    assert.equal(unavailable.status, 503)
    assert.equal(unavailable.code, 1005)
    assert.equal(unavailable.error, 'unavailable')
    assert.equal(unavailable.serverMessage, 'refused: Bearer <token>')
    assert.match(
      unavailable.message,
      /2 attempts failed; the last at .*HTTP 503: refused: Bearer <token>$/,
    )
    assert.equal(echo.seen.length, 3)
  })
  it('stops a batch at its deadline or when its signal aborts: no call starts after, none is left running', async () => {
    const hole = await BlackHole.start()
    closers.push(() => hole.close())
    let started = 0
    let inFlight = 0
    const counting: typeof fetch = async (input, init) => {
      started++
      inFlight++
      try {
        return await fetch(input, init)
      } finally {
        inFlight--
      }
    }
    // Every call would wait on the black hole for its own deadline (5 s).
    const c = new OnceKV({ dbs: [hole.url], fetch: counting })
    const entries = Array.from({ length: 40 }, (_, i) => [`batch/${i}`, 'v'] as const)
    const keys = entries.map(([k]) => k)

    let err: unknown
    let ms = await elapsed(() =>
      c.putMany(entries, { concurrency: 4, batchTimeoutMs: 300 }).catch((e: unknown) => (err = e)),
    )
    assert.ok(err instanceof TimeoutError, String(err))
    assert.equal(err.message, "putMany: 0 of 40 calls done when the batch's 300 ms ran out")
    assert.ok(ms >= 290 && ms < 1_500, `took ${ms} ms`)
    assert.deepEqual({ started, inFlight }, { started: 4, inFlight: 0 })

    started = 0
    const ctl = new AbortController()
    const reason = new Error('the caller gave up')
    const pending = c.getMany(keys, { concurrency: 4, signal: ctl.signal }).catch((e: unknown) => e)
    await waitFor('4 calls in flight', () => inFlight === 4)
    ms = await elapsed(async () => {
      ctl.abort(reason)
      assert.equal(await pending, reason)
    })
    assert.ok(ms < 500, `settled ${ms} ms after the abort`)
    assert.deepEqual({ started, inFlight }, { started: 4, inFlight: 0 })

    // A timeout signal ends it with TimeoutError; an aborted one starts nothing.
    started = 0
    ms = await elapsed(() =>
      c.getMany(keys, { signal: AbortSignal.timeout(200) }).catch((e: unknown) => (err = e)),
    )
    assert.ok(err instanceof TimeoutError, String(err))
    assert.match(err.message, /^getMany: timed out/)
    assert.ok(ms >= 190 && ms < 1_500, `took ${ms} ms`)
    assert.deepEqual({ started, inFlight }, { started: 16, inFlight: 0 })
    started = 0
    await assert.rejects(
      c.putMany(entries, { signal: AbortSignal.abort(reason) }),
      (e) => e === reason,
    )
    await assert.rejects(c.getMany(keys, { batchTimeoutMs: 0 }), RangeError)
    assert.equal(started, 0)
  })
  it('reaches nodes under paths of one origin, as a page does through a reverse proxy', async () => {
    // One proxy per node, each forwarding only its own path: base URLs with a path, as a
    // same-origin page gives them (the origin's /oncekv/db/1 is the first member, ...).
    const mapped = async (url: string, prefix: string): Promise<string> => {
      const p = await CapturingProxy.start(url, { prefix })
      closers.push(() => p.close())
      return p.url + prefix
    }
    const dbs = await Promise.all(
      cluster.running().map((n, i) => mapped(n.url, `/oncekv/db/${i + 1}`)),
    )
    const caches = await Promise.all(
      cluster.runningCaches().map((c, i) => mapped(c.url, `/oncekv/cache/${i + 1}`)),
    )
    const c = new OnceKV({ dbs: dbs.map((u) => `${u}/`), caches })
    for (const key of ['origin/a b?c#d%e&f=g', 'origin/%2F/../x', 'origin/ключ']) {
      assert.deepEqual(await c.put(key, key), { created: true }, key)
      assert.equal(await c.getString(key), key, key)
      assert.equal(await c.has(key), true, key)
      assert.equal(await client.getString(key), key, key)
    }
    const nodes = c.nodes()
    assert.deepEqual(
      nodes.dbs.map((n) => n.url),
      dbs,
    )
    // Reads went to the caches, through their paths, and nothing failed.
    assert.ok(nodes.caches.reduce((n, i) => n + i.requests, 0) >= 6)
    assert.equal(
      [...nodes.caches, ...nodes.dbs].reduce((n, i) => n + i.errors, 0),
      0,
    )
  })
})
