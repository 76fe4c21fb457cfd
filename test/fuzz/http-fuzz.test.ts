// A seeded short fuzz run of every HTTP listener of a real system (one member, the admin, a
// cache node): no 5xx but 503, every error a JSON body with a code, every process alive, and
// no key written by a request that was not answered "created". `npm run fuzz` runs it long.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { useClusters } from '../e2e/hooks.ts'
import { runFuzz, startFuzzSystem } from './http-fuzz.ts'

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
    const { targets, member, processes } = await startFuzzSystem(cluster)
    const keysBefore = (await member.stats()).keys
    const report = await runFuzz({ targets, seed, runs: RUNS })
    t.diagnostic(
      `${report.requests} requests; by status ${JSON.stringify(report.byStatus)}; ` +
        `created ${report.created}; failures ${report.failures.length}`,
    )
    assert.deepEqual(report.failures.slice(0, 20), [], `seed ${seed}`)
    for (const p of processes) assert(p.running, `${p.id} is still running`)
    for (const t of targets) {
      if (t.kind === 'peer') continue
      const res = await fetch(`http://${t.address}/ping`)
      assert.equal(res.status, 200, `${t.name} answers after the run`)
    }
    const keysAfter = (await member.stats()).keys
    assert.equal(
      keysAfter - keysBefore,
      report.created,
      `seed ${seed}: keys written = keys answered created`,
    )
  })
})
