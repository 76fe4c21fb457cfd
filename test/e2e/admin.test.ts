// The admin with real processes: the cache and database lists follow joins, leaves and
// database changes (GET and WebSocket), the overview shows every node with its health and
// the leader, the dashboard's lookup and put report what happened, and WebSockets refuse
// pages of other origins.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import WebSocket from 'ws'
import type {
  AdminHistory,
  AdminOverview,
  AdminPutResponse,
  LookupResponse,
} from '../../src/protocol/index.ts'
import { waitFor, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { postJson } from './http.ts'
import { wsMessages, wsOutcome } from './ws.ts'

/** ListFeed keeps every list a WebSocket pushed, in order, until closed. */
interface ListFeed {
  readonly lists: string[][]
  close(): void
}

/** openFeed opens a WebSocket that pushes JSON lists and resolves once it is open. wsMessages
 * answers "the first n messages"; a membership change pushes an unknown number of lists (a
 * learner first, then a voter), so these tests wait on the lists seen so far instead. */
async function openFeed(url: string): Promise<ListFeed> {
  const lists: string[][] = []
  const ws = new WebSocket(url)
  ws.on('message', (data: Buffer) => lists.push(JSON.parse(data.toString('utf8')) as string[]))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  return { lists, close: () => ws.terminate() }
}

/** upgradeStatus is the HTTP status of a refused upgrade, or 101 when it opened. */
async function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return (await wsOutcome(url, { headers })).status ?? 101
}

describe('admin', () => {
  const clusters = useClusters()
  let c: Cluster

  before(async () => {
    c = await clusters.start({ name: 'admin', size: 3 })
    await c.startAdmin(['--allow-origin', 'http://dashboard.example:8080'])
    await c.startCaches(2)
  })

  it('lists caches as they join and leave, and pushes the list on /ws/caches', async () => {
    const ws = `ws://${c.admin.http}/ws/caches`
    const first = (await wsMessages(ws, 1))[0] as string[]
    assert.deepEqual(
      first,
      c
        .caches()
        .map((x) => x.url)
        .sort(),
    )
    // A third node joins: the push carries it.
    const pushed = wsMessages(ws, 2)
    const third = await c.addCache()
    const [, after] = (await pushed) as string[][]
    assert.ok(after?.includes(third.url), `pushed ${JSON.stringify(after)}`)
    await c.waitRing()
    // It leaves (killed): the admin drops it after three missed heartbeats.
    await c.kill(third.id)
    await waitFor(
      'the admin to drop the killed cache',
      async () => !(await c.admin.caches()).includes(third.url),
      { timeoutMs: 10_000 },
    )
    const overview = (await (await fetch(`${c.admin.url}/overview`)).json()) as AdminOverview
    const shown = overview.nodes.find((n) => n.url === third.url)
    assert.equal(shown?.health, 'down', 'a dropped cache stays on the overview as down')
    await c.waitRing()
  })

  it('follows the database: members, leader and a member that goes down', async () => {
    assert.deepEqual(
      await c.admin.dbList(),
      c
        .running()
        .map((n) => n.url)
        .sort(),
    )
    const overview = await waitFor('an overview with every node up', async () => {
      const o = (await (await fetch(`${c.admin.url}/overview`)).json()) as AdminOverview
      const up = o.nodes.filter((n) => n.health === 'up')
      return up.length >= 5 ? o : undefined
    })
    const { node: leader } = await c.leader()
    assert.equal(overview.leader, leader.id)
    const leaders = overview.nodes.filter((n) => n.leader)
    assert.deepEqual(
      leaders.map((n) => n.id),
      [leader.id],
    )
    for (const n of overview.nodes.filter((x) => x.kind === 'db')) {
      assert.equal(n.suffrage, 'voter')
      assert.equal(typeof n.lag, 'number')
    }
    // Kill a follower: it shows as down; the leader does not move.
    const follower = c.running().find((n) => n.id !== leader.id)
    assert.ok(follower)
    await c.kill(follower.id)
    await waitFor(
      `${follower.id} to show as down`,
      async () => {
        const o = (await (await fetch(`${c.admin.url}/overview`)).json()) as AdminOverview
        return o.nodes.find((n) => n.id === follower.id)?.health === 'down'
      },
      { timeoutMs: 10_000 },
    )
    c.restart(follower.id)
    await c.waitReady(follower.id)
    await waitFor(
      `${follower.id} to show as up again`,
      async () => {
        const o = (await (await fetch(`${c.admin.url}/overview`)).json()) as AdminOverview
        return o.nodes.find((n) => n.id === follower.id)?.health === 'up'
      },
      { timeoutMs: 10_000 },
    )
  })

  it('pushes the database list on /ws/dbs when it connects and when the membership changes', async () => {
    const url = `ws://${c.admin.http}/ws/dbs`
    const three = c
      .running()
      .map((n) => n.url)
      .sort()
    const [onConnect] = await wsMessages<string[]>(url, 1)
    assert.deepEqual(onConnect, three)
    assert.deepEqual(await c.admin.dbList(), three)

    const feed = await openFeed(url)
    let n4: DbProcess | undefined
    try {
      await waitFor('the list on connect', () => feed.lists.length > 0)
      assert.deepEqual(feed.lists[0], three)
      // A fourth member joins (a learner, then a voter): a push lists it, as GET /dbs does.
      n4 = await c.addMember({ id: 'n4', timeoutMs: 30_000 })
      const four = [...three, n4.url].sort()
      await waitFor('a push listing n4', () => feed.lists.some((l) => l.join() === four.join()), {
        timeoutMs: 10_000,
      })
      assert.deepEqual(feed.lists.at(-1), four, JSON.stringify(feed.lists))
      assert.deepEqual(await c.admin.dbList(), four)
      // It is removed (POST /remove to another member, which passes it to the leader): the
      // next push is the three again, and so is GET /dbs.
      const seen = feed.lists.length
      const via = c.running().find((n) => n.id !== 'n4')
      assert.ok(via)
      const removed = await postJson(`${via.url}/remove`, { id: 'n4' }, 15_000)
      assert.equal(removed.status, 200, removed.text())
      await waitFor(
        'a push without n4',
        () => feed.lists.slice(seen).some((l) => l.join() === three.join()),
        { timeoutMs: 10_000 },
      )
      assert.deepEqual(feed.lists.at(-1), three, JSON.stringify(feed.lists))
      assert.deepEqual(await c.admin.dbList(), three)
    } finally {
      feed.close()
      // The removed member's process still runs: stop it, so the running members are the
      // cluster's again.
      if (n4?.running) await c.terminate(n4.id)
    }
  })

  it('streams history, then an overview every second, on /ws/overview', async () => {
    const [history, o1, o2] = (await wsMessages(`ws://${c.admin.http}/ws/overview`, 3)) as [
      AdminHistory,
      AdminOverview,
      AdminOverview,
    ]
    assert.equal(history.type, 'history')
    assert.ok(history.cluster.length > 0)
    assert.ok(Object.keys(history.nodes).length >= 5)
    assert.equal(o1.type, 'overview')
    assert.equal(o2.type, 'overview')
    assert.ok(o2.time > o1.time)
  })

  it('refuses WebSocket pages of other origins, accepts its own and --allow-origin', async () => {
    const url = `ws://${c.admin.http}/ws/overview`
    assert.equal(await upgradeStatus(url, { origin: 'http://evil.example' }), 403)
    assert.equal(await upgradeStatus(url, { origin: `http://${c.admin.http}` }), 101)
    assert.equal(await upgradeStatus(url, { origin: 'http://dashboard.example:8080' }), 101)
    assert.equal(await upgradeStatus(`ws://${c.admin.http}/ws/caches`, { origin: 'null' }), 403)
    assert.equal(await upgradeStatus(`ws://${c.admin.http}/ws/nothing`, {}), 404)
  })

  it('looks keys up through a cache and reports put outcomes plainly', async () => {
    const put = async (key: string, value: string): Promise<AdminPutResponse> => {
      const r = await postJson(`${c.admin.url}/api/put`, { key, value })
      assert.equal(r.status, 200, r.text())
      return r.json<AdminPutResponse>()
    }
    assert.equal((await put('dash/a', 'one')).outcome, 'created')
    assert.equal((await put('dash/a', 'one')).outcome, 'exists')
    const conflict = await put('dash/a', 'two')
    assert.equal(conflict.outcome, 'conflict')
    assert.equal(conflict.existing, 'one')
    const lookup = async (key: string): Promise<LookupResponse> => {
      const r = await fetch(`${c.admin.url}/api/lookup/${encodeURIComponent(key)}`)
      assert.equal(r.status, 200)
      return (await r.json()) as LookupResponse
    }
    const caches = c.runningCaches().map((x) => x.url)
    // The first lookup fills from the database: the node asked is the key's owner (source db)
    // or asks the owner (source peer).
    const first = await lookup('dash/a')
    assert.equal(first.found, true)
    assert.equal(first.value, 'one')
    assert.equal(first.size, 3)
    assert.ok(caches.includes(first.served_by), first.served_by)
    assert.ok(['db', 'peer'].includes(first.source ?? ''), first.source)
    // Later lookups (each through a cache node picked at random) are served by the cache
    // tier: the owner's main cache, a hot copy, or the owner asked over the peer protocol;
    // no member reads the key again.
    const memberReads = async (): Promise<number> =>
      (await Promise.all(c.running().map((n) => n.stats()))).reduce((a, s) => a + s.reads, 0)
    const readsBefore = await memberReads()
    for (let i = 0; i < 6; i++) {
      const again = await lookup('dash/a')
      assert.equal(again.value, 'one')
      assert.equal(again.size, 3)
      assert.ok(caches.includes(again.served_by), again.served_by)
      assert.ok(['main', 'hot', 'peer'].includes(again.source ?? ''), again.source)
    }
    assert.equal(await memberReads(), readsBefore, 'a cached key is not read from a member')
    const missing = await lookup('nothing-here')
    assert.equal(missing.found, false)
    assert.equal(missing.value, undefined)
    assert.equal(missing.size, undefined)
    assert.ok(caches.includes(missing.served_by), missing.served_by)
    const badLookup = await fetch(
      `${c.admin.url}/api/lookup/${encodeURIComponent('x'.repeat(1025))}`,
    )
    assert.equal(badLookup.status, 413)
    assert.equal(((await badLookup.json()) as { code: number }).code, 1001)
    const bad = await postJson(`${c.admin.url}/api/put`, { key: '', value: 'x' })
    assert.equal(bad.status, 400)
    assert.equal(bad.json<{ code: number }>().code, 1001)
  })

  it('keeps caches serving while the admin is down, and takes them back when it returns', async () => {
    const { node } = await c.leader()
    assert.equal(
      (await node.request('/keys/during-outage', { method: 'PUT', body: 'v' })).status,
      201,
    )
    await c.kill('admin')
    for (const cache of c.runningCaches()) {
      const r = await cache.request('/keys/during-outage')
      assert.equal(r.status, 200)
      assert.equal(r.text(), 'v')
    }
    c.restart('admin')
    await waitFor(
      'the caches to register again',
      async () => (await c.admin.caches()).length === c.runningCaches().length,
      { timeoutMs: 10_000 },
    )
  })
})
