// End to end: the byte bound of a cache node. Ten times --cache-bytes of values read through
// small caches, several passes, while /stats is sampled: the main and hot caches together
// never hold more than the bound, they evict, and every read is right. With three nodes,
// values fetched from owners land in the hot caches too, within the same bound.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import type { CacheNodeStats } from '../../src/protocol/index.ts'
import type { CacheProcess, Cluster, DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { errorCause, keyPath } from './http.ts'

const CACHE_BYTES = 1024 * 1024
const VALUE_BYTES = 64 * 1024
const KEYS = 160 // 10 MiB of values: ten times the bound
// Small values, which a cache copies into shared slabs: 1 MiB holds about 1,700 of them
// (each counts its bytes plus the per-entry overhead), so 2,400 are read through evictions.
const SMALL_KEYS = 2400

/** Sampler polls the stats of some cache nodes until stopped, keeping every sample. */
class Sampler {
  readonly samples: CacheNodeStats[] = []
  private stopped = false
  private readonly loop: Promise<void>

  constructor(private readonly caches: readonly CacheProcess[]) {
    this.loop = this.run()
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.samples.push(...(await Promise.all(this.caches.map((c) => c.stats()))))
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** stop ends the loop after one more round, so the final state is sampled too. */
  async stop(): Promise<CacheNodeStats[]> {
    this.stopped = true
    await this.loop
    this.samples.push(...(await Promise.all(this.caches.map((c) => c.stats()))))
    return this.samples
  }
}

/** readPasses reads every key through every cache, `passes` times in a fresh random order,
 * 8 at a time, and returns what went wrong (empty: every read was exactly the value). */
async function readPasses(
  caches: readonly CacheProcess[],
  values: ReadonlyMap<string, Uint8Array>,
  passes: number,
): Promise<{ reads: number; problems: string[] }> {
  const jobs: [CacheProcess, string][] = []
  for (let p = 0; p < passes; p++) {
    const round: [CacheProcess, string][] = []
    for (const key of values.keys()) for (const c of caches) round.push([c, key])
    round.sort(() => Math.random() - 0.5)
    jobs.push(...round)
  }
  const problems: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    for (let job = jobs[next++]; job; job = jobs[next++]) {
      const [c, key] = job
      try {
        const res = await c.request(`/keys/${keyPath(key)}`, { timeoutMs: 10_000 })
        if (res.status !== 200) problems.push(`${c.id} ${key}: ${res.status} ${res.text()}`)
        else if (!Buffer.from(res.body).equals(values.get(key) as Uint8Array))
          problems.push(`${c.id} ${key}: wrong value (${res.body.byteLength} bytes)`)
      } catch (e) {
        problems.push(`${c.id} ${key}: ${errorCause(e)}`)
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  return { reads: jobs.length, problems }
}

/** overBound lists the samples in which a node held more than its bound. */
function overBound(samples: readonly CacheNodeStats[]): string[] {
  return samples
    .filter((s) => s.main_bytes + s.hot_bytes > s.cache_bytes_limit)
    .map((s) => `${s.node}: main ${s.main_bytes} + hot ${s.hot_bytes} > ${s.cache_bytes_limit}`)
}

/** putAll writes values to a member, `inFlight` at a time. */
async function putAll(
  member: DbProcess,
  values: ReadonlyMap<string, Uint8Array>,
  inFlight: number,
): Promise<void> {
  const all = [...values]
  let next = 0
  const worker = async (): Promise<void> => {
    for (let job = all[next++]; job; job = all[next++]) {
      const [key, value] = job
      const res = await member.request(`/keys/${keyPath(key)}`, {
        method: 'PUT',
        body: value,
        headers: { 'content-type': 'application/octet-stream' },
      })
      assert.equal(res.status, 201, `PUT ${key}: ${res.text()}`)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
}

describe('cache byte bound', () => {
  const clusters = useClusters()
  let cluster: Cluster
  const values = new Map<string, Uint8Array>()
  const small = new Map<string, Uint8Array>()

  before(async () => {
    // One member is enough: this file is about the caches.
    cluster = await clusters.start({ name: 'cache-memory', size: 1 })
    const member = cluster.running()[0]
    assert(member)
    for (let i = 0; i < KEYS; i++) values.set(`big/${i}`, randomBytes(VALUE_BYTES))
    await putAll(member, values, 8)
    for (let i = 0; i < SMALL_KEYS; i++)
      small.set(`small/${i}`, randomBytes(1 + Math.floor(Math.random() * 300)))
    await putAll(member, small, 32)
  })

  it('keeps one node within --cache-bytes while ten times that is read through it', async (t) => {
    const cache = await cluster.addCache({
      cacheBytes: CACHE_BYTES,
      dbs: cluster.running().map((n) => n.url),
    })
    await cluster.waitRing()
    const sampler = new Sampler([cache])
    const { reads, problems } = await readPasses([cache], values, 4)
    const samples = await sampler.stop()
    const last = samples.at(-1) as CacheNodeStats
    const maxBytes = Math.max(...samples.map((s) => s.main_bytes + s.hot_bytes))
    t.diagnostic(
      `${reads} reads of ${KEYS} x ${VALUE_BYTES} B through a ${CACHE_BYTES} B cache; ` +
        `${samples.length} samples, most held ${maxBytes} B; ${last.main_items} items, ` +
        `${last.main_evictions} evictions, hits ${last.CacheHits} of ${last.Gets} gets`,
    )
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} reads failed`)
    assert(samples.length >= 20, `only ${samples.length} samples`)
    assert.deepEqual(overBound(samples).slice(0, 10), [])
    assert.equal(last.cache_bytes_limit, CACHE_BYTES)
    assert(last.main_evictions > 0, 'the main cache evicted')
    assert(maxBytes > CACHE_BYTES / 2, 'the cache was used')
    assert.equal(last.Gets, reads)

    // A value over 1/8 of the bound is served, not kept.
    const member = cluster.running()[0]
    assert(member)
    const huge = randomBytes(CACHE_BYTES / 8 + 1)
    const put = await member.request('/keys/huge', { method: 'PUT', body: huge })
    assert.equal(put.status, 201, put.text())
    for (let i = 0; i < 2; i++) {
      const res = await cache.request('/keys/huge')
      assert.equal(res.status, 200)
      assert(Buffer.from(res.body).equals(huge))
      assert.equal(res.headers.get('x-oncekv-source'), 'db', 'read from the database each time')
    }
    const after = await cache.stats()
    assert(after.main_bytes + after.hot_bytes <= CACHE_BYTES)

    // Small values, kept in shared slabs and served as views into them, read back right
    // through evictions, within the bound.
    const smallSampler = new Sampler([cache])
    const smallRun = await readPasses([cache], small, 1)
    const smallSamples = await smallSampler.stop()
    const end = smallSamples.at(-1) as CacheNodeStats
    t.diagnostic(
      `${smallRun.reads} reads of ${SMALL_KEYS} small values: ${end.main_items} items ` +
        `(${end.main_bytes} B), ${end.main_evictions} evictions in all`,
    )
    assert.deepEqual(smallRun.problems.slice(0, 10), [], `${smallRun.problems.length} failed`)
    assert.deepEqual(overBound(smallSamples).slice(0, 10), [])
    assert(end.main_items > 1000 && end.main_items < SMALL_KEYS, `${end.main_items} items held`)
    await cluster.kill(cache.id)
  })

  it('keeps three nodes within the bound, with values from owners in the hot caches', async (t) => {
    await cluster.startAdmin()
    const caches = await cluster.startCaches(3, { cacheBytes: CACHE_BYTES })
    const sampler = new Sampler(caches)
    const { reads, problems } = await readPasses(caches, values, 3)
    const samples = await sampler.stop()
    const maxBytes = Math.max(...samples.map((s) => s.main_bytes + s.hot_bytes))
    const maxHot = new Map<string, number>()
    for (const s of samples) maxHot.set(s.node, Math.max(maxHot.get(s.node) ?? 0, s.hot_items))
    const finals = await Promise.all(caches.map((c) => c.stats()))
    t.diagnostic(
      `${reads} reads through 3 nodes; ${samples.length} samples, most held ${maxBytes} B ` +
        `(bound ${CACHE_BYTES}); most hot items per node ${JSON.stringify([...maxHot.values()])}`,
    )
    for (const s of finals)
      t.diagnostic(
        `${s.node}: PeerLoads ${s.PeerLoads}, ServerRequests ${s.ServerRequests}, ` +
          `main ${s.main_items} items / ${s.main_evictions} evictions, ` +
          `hot ${s.hot_items} items / ${s.hot_evictions} evictions`,
      )
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} reads failed`)
    assert.deepEqual(overBound(samples).slice(0, 10), [])
    assert(
      [...maxHot.values()].some((n) => n > 0),
      'a node kept a value fetched from its owner in its hot cache',
    )
    // About one in ten values fetched from an owner goes into the hot cache (each one added
    // is still there or was evicted).
    const peerLoads = finals.reduce((n, s) => n + s.PeerLoads, 0)
    const hotAdded = finals.reduce((n, s) => n + s.hot_items + s.hot_evictions, 0)
    t.diagnostic(`${hotAdded} of ${peerLoads} values fetched from owners went into hot caches`)
    assert(
      hotAdded >= peerLoads * 0.02 && hotAdded <= peerLoads * 0.25,
      `${hotAdded} of ${peerLoads} peer loads kept in hot caches`,
    )
    for (const s of finals) {
      assert(s.PeerLoads > 0, `${s.node} fetched from owners`)
      assert(s.main_evictions > 0, `${s.node} evicted from its main cache`)
    }
  })
})
