// A seeded short fuzz run of every HTTP listener of a real system (one member, the admin, a
// cache node), open and then protected by tokens and a cluster secret: no 5xx but 503, every
// error a JSON body with a code, every process alive, and no key written by a request that
// was not answered "created". `npm run fuzz` runs it long.
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'

import type { Cluster } from '../e2e/cluster.ts'
import { useClusters } from '../e2e/hooks.ts'
import { FUZZ_SECRETS, runFuzz, startFuzzSystem } from './http-fuzz.ts'

const RUNS = Number(process.env.ONCEKV_FUZZ_RUNS ?? 1000)

describe('HTTP fuzzing', () => {
  const clusters = useClusters()

  async function fuzz(
    t: TestContext,
    cluster: Cluster,
    runs: number,
    env?: Readonly<Record<string, string>>,
  ): Promise<Record<string, number>> {
    const seed = Number(process.env.ONCEKV_FUZZ_SEED ?? (Math.random() * 2 ** 31) >>> 0)
    t.diagnostic(
      `seed ${seed}; replay: ONCEKV_FUZZ_SEED=${seed} node --import tsx --test test/fuzz/http-fuzz.test.ts ` +
        `(or npm run fuzz -- --seed ${seed} --runs ${runs}${env ? ' --auth' : ''})`,
    )
    const { targets, member, processes } = await startFuzzSystem(cluster, env)
    const keysBefore = (await member.stats()).keys
    const tokens = env ? [...Object.values(env), 'fuzz-wrong-token-0123456789abcdef'] : []
    const report = await runFuzz({ targets, seed, runs, tokens })
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
    return report.byStatus
  }

  it('answers every random request of every listener sanely and writes only when it says so', async (t) => {
    const cluster = await clusters.start({ name: 'fuzz', size: 1, maxValueBytes: 65536 })
    await fuzz(t, cluster, RUNS)
  })

  it('does the same with tokens and a cluster secret on, refusing and serving by token', async (t) => {
    const cluster = await clusters.start({
      name: 'fuzz-auth',
      size: 1,
      maxValueBytes: 65536,
      env: FUZZ_SECRETS,
      extraArgs: ['--max-key-bytes', '512'],
    })
    const byStatus = await fuzz(t, cluster, Math.ceil(RUNS / 2), FUZZ_SECRETS)
    assert((byStatus['401'] ?? 0) > 0, 'some requests were refused for want of a token')
    assert((byStatus['403'] ?? 0) > 0, 'some requests were refused for a wrong token')
    assert((byStatus['200'] ?? 0) > 0, 'some requests got through with a token')
    // --max-key-bytes: a key over it is refused (413) before any write; one at it is taken.
    const write = { authorization: `Bearer ${FUZZ_SECRETS.ONCEKV_WRITE_TOKEN}` }
    const member = cluster.running()[0]
    assert(member)
    const over = await member.request(`/keys/${'k'.repeat(513)}`, {
      method: 'PUT',
      body: 'v',
      headers: write,
    })
    assert.equal(over.status, 413, over.text())
    assert.match(over.text(), /key is 513 bytes; the limit is 512/)
    const at = await member.request(`/keys/${'k'.repeat(512)}`, {
      method: 'PUT',
      body: 'v',
      headers: write,
    })
    assert.equal(at.status, 201, at.text())
  })
})
