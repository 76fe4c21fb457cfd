// End to end: a cache node that hangs (SIGSTOP: its sockets accept, nothing answers) rather
// than dies. Reads of the keys it owns, sent to another node, cost at most the peer timeout
// before that node reads the database itself; the admin drops the hung node after its missed
// heartbeats while the others keep hearing from it every second; once resumed (SIGCONT) the
// node joins again and serves the keys it owns. And a cache node told to stop while a read
// waits on a hung database member finishes that read and exits, rather than wait out the
// keep-alive timeout of the connection the read came on.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { Pool } from 'undici'
import { HashRing } from '../../src/cache/ring.ts'
import { waitFor, type CacheProcess, type Cluster, type ExitInfo } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath, type HttpResponse } from './http.ts'

/** PEER_TIMEOUT_MS is the caches' --peer-timeout-ms here. */
const PEER_TIMEOUT_MS = 300

/** READ_SLACK_MS is what a read may take beyond the peer timeout: one database read on a
 * busy two-core machine, with room to spare. */
const READ_SLACK_MS = 1_000

/** DROP_BOUND_MS bounds the time from SIGSTOP to the admin's list without the node, with the
 * admin's defaults (a heartbeat a second, dropped after three missed). */
const DROP_BOUND_MS = 5_000

/** paused runs fn while the process pid is stopped, and always resumes it. */
async function paused<T>(pid: number, fn: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGSTOP')
  try {
    return await fn()
  } finally {
    process.kill(pid, 'SIGCONT')
  }
}

/** quantile is the q-quantile of xs (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN
}

describe('hung processes around cache nodes', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let caches: [CacheProcess, CacheProcess, CacheProcess]
  const values = new Map<string, string>()

  before(async () => {
    // One member is enough: this file is about the caches and the admin.
    cluster = await clusters.start({ name: 'cache-hung', size: 1 })
    await cluster.startAdmin()
    const started = await cluster.startCaches(3, {
      extraArgs: ['--peer-timeout-ms', String(PEER_TIMEOUT_MS)],
    })
    caches = started as [CacheProcess, CacheProcess, CacheProcess]
    const member = cluster.running()[0]
    assert(member)
    for (let i = 0; i < 600; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const key = `hung/${i + j}`
          const value = `value ${i + j} ${randomBytes(6).toString('hex')}`
          const res = await member.request(`/keys/${keyPath(key)}`, { method: 'PUT', body: value })
          assert.equal(res.status, 201, res.text())
          values.set(key, value)
        }),
      )
    }
  })

  /** ownedBy lists the written keys that node owns on the full ring, none read yet. */
  function ownedBy(node: CacheProcess): string[] {
    const ring = new HashRing(caches.map((c) => c.peerUrl))
    return [...values.keys()].filter((k) => ring.owner(k) === node.peerUrl)
  }

  /** read reads key through c and checks the value; it returns the answer and its time. */
  async function read(c: CacheProcess, key: string): Promise<{ res: HttpResponse; ms: number }> {
    const started = Date.now()
    const res = await c.request(`/keys/${keyPath(key)}`, { timeoutMs: 10_000 })
    const ms = Date.now() - started
    assert.equal(res.status, 200, `${c.id} ${key}: ${res.status} ${res.text().slice(0, 200)}`)
    assert.equal(res.text(), values.get(key), `${c.id} ${key}`)
    return { res, ms }
  }

  it('answers reads of its keys through the others within the peer timeout and a database read', async (t) => {
    const [c1, c2, victim] = caches
    const owned = ownedBy(victim)
    assert(owned.length >= 100, `${victim.id} owns ${owned.length} of ${values.size} keys`)
    const [one, many, after] = [owned.slice(0, 20), owned.slice(20, 40), owned.slice(40)]
    const before = await c1.stats()
    const sequential: number[] = []
    const concurrent: number[] = []
    await paused(victim.pid as number, async () => {
      // One at a time through c1: the first waits the peer timeout, the next ones find the
      // owner paused and go to the database at once, until the pause ends.
      for (const key of one) {
        const { res, ms } = await read(c1, key)
        sequential.push(ms)
        assert.equal(res.headers.get('x-oncekv-source'), 'db', key)
      }
      // All at once through c2.
      const all = await Promise.all(many.map((key) => read(c2, key)))
      concurrent.push(...all.map((r) => r.ms))
    })
    const peerErrors = (await c1.stats()).PeerErrors - before.PeerErrors
    const bound = PEER_TIMEOUT_MS + READ_SLACK_MS
    t.diagnostic(
      `${victim.id} stopped: ${one.length} reads one at a time through ${c1.id} took ` +
        `${sequential.join(' ')} ms (PeerErrors +${peerErrors}); ${many.length} at once through ` +
        `${c2.id}: p50 ${quantile(concurrent, 0.5)}, max ${Math.max(...concurrent)} ms`,
    )
    for (const ms of [...sequential, ...concurrent])
      assert(ms < bound, `a read took ${ms} ms, over ${bound} ms`)
    assert(peerErrors > 0, `${c1.id} counted no PeerErrors`)

    // Resumed, it is back on every ring and serves the keys it owns to the others.
    await cluster.waitRing({ timeoutMs: 15_000 })
    let next = 0
    const served = await waitFor(
      `${c1.id} to fetch a key from ${victim.id} again`,
      async () => {
        const key = after[next++]
        assert(key, 'ran out of keys')
        const { res } = await read(c1, key)
        return res.headers.get('x-oncekv-source') === 'peer' ? key : undefined
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    )
    const direct = await read(victim, served)
    assert.equal(direct.res.headers.get('x-oncekv-source'), 'main', 'the owner kept it')
  })

  it('is dropped by the admin after its missed heartbeats, while the others hear it every second', async (t) => {
    const victim = caches[1]
    const others = caches.filter((c) => c !== victim)
    let droppedMs = 0
    let quietMs = 0
    await paused(victim.pid as number, async () => {
      const stoppedAt = Date.now()
      await waitFor(
        `the admin to drop ${victim.id}`,
        async () => {
          // Meanwhile the others' heartbeats keep coming: one hung node delays nobody.
          for (const c of others) quietMs = Math.max(quietMs, (await c.stats()).last_meta_ms)
          return !(await cluster.admin.caches()).includes(victim.url)
        },
        { timeoutMs: 15_000, intervalMs: 50 },
      )
      droppedMs = Date.now() - stoppedAt
    })
    t.diagnostic(
      `${victim.id} stopped: dropped from GET /caches after ${droppedMs} ms; ` +
        `the others' last heartbeat was at most ${quietMs} ms old meanwhile`,
    )
    assert(droppedMs < DROP_BOUND_MS, `dropped after ${droppedMs} ms`)
    assert(quietMs < 2_000, `another node went ${quietMs} ms without a heartbeat`)
    await waitFor('the resumed node to join again', async () =>
      (await cluster.admin.caches()).includes(victim.url),
    )
    await cluster.waitRing({ timeoutMs: 10_000 })
  })

  it('stops soon on SIGTERM while a read on a keep-alive connection waits on a hung database', async (t) => {
    const c1 = caches[0]
    const member = cluster.running()[0]
    assert(member)
    const key = ownedBy(c1)[0]
    assert(key)
    // One keep-alive connection, as peers and clients hold them.
    const pool = new Pool(c1.url, { connections: 1 })
    let stopMs = 0
    let exit: ExitInfo | undefined
    let answer: { status: number; body: string } | undefined
    try {
      await paused(member.pid as number, async () => {
        const pending = pool
          .request({ path: `/keys/${keyPath(key)}`, method: 'GET' })
          .then(async (res) => ({ status: res.statusCode, body: await res.body.text() }))
        await waitFor('the read to wait on the database', async () => {
          const s = await c1.stats()
          return s.loads_in_flight > 0
        })
        const started = Date.now()
        exit = await c1.signal('SIGTERM', 30_000)
        stopMs = Date.now() - started
        answer = await pending
      })
    } finally {
      await pool.close()
    }
    t.diagnostic(
      `${c1.id} stopped ${stopMs} ms after SIGTERM (${JSON.stringify(exit)}); ` +
        `the read waiting on the stopped member answered ${answer?.status} ${answer?.body.slice(0, 120)}`,
    )
    assert.deepEqual(exit, { code: 0, signal: null })
    // The read ends at the database timeout (3 s) and the node then; not after the
    // keep-alive timeout (72 s) of the connection it came on.
    assert(stopMs < 10_000, `stopping took ${stopMs} ms`)
    assert.equal(answer?.status, 503)
  })
})
