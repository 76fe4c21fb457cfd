// The admin with real processes: the cache and database lists follow joins, leaves and
// database changes (GET and WebSocket), the overview shows every node with its health (up,
// suspect, down), the leader and each member's lags, the dashboard's lookup and put report
// what happened (a value over the database's limit too), pages are served under the admin's
// own names and refused under others or from other origins (WebSockets, the API, the
// overview), the admin describes itself (/stats, /ws/stats, /metrics, /readyz, also with no
// database member answering), and the caches keep serving through an admin outage and come
// back to it.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import WebSocket from 'ws'
import type {
  AdminHistory,
  AdminInfo,
  AdminOverview,
  AdminPutResponse,
  AdminStats,
  LookupResponse,
  OverviewNode,
} from '../../src/protocol/index.ts'
import { VALUE_BYTES_MAX_DEFAULT } from '../../src/protocol/index.ts'
import { AdminProcess, freePort, waitFor, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { parsePrometheus, postJson, request } from './http.ts'
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

const BIN = fileURLToPath(new URL('../../bin/oncekv.js', import.meta.url))

/** raw sends one request to the admin with the Host header given (fetch sets its own). */
function raw(
  http: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const [host, port] = http.split(':')
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port: Number(port), path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: Record<string, unknown>
          try {
            json = JSON.parse(text) as Record<string, unknown>
          } catch {
            json = { text }
          }
          resolve({ status: res.statusCode ?? 0, json })
        })
      },
    )
    req.setTimeout(10_000, () => req.destroy(new Error(`${path}: no answer in 10 s`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

async function overviewOf(c: Cluster): Promise<AdminOverview> {
  return (await (await fetch(`${c.admin.url}/overview`)).json()) as AdminOverview
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
      assert.ok(n.lag, `${n.id} has its lags`)
      assert.equal(typeof n.lag.apply, 'number')
      if (n.leader) assert.equal(n.lag.replication, 0)
      else assert.equal(typeof n.lag.replication, 'number')
    }
    // After writes, every member catches up: no replication lag, no apply lag.
    for (let i = 0; i < 20; i++)
      assert.equal(
        (await leader.request(`/keys/lag-${i}`, { method: 'PUT', body: `v${i}` })).status,
        201,
      )
    await waitFor('every member to show no lag', async () => {
      const o = await overviewOf(c)
      const dbs = o.nodes.filter((n) => n.kind === 'db')
      return dbs.length === 3 && dbs.every((n) => n.lag?.replication === 0 && n.lag.apply === 0)
    })
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
    // A down member says since when, and keeps its last known stats apart from current ones.
    const down = (await overviewOf(c)).nodes.find((n) => n.id === follower.id) as OverviewNode
    assert.equal(down.stats, null)
    assert.equal(down.lag, null)
    assert.equal(typeof down.down_since, 'number')
    assert.ok((down.down_since as number) <= Date.now())
    assert.equal((down.last_stats as { id?: string } | null)?.id, follower.id)
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

  it('describes itself: /stats, /ws/stats, /metrics and /readyz', async () => {
    const statsOf = async (): Promise<AdminStats> => {
      const res = await request(`${c.admin.url}/stats`)
      assert.equal(res.status, 200, res.text())
      return res.json<AdminStats>()
    }
    const { node: leader } = await c.leader()
    // The overview's next poll finds every member up.
    const s = await waitFor('/stats with every member up', async () => {
      const x = await statsOf()
      return x.db_members_up === 3 ? x : undefined
    })
    assert.equal(s.node, c.admin.url)
    assert.equal(s.caches, (await c.admin.caches()).length)
    assert.equal(s.caches, c.runningCaches().length)
    // The first test's third cache was killed and dropped: it is still shown as down.
    assert.equal(s.caches_down, 1)
    assert.equal(s.cache_drops, 1)
    assert.ok(s.cache_joins >= 3, `cache_joins ${s.cache_joins}`)
    assert.ok(s.heartbeats > 0 && s.heartbeat_misses >= 3, JSON.stringify(s))
    assert.equal(s.db_members, 3)
    assert.equal(s.db_voters, (await c.admin.dbList()).length)
    assert.equal(s.db_leader, leader.id)
    assert.ok(s.db_term > 0)
    assert.equal(s.db_ready, true)
    assert.ok(s.db_view_age_ms >= 0 && s.db_view_age_ms < 5_000, `${s.db_view_age_ms} ms`)
    assert.ok(s.cluster_polls > 0 && s.cluster_poll_errors <= s.cluster_polls)
    assert.ok(s.overview_polls > 0 && s.stats_polls >= s.overview_polls)
    assert.ok(s.stats_poll_errors > 0, 'the killed member and cache were polled in vain')
    assert.ok(s.uptime_seconds >= 1)
    assert.ok(s.rss_bytes > 0 && s.heap_used_bytes > 0 && s.external_bytes > 0)
    // The dashboard's API calls are counted, and those answered with an error.
    const lookup = await request(`${c.admin.url}/api/lookup/stats-probe`)
    assert.equal(lookup.status, 200, lookup.text())
    const badPut = await postJson(`${c.admin.url}/api/put`, { key: '', value: 'x' })
    assert.equal(badPut.status, 400)
    const after = await statsOf()
    assert.equal(after.api_lookups, s.api_lookups + 1)
    assert.equal(after.api_lookup_errors, s.api_lookup_errors)
    assert.equal(after.api_puts, s.api_puts + 1)
    assert.equal(after.api_put_errors, s.api_put_errors + 1)

    // /ws/stats sends the figures when it opens, then every second; it counts itself.
    const pushed = await wsMessages<AdminStats>(`ws://${c.admin.http}/ws/stats`, 2, {
      timeoutMs: 5_000,
    })
    for (const m of pushed) {
      assert.equal(m.node, c.admin.url)
      assert.equal(m.caches, s.caches)
      assert.ok(m.ws_clients >= 1, `ws_clients ${m.ws_clients}`)
    }
    // (The first comes as the socket opens; the second only from the push every second.)
    assert.equal(pushed.length, 2)

    const metrics = await request(`${c.admin.url}/metrics`)
    assert.equal(metrics.status, 200)
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = metrics.text()
    const samples = parsePrometheus(text)
    for (const name of ['oncekv_admin_caches', 'oncekv_admin_db_members', 'oncekv_admin_ready'])
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'))
    for (const name of ['oncekv_admin_heartbeats_total', 'oncekv_admin_stats_polls_total'])
      assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'))
    assert.equal(samples.get('oncekv_admin_caches'), s.caches)
    assert.equal(samples.get('oncekv_admin_db_members'), 3)
    assert.equal(samples.get('oncekv_admin_ready'), 1)
    assert.ok(samples.get('oncekv_admin_heartbeats_total')! >= s.heartbeats)
    assert.ok(samples.get('oncekv_admin_cache_joins_total')! >= 3)
    assert.match(text, /^oncekv_admin_api_calls_total\{call="lookup"\} [1-9]\d*$/m)
    assert.match(text, /^oncekv_admin_api_errors_total\{call="put"\} [1-9]\d*$/m)
    assert.match(text, /^oncekv_process_resident_memory_bytes \d+$/m)

    const ready = await request(`${c.admin.url}/readyz`)
    assert.equal(ready.status, 200, ready.text())
    assert.deepEqual(ready.json(), {
      status: 'ready',
      leader: leader.id,
      dbs: 3,
      caches: s.caches,
    })
  })

  it('answers /readyz 503, saying why, while no database member answers', async () => {
    const closed = await freePort()
    // With a read token: /readyz stays open, and names the members tried only to a reader.
    const READ = 'read-token-of-the-lonely-admin'
    const reader = { authorization: `Bearer ${READ}` }
    const lonely = new AdminProcess(
      'admin-nodb',
      `127.0.0.1:${await freePort()}`,
      join(c.root, 'logs', 'admin-nodb.log'),
      [`http://127.0.0.1:${closed}`],
      [],
      { ONCEKV_READ_TOKEN: READ },
    )
    lonely.start()
    try {
      await waitFor('the admin without a database to answer', async () => {
        const res = await request(`${lonely.url}/healthz`).catch(() => undefined)
        return res?.status === 200
      })
      // Once its first round of GET /cluster has failed, it says whom it tried and why.
      const res = await waitFor('a /readyz naming the member tried', async () => {
        const r = await request(`${lonely.url}/readyz`, { headers: reader })
        return r.text().includes('tried') ? r : undefined
      })
      const anonymous = await request(`${lonely.url}/readyz`)
      assert.equal(anonymous.status, 503)
      assert.equal(
        anonymous.json<{ message: string }>().message,
        'no database member has answered yet (which members were tried shows with the read token)',
      )
      assert.equal(res.status, 503)
      assert.equal(res.headers.get('x-oncekv-code'), '1005')
      const body = res.json<{ code: number; error: string; message: string }>()
      assert.equal(body.code, 1005)
      assert.equal(body.error, 'unavailable')
      assert.match(
        body.message,
        new RegExp(
          `^no database member has answered yet: tried http://127\\.0\\.0\\.1:${closed} \\(.*ECONNREFUSED`,
        ),
      )
      assert.equal((await request(`${lonely.url}/stats`)).status, 401)
      const s = (await request(`${lonely.url}/stats`, { headers: reader })).json<AdminStats>()
      assert.equal(s.db_ready, false)
      assert.equal(s.db_view_age_ms, -1)
      assert.equal(s.db_members, 0)
      assert.equal(s.db_leader, null)
      assert.ok(s.cluster_poll_errors >= 1 && s.cluster_poll_errors === s.cluster_polls)
      const samples = parsePrometheus(
        (await request(`${lonely.url}/metrics`, { headers: reader })).text(),
      )
      assert.equal(samples.get('oncekv_admin_ready'), 0)
    } finally {
      await lonely.signal('SIGTERM')
    }
  })

  it('refuses WebSocket pages of other origins, accepts its own and --allow-origin', async () => {
    const url = `ws://${c.admin.http}/ws/overview`
    assert.equal(await upgradeStatus(url, { origin: 'http://evil.example' }), 403)
    assert.equal(await upgradeStatus(url, { origin: `http://${c.admin.http}` }), 101)
    assert.equal(await upgradeStatus(url, { origin: 'http://dashboard.example:8080' }), 101)
    assert.equal(await upgradeStatus(`ws://${c.admin.http}/ws/caches`, { origin: 'null' }), 403)
    assert.equal(await upgradeStatus(`ws://${c.admin.http}/ws/nothing`, {}), 404)
  })

  it("serves pages opened by the admin's own names, refuses other names and origins, and says why", async () => {
    const port = c.admin.http.split(':')[1] as string
    const url = `ws://${c.admin.http}/ws/overview`
    const page = (host: string): Record<string, string> => ({
      host: `${host}:${port}`,
      origin: `http://${host}:${port}`,
    })
    // A page opened as http://localhost:…, http://127.0.0.1:… or by this machine's name is
    // the admin's own page.
    for (const name of ['localhost', '127.0.0.1', hostname().toLowerCase()]) {
      assert.equal(await upgradeStatus(url, page(name)), 101, name)
      const info = await raw(c.admin.http, '/api/info', { headers: { host: `${name}:${port}` } })
      assert.equal(info.status, 200, `${name}: ${JSON.stringify(info.json)}`)
    }
    // A name that only resolves here through someone's DNS (rebinding) is refused, as is a page
    // of another origin, and a page of one of the admin's names talking to another of them.
    assert.equal(await upgradeStatus(url, page('evil.example')), 403)
    assert.equal(
      await upgradeStatus(url, { host: `127.0.0.1:${port}`, origin: 'http://evil.example' }),
      403,
    )
    assert.equal(
      await upgradeStatus(url, { host: `localhost:${port}`, origin: `http://127.0.0.1:${port}` }),
      403,
    )
    // The API says why, with the flag that would allow it; the page shows that.
    const byName = await raw(c.admin.http, '/api/info', {
      headers: { host: `evil.example:${port}` },
    })
    assert.equal(byName.status, 403)
    assert.equal(byName.json.code, 1001)
    assert.match(String(byName.json.message), /host name evil\.example/)
    assert.ok(
      String(byName.json.message).includes(`--allow-origin http://evil.example:${port}`),
      String(byName.json.message),
    )
    const byOrigin = await raw(c.admin.http, '/api/info', {
      headers: { host: c.admin.http, origin: 'http://evil.example' },
    })
    assert.equal(byOrigin.status, 403)
    assert.ok(
      String(byOrigin.json.message).includes('--allow-origin http://evil.example'),
      String(byOrigin.json.message),
    )
  })

  it('refuses the API and the overview to pages of other origins; a refused put writes nothing', async () => {
    const own = { host: c.admin.http, origin: `http://${c.admin.http}` }
    const foreign = { host: c.admin.http, origin: 'http://evil.example' }
    const body = JSON.stringify({ key: 'origin/refused', value: 'x' })
    const put = (headers: Record<string, string>) =>
      raw(c.admin.http, '/api/put', {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      })
    const refused = await put(foreign)
    assert.equal(refused.status, 403)
    assert.equal(refused.json.error, 'forbidden')
    const { node } = await c.leader()
    assert.equal((await node.request('/keys/origin/refused')).status, 404, 'nothing written')
    assert.equal(
      (await put({ host: `evil.example:1`, origin: 'http://evil.example:1' })).status,
      403,
    )
    assert.equal((await put(own)).status, 200)
    assert.equal((await put({ host: c.admin.http })).status, 200, 'a client without Origin')
    const lookup = (headers: Record<string, string>) =>
      raw(c.admin.http, '/api/lookup/origin%2Frefused', { headers })
    assert.equal((await lookup(foreign)).status, 403)
    assert.equal((await lookup(own)).status, 200)
    for (const path of ['/overview', '/history', '/caches', '/dbs', '/stats']) {
      assert.equal((await raw(c.admin.http, path, { headers: foreign })).status, 403, path)
      assert.equal((await raw(c.admin.http, path, { headers: own })).status, 200, path)
      assert.equal(
        (await raw(c.admin.http, path, { headers: { host: c.admin.http } })).status,
        200,
        `${path} without Origin`,
      )
    }
  })

  it("takes values up to the database's limit in the put form, and says so past it", async () => {
    const info = (await (await fetch(`${c.admin.url}/api/info`)).json()) as AdminInfo
    assert.deepEqual(info, {
      max_value_bytes: VALUE_BYTES_MAX_DEFAULT,
      dbs: c.admin.dbs,
      started_by: null,
      auth: false,
    })
    const put = (key: string, value: string) =>
      postJson(`${c.admin.url}/api/put`, { key, value }, 20_000)
    // A value of exactly the limit goes through (the old 64 KiB body limit refused it).
    const full = await put('limit/full', 'v'.repeat(VALUE_BYTES_MAX_DEFAULT))
    assert.equal(full.status, 200, full.text().slice(0, 300))
    assert.equal(full.json<AdminPutResponse>().outcome, 'created')
    // A JSON-escaped value takes more body than bytes: it goes through too.
    const escaped = await put('limit/escaped', '\u0001'.repeat(64 * 1024))
    assert.equal(escaped.status, 200, escaped.text().slice(0, 300))
    // One byte more is refused with the limit named, and nothing is written.
    const over = await put('limit/over', 'v'.repeat(VALUE_BYTES_MAX_DEFAULT + 1))
    assert.equal(over.status, 413)
    const err = over.json<{ code: number; error: string; message: string }>()
    assert.equal(err.code, 1001)
    assert.match(err.message, /1048577 bytes/)
    assert.match(err.message, /limit of 1 MiB \(1048576 bytes\)/)
    const { node } = await c.leader()
    assert.equal((await node.request('/keys/limit/over')).status, 404)
    // A body far over what any value within the limit needs is refused before it is read.
    const huge = await raw(c.admin.http, '/api/put', {
      method: 'POST',
      headers: { 'content-type': 'application/json', host: c.admin.http },
      body: JSON.stringify({ key: 'limit/huge', value: 'v'.repeat(7 * 1024 * 1024) }),
    })
    assert.equal(huge.status, 413)
    assert.match(String(huge.json.message), /limit of 1 MiB/)
  })

  it('shows a paused member as suspect before down, and up again when it resumes', async () => {
    const { node: leader } = await c.leader()
    const follower = c.running().find((n) => n.id !== leader.id) as DbProcess
    const seen: string[] = []
    follower.pause()
    try {
      await waitFor(
        `${follower.id} to show as down`,
        async () => {
          const h = (await overviewOf(c)).nodes.find((n) => n.id === follower.id)?.health
          if (h && seen.at(-1) !== h) seen.push(h)
          return h === 'down'
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      )
    } finally {
      follower.resume()
    }
    assert.deepEqual(seen.slice(-2), ['suspect', 'down'], `health seen: ${seen.join(' → ')}`)
    await waitFor(
      `${follower.id} to show as up again`,
      async () => (await overviewOf(c)).nodes.find((n) => n.id === follower.id)?.health === 'up',
      { timeoutMs: 10_000 },
    )
  })

  it("refuses --allow-origin '*' at start, with exit code 2 and a clear message", async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'admin', '--http', '127.0.0.1:0', '--allow-origin', '*'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)))
    assert.equal(code, 2, stderr)
    assert.match(stderr, /--allow-origin/)
    assert.match(stderr, /no wildcard/)
  })

  it("works through the dashboard's Vite dev server: its proxy presents pages as the admin's own", async (t) => {
    const { createServer } = await import('vite')
    const before = process.env.ONCEKV_ADMIN
    process.env.ONCEKV_ADMIN = c.admin.url
    const vite = await createServer({
      configFile: join(fileURLToPath(new URL('../../web/', import.meta.url)), 'vite.config.ts'),
      server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
      logLevel: 'silent',
    })
    try {
      await vite.listen()
      const address = vite.httpServer?.address()
      assert.ok(address && typeof address === 'object')
      const dev = `localhost:${address.port}`
      t.diagnostic(`vite dev server on ${dev}`)
      const page = { host: dev, origin: `http://${dev}` }
      const put = await raw(`127.0.0.1:${address.port}`, '/api/put', {
        method: 'POST',
        headers: { ...page, 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'vite/dev', value: 'through the proxy' }),
      })
      assert.equal(put.status, 200, JSON.stringify(put.json))
      assert.equal(put.json.outcome, 'created')
      assert.equal(
        await upgradeStatus(`ws://127.0.0.1:${address.port}/ws/overview`, page),
        101,
        'the live link through the proxy',
      )
    } finally {
      await vite.close()
      if (before === undefined) delete process.env.ONCEKV_ADMIN
      else process.env.ONCEKV_ADMIN = before
    }
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
    // A value that is not UTF-8 text: a lone surrogate, or invalid bytes in the body.
    const surrogate = await postJson(`${c.admin.url}/api/put`, { key: 'u1', value: '\ud800' })
    assert.equal(surrogate.status, 400)
    const bytes = await request(`${c.admin.url}/api/put`, {
      method: 'POST',
      body: Buffer.concat([
        Buffer.from('{"key":"u2","value":"'),
        Buffer.from([0xff]),
        Buffer.from('"}'),
      ]),
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(bytes.status, 400)
    assert.equal(bytes.json<{ code: number }>().code, 1001)
    for (const key of ['u1', 'u2']) {
      const lookup = await fetch(`${c.admin.url}/api/lookup/${key}`)
      assert.equal(((await lookup.json()) as { found: boolean }).found, false, key)
    }
  })

  it('keeps reads and writes going while the admin is down, and takes the caches back within seconds', async (t) => {
    const { node } = await c.leader()
    assert.equal(
      (await node.request('/keys/during-outage', { method: 'PUT', body: 'v' })).status,
      201,
    )
    await c.kill('admin')
    // Writes go on (the members do not need the admin), and every cache serves them, a key
    // written before the outage and ones written during it.
    for (let i = 0; i < 5; i++)
      assert.equal(
        (await node.request(`/keys/outage-${i}`, { method: 'PUT', body: `w${i}` })).status,
        201,
      )
    for (const cache of c.runningCaches()) {
      const r = await cache.request('/keys/during-outage')
      assert.equal(r.status, 200)
      assert.equal(r.text(), 'v')
      for (let i = 0; i < 5; i++) {
        const w = await cache.request(`/keys/outage-${i}`)
        assert.equal(w.status, 200)
        assert.equal(w.text(), `w${i}`)
      }
    }
    const back = Date.now()
    c.restart('admin')
    await waitFor(
      'the caches to register again',
      async () => (await c.admin.caches()).length === c.runningCaches().length,
      { timeoutMs: 10_000, intervalMs: 100 },
    )
    const ms = Date.now() - back
    t.diagnostic(`the caches were back on the restarted admin ${ms} ms after its restart`)
    // A cache re-joins after 3 s without a heartbeat, then every second; the admin takes
    // about a second to start.
    assert.ok(ms < 7_000, `the caches took ${ms} ms to come back`)
    await c.waitRing()
  })
})
