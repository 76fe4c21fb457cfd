// The chaos run of `npm test` (the long form is `npm run chaos`): about 35 s (CHAOS_SECONDS) of 16
// clients against 3 members and 3 caches while the nemesis kills, pauses, partitions, slows
// and changes membership; the checker must find no violation. Then a run with a deliberate
// bug (misses answered without ReadIndex) under network faults, where the checker must find
// the stale "not found" reads: proof that it can see what it looks for.
//
// Seeds: CHAOS_SEED fixes the first run's seed (printed either way); replay a failure with
// `CHAOS_SEED=<seed> node --import tsx --test test/chaos/chaos.test.ts` or with
// `npm run chaos -- --minutes 1 --seed <seed>`. The history is kept in chaos-results/.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { formatViolation } from './checker.ts'
import { runChaos, type ChaosResult } from './run.ts'

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 35)

function report(t: { diagnostic(s: string): void }, r: ChaosResult): void {
  t.diagnostic(`seed ${r.seed}: ${r.ops} operations; faults ${JSON.stringify(r.faults)}`)
  t.diagnostic(`outcomes ${JSON.stringify(r.outcomes)}`)
  t.diagnostic(`keys per member ${JSON.stringify(r.keysPerMember)}; history in ${r.outDir}`)
  t.diagnostic(`violations: ${r.violations.length}`)
}

describe('chaos', () => {
  it(`${SECONDS} s of kills, pauses, partitions, slow links and a membership change: no violation`, async (t) => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31))
    t.diagnostic(
      `seed ${seed} (replay: CHAOS_SEED=${seed} node --import tsx --test test/chaos/chaos.test.ts)`,
    )
    const r = await runChaos({
      seed,
      durationMs: SECONDS * 1_000,
      outDir: join('chaos-results', `test-seed-${seed}`),
    })
    report(t, r)
    assert.deepEqual(r.violations.map(formatViolation), [])
    assert(r.ops > 1_000, `only ${r.ops} operations`)
    const injected = Object.values(r.faults).reduce((a, b) => a + b, 0)
    assert(injected >= 8, `faults ${JSON.stringify(r.faults)}`)
    for (const kind of ['kill', 'pause', 'partition'])
      assert((r.faults[kind] ?? 0) > 0, `no ${kind} in ${JSON.stringify(r.faults)}`)
    const written = (r.outcomes['write created'] ?? 0) + (r.outcomes['write exists'] ?? 0)
    assert(written > 100, `only ${written} acknowledged writes`)
  })

  it('finds the stale reads of a member that skips ReadIndex on a miss', async (t) => {
    // Whether a stale not-found read happens depends on how the faults fall: a second run
    // with the next seed (rarely needed: 1 miss in the CI runs so far) keeps the test's power
    // high without making it long.
    const first = Number(process.env.CHAOS_BUG_SEED ?? Math.floor(Math.random() * 2 ** 31))
    let lost: string | undefined
    for (const seed of [first, first + 1]) {
      t.diagnostic(
        `seed ${seed} (replay: CHAOS_BUG_SEED=${seed} node --import tsx --test test/chaos/chaos.test.ts)`,
      )
      const r = await runChaos({
        seed,
        durationMs: 15_000,
        kinds: ['slow', 'partition', 'one-way', 'pause'],
        bug: 'skip-read-index',
        outDir: join('chaos-results', `test-bug-seed-${seed}`),
      })
      report(t, r)
      const found = r.violations.find((v) => v.kind === 'lost-write')
      if (found !== undefined) {
        lost = formatViolation(found)
        break
      }
    }
    assert(lost !== undefined, 'the checker found no stale not-found read in two runs')
    t.diagnostic(lost)
  })
})
