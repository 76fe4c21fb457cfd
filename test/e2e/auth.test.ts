// Tokens on real processes: a 3-member cluster, one cache node and the admin, started with a
// write token, an admin token and the cluster secret in their environment (and, on the cache,
// a read token). Every protected route of every process answers 401 without a token and 403
// with a wrong one, and takes the right one; reads stay open where no read token is set; the
// processes prove themselves to each other (forwarded writes, cache fills, registration,
// heartbeats, the admin's watcher and stats polls); the dashboard's session cookie opens the
// WebSockets; a member without the secret cannot join; the CLI names the token it needs; and
// no secret appears in any log.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import type { AdminInfo, AdminOverview } from '../../src/protocol/index.ts'
import { AdminProcess, freePort, waitFor, type CacheProcess, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { request, type HttpResponse } from './http.ts'
import { wsOutcome } from './ws.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(REPO_ROOT, 'bin', 'oncekv.js')

const secret = (name: string): string => `${name}-${randomBytes(16).toString('hex')}`
const WRITE = secret('write')
const ADMIN = secret('admin')
const CLUSTER = secret('cluster')
const READ = secret('read')
const WRONG = secret('wrong')
const SECRETS = [WRITE, ADMIN, CLUSTER, READ]

const ENV = {
  ONCEKV_WRITE_TOKEN: WRITE,
  ONCEKV_ADMIN_TOKEN: ADMIN,
  ONCEKV_CLUSTER_SECRET: CLUSTER,
  ONCEKV_READ_TOKEN: undefined,
}
const NO_SECRETS = {
  ONCEKV_WRITE_TOKEN: undefined,
  ONCEKV_ADMIN_TOKEN: undefined,
  ONCEKV_CLUSTER_SECRET: undefined,
  ONCEKV_READ_TOKEN: undefined,
}

/** PUBLIC and PRIVATE are the Cache-Control of values where reads are open and where they
 * need a token. */
const PUBLIC = 'public, max-age=31536000, immutable'
const PRIVATE = 'private, max-age=31536000, immutable'

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

/** send sends a request with an optional token. */
function send(
  url: string,
  opts: { method?: string; body?: string; token?: string; json?: boolean } = {},
): Promise<HttpResponse> {
  return request(url, {
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: {
      ...(opts.token ? bearer(opts.token) : {}),
      ...(opts.json ? { 'content-type': 'application/json' } : {}),
    },
  })
}

/** refuses checks that a route answers 401 (with WWW-Authenticate) without a token and 403
 * with each of the wrong ones, with JSON error bodies. */
async function refuses(
  url: string,
  opts: { method?: string; body?: string; json?: boolean },
  wrong: readonly string[],
): Promise<void> {
  const what = `${opts.method ?? 'GET'} ${url}`
  const none = await send(url, opts)
  assert.equal(none.status, 401, `${what} without a token: ${none.text()}`)
  assert.equal(none.headers.get('www-authenticate'), 'Bearer', what)
  assert.equal(none.json<{ error: string }>().error, 'unauthorized', what)
  for (const token of wrong) {
    const res = await send(url, { ...opts, token })
    assert.equal(res.status, 403, `${what} with a wrong token: ${res.text()}`)
    assert.equal(res.json<{ error: string }>().error, 'forbidden', what)
  }
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** oncekv runs the CLI to its end with env added to a clean environment. */
function oncekv(args: readonly string[], env: Record<string, string>): Promise<Run> {
  const full: Record<string, string | undefined> = { ...process.env, ...NO_SECRETS, ...env }
  delete full.NODE_OPTIONS
  delete full.NODE_TEST_CONTEXT
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: full })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('tokens and the cluster secret', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let cache: CacheProcess
  let db: string
  let follower: string
  let admin: string

  before(async () => {
    // n3 alone also guards its reads.
    cluster = await clusters.start({
      name: 'auth',
      env: ENV,
      memberEnv: (id) => (id === 'n3' ? { ONCEKV_READ_TOKEN: READ } : undefined),
    })
    await cluster.startAdmin([], ENV)
    admin = cluster.admin.url
    // The cache also guards its reads.
    cache = await cluster.addCache({ env: { ...ENV, ONCEKV_READ_TOKEN: READ } })
    await waitFor('the cache to register at the admin', async () =>
      (await cluster.admin.caches()).includes(cache.url),
    )
    const leader = await cluster.leader()
    db = leader.node.url
    follower = cluster.running().find((n) => n.id !== leader.node.id)?.url as string
  })

  it('guards the database: writes, membership, and reads where a read token is set', async () => {
    await refuses(`${db}/keys/k1`, { method: 'PUT', body: 'v1' }, [WRONG, READ])
    await refuses(
      `${db}/key`,
      { method: 'POST', body: JSON.stringify({ key: 'k1', value: 'v1' }), json: true },
      [WRONG],
    )
    for (const path of ['/join', '/remove', '/transfer-leader']) {
      await refuses(`${db}${path}`, { method: 'POST', body: '{}', json: true }, [WRONG, WRITE])
      // Past the guard: the empty body is refused for what it is (joining takes the cluster
      // secret alone: with the admin token it is a 403).
      const res = await send(`${db}${path}`, {
        method: 'POST',
        body: '{}',
        json: true,
        token: path === '/join' ? CLUSTER : ADMIN,
      })
      assert.equal(res.status, 400, `${path}: ${res.text()}`)
      if (path === '/join') {
        const admin = await send(`${db}${path}`, {
          method: 'POST',
          body: '{}',
          json: true,
          token: ADMIN,
        })
        assert.equal(admin.status, 403, admin.text())
      }
    }
    // The write token, the admin token and the cluster secret all write; a follower forwards
    // the write to the leader with its own credential.
    assert.equal(
      (await send(`${follower}/keys/k1`, { method: 'PUT', body: 'v1', token: WRITE })).status,
      201,
    )
    assert.equal(
      (await send(`${db}/keys/k1`, { method: 'PUT', body: 'v1', token: ADMIN })).status,
      200,
    )
    assert.equal(
      (await send(`${db}/keys/k1`, { method: 'PUT', body: 'v1', token: CLUSTER })).status,
      200,
    )
    // No read token: reads are open, on the hot path too, and any HTTP cache may keep a value.
    for (const url of [`${db}/keys/k1`, `${db}/keys/k1`, `${follower}/key/k1`]) {
      const res = await send(url)
      assert.equal(res.status, 200, url)
      if (url.includes('/keys/')) assert.equal(res.headers.get('cache-control'), PUBLIC, url)
    }
    const n1 = cluster.node('n1').url
    for (const path of ['/cluster', '/stats', '/metrics', '/healthz', '/readyz'])
      assert.equal((await send(`${n1}${path}`)).status, 200, path)
    // n3 has a read token: its reads, hot path included, need it (or a stronger secret).
    const n3 = cluster.node('n3').url
    await waitFor('n3 to hold k1', async () => {
      const res = await send(`${n3}/keys/k1`, { token: READ })
      return res.status === 200
    })
    await refuses(`${n3}/keys/k1`, {}, [WRONG])
    await refuses(`${n3}/cluster`, {}, [WRONG])
    for (const token of [READ, WRITE, ADMIN, CLUSTER])
      assert.equal((await send(`${n3}/keys/k1`, { token })).status, 200)
    // Its values are the client's alone to cache: a shared cache must not hand an answer to an
    // authorized request to anyone. The hot path, the route (HEAD, a query string) and a 304.
    const etag = (await send(`${n3}/keys/k1`, { token: READ })).headers.get('etag') as string
    for (const [url, method, headers] of [
      [`${n3}/keys/k1`, 'GET', {}],
      [`${n3}/keys/k1`, 'HEAD', {}],
      [`${n3}/keys/k1?x=1`, 'GET', {}],
      [`${n3}/keys/k1`, 'GET', { 'if-none-match': etag }],
      [`${n3}/keys/k1?x=1`, 'GET', { 'if-none-match': etag }],
    ] as const) {
      const res = await request(url, { method, headers: { ...bearer(READ), ...headers } })
      const what = `${method} ${url} ${JSON.stringify(headers)}`
      assert.equal(res.status, 'if-none-match' in headers ? 304 : 200, what)
      assert.equal(res.headers.get('cache-control'), PRIVATE, what)
    }
    assert.equal((await send(`${n3}/healthz`)).status, 200)
    const ws = `${n3.replace('http', 'ws')}/ws/stats`
    assert.equal((await wsOutcome(ws)).status, 401)
    assert.equal((await wsOutcome(ws, { headers: bearer(READ) })).status, undefined)
    assert.equal((await wsOutcome(`${n1.replace('http', 'ws')}/ws/stats`)).status, undefined)
  })

  it('guards the cache: reads with its read token (hot path included), /meta with the admin token', async () => {
    await send(`${db}/keys/k2`, { method: 'PUT', body: 'v2', token: WRITE })
    await refuses(`${cache.url}/keys/k2`, {}, [WRONG])
    // A fill from the database (with the cluster secret), then a hit on the fast path.
    for (let i = 0; i < 2; i++) {
      const res = await send(`${cache.url}/keys/k2`, { token: READ })
      assert.equal(res.status, 200, res.text())
      assert.equal(res.text(), 'v2')
      assert.equal(res.headers.get('cache-control'), PRIVATE, `read ${i}`)
    }
    // The hot path refuses as the route does.
    await refuses(`${cache.url}/keys/k2`, {}, [WRONG])
    for (const token of [WRITE, ADMIN, CLUSTER])
      assert.equal((await send(`${cache.url}/key/k2`, { token })).status, 200)
    await refuses(`${cache.url}/stats`, {}, [WRONG])
    await refuses(`${cache.url}/meta`, { method: 'POST', body: '{}', json: true }, [READ, WRITE])
    // A cache that reads from n3 alone fills with the cluster secret.
    await send(`${db}/keys/k6`, { method: 'PUT', body: 'v6', token: WRITE })
    const c2 = await cluster.addCache({ dbs: [cluster.node('n3').url], env: ENV })
    const filled = await waitFor('c2 to fill k6 through n3', async () => {
      const res = await send(`${c2.url}/keys/k6`).catch(() => undefined)
      return res?.status === 200 ? res : undefined
    })
    assert.equal(filled.text(), 'v6')
    assert.equal(filled.headers.get('cache-control'), PUBLIC, 'c2 has no read token')
    assert.equal((await send(`${cache.url}/healthz`)).status, 200)
    const ws = `${cache.url.replace('http', 'ws')}/ws/stats`
    assert.equal((await wsOutcome(ws)).status, 401)
    assert.equal((await wsOutcome(ws, { headers: bearer(WRONG) })).status, 403)
    assert.equal((await wsOutcome(ws, { headers: bearer(READ) })).messages.length, 1)
  })

  it('guards the admin: its API, registration and WebSockets; the session cookie opens them', async () => {
    const info = (await send(`${admin}/api/info`)).json<AdminInfo>()
    assert.equal(info.auth, true)
    assert.equal((await send(`${admin}/`)).status, 200, 'the page itself is open')
    await refuses(`${admin}/api/lookup/k1`, {}, [WRONG, WRITE])
    const lookup = await send(`${admin}/api/lookup/k1`, { token: ADMIN })
    assert.equal(lookup.status, 200, lookup.text())
    const put = { method: 'POST', body: JSON.stringify({ key: 'k3', value: 'v3' }), json: true }
    await refuses(`${admin}/api/put`, put, [WRONG, WRITE])
    const created = await send(`${admin}/api/put`, { ...put, token: ADMIN })
    assert.equal(created.json<{ outcome: string }>().outcome, 'created', created.text())
    for (const path of ['/caches/join', '/caches/leave'])
      await refuses(`${admin}${path}`, { method: 'POST', body: '{}', json: true }, [WRONG])
    const ws = `${admin.replace('http', 'ws')}/ws/overview`
    assert.equal((await wsOutcome(ws)).status, 401)
    assert.equal((await wsOutcome(ws, { headers: bearer(WRONG) })).status, 403)
    assert.equal((await wsOutcome(ws, { headers: bearer(ADMIN) })).status, undefined)
    // The page's login: a wrong token gets no cookie; the right one an HttpOnly, SameSite
    // cookie that is not the token, which the WebSocket takes.
    const login = (token: string): Promise<HttpResponse> =>
      send(`${admin}/api/login`, { method: 'POST', body: JSON.stringify({ token }), json: true })
    const bad = await login(WRONG)
    assert.equal(bad.status, 403)
    assert.equal(bad.headers.get('set-cookie'), null)
    const good = await login(ADMIN)
    assert.equal(good.status, 200, good.text())
    const cookie = good.headers.get('set-cookie') ?? ''
    assert.match(cookie, /^oncekv_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict/)
    assert.ok(!cookie.includes(ADMIN))
    const session = cookie.split(';')[0] as string
    assert.equal((await wsOutcome(ws, { headers: { cookie: session } })).status, undefined)
    assert.equal(
      (await wsOutcome(ws, { headers: { cookie: 'oncekv_session=forged' } })).status,
      403,
    )
    // The watcher and the stats polls carry the cluster secret: every node is up, the
    // cache (whose /stats needs a token) included.
    await waitFor('the overview to show every node up', async () => {
      const o = (await send(`${admin}/overview`)).json<AdminOverview>()
      const up = o.nodes.filter((n) => n.health === 'up').map((n) => n.id)
      return ['n1', 'n2', 'n3', cache.url.replace('http://', '')].every((id) => up.includes(id))
    })
  })

  it("guards the admin's own figures as a member's: /stats, /metrics, /ws/stats read class, /readyz open", async () => {
    // No read token: open, as its /overview is; its dashboard's WebSocket still is not.
    for (const path of ['/stats', '/metrics', '/readyz', '/overview'])
      assert.equal((await send(`${admin}${path}`)).status, 200, path)
    const ws = (url: string, path: string): string => `${url.replace('http', 'ws')}${path}`
    assert.equal((await wsOutcome(ws(admin, '/ws/stats'))).messages.length, 1)
    assert.equal((await wsOutcome(ws(admin, '/ws/overview'))).status, 401)
    // An admin with a read token: they need it (or a stronger secret); /readyz stays open.
    const guarded = new AdminProcess(
      'admin-read',
      `127.0.0.1:${await freePort()}`,
      join(cluster.root, 'logs', 'admin-read.log'),
      [db],
      [],
      { ...ENV, ONCEKV_READ_TOKEN: READ },
    )
    guarded.start()
    try {
      const url = guarded.url
      await waitFor('the admin with a read token to be ready', async () => {
        const res = await send(`${url}/readyz`).catch(() => undefined)
        return res?.status === 200
      })
      for (const path of ['/stats', '/metrics', '/overview']) {
        await refuses(`${url}${path}`, {}, [WRONG])
        for (const token of [READ, WRITE, ADMIN, CLUSTER])
          assert.equal((await send(`${url}${path}`, { token })).status, 200, `${path} ${token}`)
      }
      assert.equal((await wsOutcome(ws(url, '/ws/stats'))).status, 401)
      assert.equal((await wsOutcome(ws(url, '/ws/stats'), { headers: bearer(WRONG) })).status, 403)
      assert.equal(
        (await wsOutcome(ws(url, '/ws/stats'), { headers: bearer(READ) })).messages.length,
        1,
      )
      // The read token opens no dashboard WebSocket.
      assert.equal(
        (await wsOutcome(ws(url, '/ws/overview'), { headers: bearer(READ) })).status,
        403,
      )
    } finally {
      await guarded.signal('SIGTERM')
    }
  })

  it('keeps a member without the cluster secret or admin token out', async () => {
    const stranger = await cluster.addMember({ env: NO_SECRETS, waitVoter: false })
    const exit = await stranger.waitExit(20_000)
    assert.equal(exit.code, 1)
    assert.match(stranger.log(), /could not join: join refused by .*"unauthorized"/)
    const conf = await cluster.node('n1').clusterView()
    assert.ok(!conf.members.some((m) => m.id === stranger.id), 'not a member')
    // The admin token opens membership routes, but joining takes the cluster secret: a
    // member without it could not talk to the others and would stay a learner for good.
    const tokenOnly = await cluster.addMember({
      env: { ...NO_SECRETS, ONCEKV_ADMIN_TOKEN: ADMIN },
      waitVoter: false,
    })
    assert.equal((await tokenOnly.waitExit(20_000)).code, 1)
    assert.match(tokenOnly.log(), /could not join: join refused by .*"forbidden"/)
    const after = await cluster.node('n1').clusterView()
    assert.ok(!after.members.some((m) => m.id === tokenOnly.id), 'not even a learner')
  })

  it('has the CLI send the token of its command and name the one it lacks', async () => {
    const put = await oncekv(['put', 'k4', 'v4', '--db', db], { ONCEKV_WRITE_TOKEN: WRITE })
    assert.equal(put.code, 0, put.stderr)
    const refused = await oncekv(['put', 'k5', 'v5', '--db', db], { ONCEKV_READ_TOKEN: READ })
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      /^oncekv put: a token is needed \(HTTP 401\): give the write token/,
    )
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
    const get = await oncekv(['get', 'k4', '--db', db, '--cache', cache.url], {
      ONCEKV_READ_TOKEN: READ,
    })
    assert.equal(get.code, 0, get.stderr)
    assert.equal(get.stdout, 'v4')
  })

  it('writes no secret in any log', () => {
    const dir = join(cluster.root, 'logs')
    for (const file of readdirSync(dir)) {
      const text = readFileSync(join(dir, file), 'utf8')
      for (const s of SECRETS) assert.ok(!text.includes(s), `${file} holds a secret`)
    }
  })
})
