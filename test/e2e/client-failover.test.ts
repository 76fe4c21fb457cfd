// End to end: the client keeps working while nodes die. A load of gets and puts runs through
// one client (lists from the admin) over three cache nodes and three members while the test
// kills the cache the client finds fastest, then a follower (restarted afterwards), then the
// leader. Every call must succeed within its deadline: the count of failed calls must be 0.
// A put of a new key may report created: false when a killed member applied its first
// attempt before dying: the retry found the call's own value. That is a success (counted and
// reported), and every acknowledged key must read back at the end.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { OnceKV } from '../../src/client/index.ts'
import { waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'

const WORKERS = 8
const SEEDED = 200
/** PROGRESS is how many calls must succeed after each kill before the next step. */
const PROGRESS = 300

/** Load runs gets and puts through a client until stopped, and counts the outcomes. */
class Load {
  ok = 0
  /** foundOwnWrite counts puts of new keys that reported created: false. */
  foundOwnWrite = 0
  failures: string[] = []
  maxMs = 0
  private stopped = false
  private readonly done: Promise<void>
  private written: string[] = []

  constructor(
    private readonly client: OnceKV,
    private readonly seeded: readonly string[],
  ) {
    this.done = Promise.all(Array.from({ length: WORKERS }, (_, w) => this.worker(w))).then(
      () => undefined,
    )
  }

  private async worker(w: number): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const t = performance.now()
      try {
        if (i % 2 === 0) {
          const key = this.seeded[(w * 7919 + i) % this.seeded.length] as string
          const v = await this.client.getString(key)
          if (v !== `seed ${key}`) throw new Error(`${key} read ${String(v)}`)
        } else if (i % 4 === 1) {
          const key = `load/${w}/${i}`
          const r = await this.client.put(key, `v ${key}`)
          // Nothing else writes this key: created: false means an earlier attempt of this
          // call was applied (by a member killed before it answered) and the retry found it.
          if (!r.created) this.foundOwnWrite++
          this.written.push(key)
        } else {
          const key = this.written[this.written.length - 1 - (w % 3)]
          if (key !== undefined) {
            const v = await this.client.getString(key)
            if (v !== `v ${key}`) throw new Error(`${key} read ${String(v)}`)
          }
        }
        this.ok++
      } catch (e) {
        this.failures.push(`${((performance.now() - t) / 1000).toFixed(2)} s: ${String(e)}`)
      }
      this.maxMs = Math.max(this.maxMs, performance.now() - t)
    }
  }

  /** progress waits until `calls` more calls have succeeded. */
  async progress(what: string, calls = PROGRESS): Promise<void> {
    const target = this.ok + calls
    await waitFor(`${calls} successful calls ${what}`, () => this.ok >= target, {
      timeoutMs: 30_000,
    })
  }

  async stop(): Promise<string[]> {
    this.stopped = true
    await this.done
    return this.written
  }
}

describe('client failover', () => {
  const clusters = useClusters()
  let cluster: Cluster

  before(async () => {
    cluster = await clusters.start({ name: 'client-failover', size: 3 })
    await cluster.startAdmin()
    await cluster.startCaches(3)
  })

  it('loses no call while a cache, a follower and the leader are killed', async (t) => {
    const client = new OnceKV({ admin: cluster.admin.url })
    const seeded = Array.from({ length: SEEDED }, (_, i) => `seed/${i}`)
    await client.putMany(seeded.map((k) => [k, `seed ${k}`]))
    const load = new Load(client, seeded)
    const report: string[] = []
    const step = async (what: string, kill: () => Promise<void>): Promise<void> => {
      const before = { ok: load.ok, failures: load.failures.length }
      load.maxMs = 0
      const started = performance.now()
      await kill()
      await load.progress(`after ${what}`)
      report.push(
        `${what}: ${load.ok - before.ok} calls in ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
          `${load.failures.length - before.failures} failed, slowest ${Math.round(load.maxMs)} ms`,
      )
    }
    try {
      await load.progress('before any kill', 100)

      await step('killing the fastest cache', async () => {
        const fastest = client
          .nodes()
          .caches.filter((c) => !c.down && c.ewmaMs !== undefined)
          .sort((a, b) => (a.ewmaMs as number) - (b.ewmaMs as number))[0]
        assert.ok(fastest, JSON.stringify(client.nodes()))
        const cache = cluster.caches().find((c) => c.url === fastest.url)
        assert.ok(cache, `no cache process at ${fastest.url}`)
        await cluster.kill(cache.id)
      })

      const { node: leader } = await cluster.leader()
      const follower = cluster.running().find((n) => n.id !== leader.id)
      assert.ok(follower)
      await step(`killing follower ${follower.id}`, async () => {
        await cluster.kill(follower.id)
      })
      await step(`restarting ${follower.id}`, async () => {
        cluster.restart(follower.id)
        await cluster.waitReady(follower.id)
        await cluster.waitCaughtUp([follower.id])
      })

      const { node: oldLeader, stats } = await cluster.leader()
      await step(`killing leader ${oldLeader.id}`, async () => {
        await cluster.kill(oldLeader.id)
        await cluster.leader({ exclude: [oldLeader.id], minTerm: stats.term + 1 })
      })
    } finally {
      const written = await load.stop()
      for (const line of report) t.diagnostic(line)
      t.diagnostic(
        `total: ${load.ok} calls, ${load.failures.length} failed; ${load.foundOwnWrite} puts ` +
          'of new keys were retried after their first attempt applied (created: false)',
      )
      for (const f of load.failures.slice(0, 10)) t.diagnostic(`failure: ${f}`)
      // Every acknowledged put reads back.
      const values = await client.getMany(written)
      for (const [i, key] of written.entries())
        assert.equal(values[i] && new TextDecoder().decode(values[i]), `v ${key}`)
    }
    assert.deepEqual(load.failures, [])
  })
})
