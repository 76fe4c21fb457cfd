// A seeded short fuzz run of every HTTP listener of a real system (one member, the admin, a
// cache node): no 5xx but 503, every error a JSON body with a code, every process alive, and
// no key written by a request that was not answered "created". `npm run fuzz` runs it long.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { useClusters } from '../e2e/hooks.ts'
import { runFuzz, type Target } from './http-fuzz.ts'

const RUNS = Number(process.env.ONCEKV_FUZZ_RUNS ?? 1500)

describe('HTTP fuzzing', () => {
  const clusters = useClusters()

  it('answers every random request of every listener sanely and writes only when it says so', async (t) => {
    const seed = Number(process.env.ONCEKV_FUZZ_SEED ?? (Math.random() * 2 ** 31) >>> 0)
    t.diagnostic(
      `seed ${seed}; replay: ONCEKV_FUZZ_SEED=${seed} node --import tsx --test test/fuzz/http-fuzz.test.ts ` +
        `(or npm run fuzz -- --seed ${seed} --runs ${RUNS})`,
    )
    const cluster = await clusters.start({ name: 'fuzz', size: 1, maxValueBytes: 65536 })
    const member = cluster.running()[0]
    assert(member)
    const admin = await cluster.startAdmin()
    const [cache] = await cluster.startCaches(1)
    assert(cache)
    const put = await member.request('/keys/present', { method: 'PUT', body: 'present value' })
    assert.equal(put.status, 201)
    const host = (url: string): string => new URL(url).host
    const targets: Target[] = [
      { name: member.id, kind: 'db', address: host(member.url) },
      { name: `${cache.id} client`, kind: 'cache', address: host(cache.url) },
      { name: `${cache.id} peer`, kind: 'peer', address: host(cache.peerUrl) },
      { name: 'admin', kind: 'admin', address: host(admin.url) },
    ]
    const keysBefore = (await member.stats()).keys
    const report = await runFuzz({ targets, seed, runs: RUNS })
    t.diagnostic(
      `${report.requests} requests; by status ${JSON.stringify(report.byStatus)}; ` +
        `created ${report.created}; failures ${report.failures.length}`,
    )
    assert.deepEqual(report.failures.slice(0, 20), [], `seed ${seed}`)
    for (const p of [member, cache, admin]) assert(p.running, `${p.id} is still running`)
    for (const url of [member.url, cache.url, admin.url]) {
      const res = await fetch(`${url}/ping`)
      assert.equal(res.status, 200, `${url} answers after the run`)
    }
    const keysAfter = (await member.stats()).keys
    assert.equal(
      keysAfter - keysBefore,
      report.created,
      `seed ${seed}: keys written = keys answered created`,
    )
  })
})
