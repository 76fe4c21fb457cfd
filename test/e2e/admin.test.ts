// The admin with real processes: the cache and database lists follow joins, leaves and
// database changes (GET and WebSocket), the overview shows every node with its health and
// the leader, the dashboard's lookup and put report what happened, and WebSockets refuse
// pages of other origins.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type {
  AdminHistory,
  AdminOverview,
  AdminPutResponse,
  LookupResponse,
} from '../../src/protocol/index.ts'
import { waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { postJson } from './http.ts'
import { wsCollect, wsMessages, wsOutcome } from './ws.ts'

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

  it('pushes the database list on /ws/dbs when a member joins and when one is removed', async () => {
    const sorted = (urls: string[]): string => [...urls].sort().join(',')
    const ws = await wsCollect<string[]>(`ws://${c.admin.http}/ws/dbs`)
    try {
      const before = sorted(c.running().map((n) => n.url))
      await waitFor('the list on connect', () => ws.messages.length > 0)
      assert.equal(sorted(ws.messages[0]!), before)

      const n4 = await c.addMember()
      const withN4 = sorted([...c.running().map((n) => n.url)])
      await waitFor(
        'a push with the new member',
        () => ws.messages.some((m) => sorted(m) === withN4),
        { timeoutMs: 15_000 },
      )
      assert.equal(sorted(await c.admin.dbList()), withN4)

      const { node: leader } = await c.leader()
      const removed = await postJson(`${leader.url}/remove`, { id: n4.id })
      assert.equal(removed.status, 200, removed.text())
      await waitFor(
        'a push without the removed member',
        () => sorted(ws.messages.at(-1) ?? []) === before,
        { timeoutMs: 15_000 },
      )
      assert.equal(sorted(await c.admin.dbList()), before)
      await c.kill(n4.id)
    } finally {
      ws.close()
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
    const look = (await (
      await fetch(`${c.admin.url}/api/lookup/${encodeURIComponent('dash/a')}`)
    ).json()) as LookupResponse
    assert.equal(look.found, true)
    assert.equal(look.value, 'one')
    assert.equal(look.size, 3)
    assert.ok(
      c.caches().some((x) => x.url === look.served_by),
      look.served_by,
    )
    assert.ok(['main', 'hot', 'peer', 'db'].includes(look.source ?? ''))
    const missing = (await (
      await fetch(`${c.admin.url}/api/lookup/nothing-here`)
    ).json()) as LookupResponse
    assert.equal(missing.found, false)
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
