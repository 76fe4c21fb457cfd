// The simulator as a test: (a) hundreds of seeded whole-cluster runs with faults, each checked
// on every step and then for liveness; (b) the Raft core built with a deliberate bug, to show the
// checkers catch it within a bounded number of seeds. SIM_SEED=<n> replays a sweep; a failing
// run prints its own one-line replay command.
import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { test } from 'node:test'
import { Checkers, Invariant } from './checkers.ts'
import { runPool } from './sim-pool.ts'
import { CheckFailed, SimFailure } from './sim-trace.ts'
import { Simulation, type BugName, type SimulationOptions } from './simulation.ts'

const SEEDS = 500

function seedBase(): number {
  const env = process.env.SIM_SEED
  if (env !== undefined && env !== '') {
    assert.match(env, /^\d+$/, 'SIM_SEED must be a non-negative integer')
    return Number(env)
  }
  return randomInt(1, 2 ** 31)
}

test(`${SEEDS} seeded runs keep every invariant and stay live after healing`, async (t) => {
  const base = seedBase()
  const line = `seeds ${base}..${base + SEEDS - 1} (rerun this sweep: SIM_SEED=${base} node --import tsx --test test/sim/sim.test.ts; one seed: npm run sim -- --seed <seed> --nodes 3|5)`
  console.log(`sim: ${line}`)
  const runs: SimulationOptions[] = Array.from({ length: SEEDS }, (_, i) => ({
    seed: base + i,
    nodes: i % 2 === 0 ? 3 : 5,
  }))
  const { passed, failures } = await runPool(runs)
  const acked = passed.reduce((n, s) => n + s.acked, 0)
  t.diagnostic(`${passed.length} runs passed; ${acked} puts acknowledged and checked`)
  if (failures.length > 0) {
    const first = failures[0]
    assert.ok(first)
    const others = failures
      .slice(1)
      .map((f) => `${f.seed}${f.kind === 'fail' ? ` (${f.invariant})` : ''}`)
    assert.fail(
      `${failures.length} run(s) failed (each worker stops at its first failure)` +
        `${others.length > 0 ? `; also failing: ${others.join(', ')}` : ''}\n${first.message}`,
    )
  }
  assert.equal(passed.length, SEEDS)
})

/** findBug runs seeds 1..maxSeeds with the bug and returns the first failure. */
function findBug(
  bug: BugName,
  maxSeeds: number,
  extra: Partial<SimulationOptions> = {},
): SimFailure | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const sim = new Simulation({ seed, bug, profile: 'aggressive', ...extra })
    try {
      // A safety bug needs no liveness phase: the fault phase is where it shows.
      sim.run()
    } catch (err) {
      if (err instanceof SimFailure) return err
      throw err
    }
  }
  return undefined
}

test('with the voteTwice bug, the simulator reports an Election Safety violation', () => {
  const failure = findBug('voteTwice', 50)
  assert.ok(failure, 'no seed in 1..50 caught voteTwice')
  assert.equal(failure.invariant, Invariant.electionSafety, failure.message)
  assert.match(
    failure.message,
    /replay: npm run sim -- --seed \d+ --bug voteTwice --profile aggressive/,
  )
})

test('with the voteTwice bug and no per-voter check, two leaders of one term are caught', () => {
  const failure = findBug('voteTwice', 50, { checks: { voteOnce: false } })
  assert.ok(failure, 'no seed in 1..50 showed two leaders in a term')
  assert.equal(failure.invariant, Invariant.electionSafety, failure.message)
  assert.match(failure.details, /two leaders in term \d+/)
})

test('with the commitOldTermByCounting bug, the simulator reports lost committed entries', () => {
  const failure = findBug('commitOldTermByCounting', 300)
  assert.ok(failure, 'no seed in 1..300 caught commitOldTermByCounting')
  const expected: string[] = [
    Invariant.leaderCompleteness,
    Invariant.stateMachineSafety,
    Invariant.committedNeverChange,
    Invariant.ackedReadable,
  ]
  assert.ok(expected.includes(failure.invariant), failure.message)
})

test('with the commitOldTermByCounting bug and no Leader Completeness check, State Machine Safety catches it', () => {
  const failure = findBug('commitOldTermByCounting', 300, { checks: { leaderCompleteness: false } })
  assert.ok(failure, 'no seed in 1..300 caught commitOldTermByCounting')
  const expected: string[] = [
    Invariant.stateMachineSafety,
    Invariant.committedNeverChange,
    Invariant.ackedReadable,
  ]
  assert.ok(expected.includes(failure.invariant), failure.message)
})

test('the aggressive fault profile without bugs keeps every invariant', async () => {
  const runs: SimulationOptions[] = Array.from({ length: 60 }, (_, i) => ({
    seed: i + 1,
    profile: 'aggressive',
  }))
  const { failures } = await runPool(runs)
  assert.equal(failures.length, 0, failures[0]?.message)
})

test('Election Safety: the checker rejects a second leader in a term', () => {
  const c = new Checkers()
  c.onRole('n1', 3, 'leader')
  c.onRole('n1', 3, 'leader')
  c.onRole('n2', 4, 'leader')
  assert.throws(
    () => c.onRole('n2', 3, 'leader'),
    (e: unknown) => e instanceof CheckFailed && e.invariant === Invariant.electionSafety,
  )
})

test('a run is a function of its seed', () => {
  const a = new Simulation({ seed: 12345, nodes: 5, ticks: 300 })
  const b = new Simulation({ seed: 12345, nodes: 5, ticks: 300 })
  a.run()
  b.run()
  assert.deepEqual(a.summary(), b.summary())
  assert.equal(a.trace.dump(), b.trace.dump())
})
