// The simulator as a test: (a) hundreds of seeded whole-cluster runs with faults, each checked
// on every step and then for liveness; (b) the Raft core built with a deliberate bug, to show the
// checkers catch it within a bounded number of seeds. SIM_SEED=<n> replays a sweep; a failing
// run prints its own one-line replay command.
import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { test } from 'node:test'
import { encodeConfChange, MemoryStorage, type Entry, type NodeId } from '../../src/raft/index.ts'
import { Checkers, Invariant, type ReadRecord } from './checkers.ts'
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

function throwsInvariant(fn: () => void, invariant: string, details?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckFailed, String(e))
    assert.equal(e.invariant, invariant, e.details)
    if (details) assert.match(e.details, details)
    return true
  })
}

function logOf(terms: readonly number[]): MemoryStorage {
  const s = new MemoryStorage({ index: 1, term: 1, conf: { voters: ['n1'], learners: [] } })
  const entries: Entry[] = terms.map((term, i) => ({
    term,
    index: i + 2,
    type: 'normal',
    data: new Uint8Array(0),
  }))
  s.append(entries)
  return s
}

test('Election Safety: a candidate that voted for itself may not vote for another', () => {
  const c = new Checkers()
  c.onVote('n1', 4, 'n1', 'its durable hard state')
  c.onSend({ type: 'voteResp', from: 'n1', to: 'n1', term: 4, reject: false })
  c.onVote('n2', 4, 'n1', 'its durable hard state')
  throwsInvariant(
    () => c.onSend({ type: 'voteResp', from: 'n1', to: 'n2', term: 4, reject: false }),
    Invariant.electionSafety,
    /n1 voted in term 4 for both n1 \(its durable hard state\) and n2/,
  )
})

test('Linearizable Reads: not-found after a completed read saw the value is caught', () => {
  const c = new Checkers()
  const read = (ctx: string, node: NodeId): ReadRecord => ({
    ctx,
    node,
    key: 'k',
    expect: undefined,
    minIndex: 0,
    issuedAt: 0,
    issuedSeq: c.nextSeq(),
  })
  const put = { client: 0, reqId: 0, key: 'k', value: 'v' }
  const e: Entry = { term: 2, index: 5, type: 'normal', data: new Uint8Array(0) }
  c.onApply('n1', 2, e, put, 'created')
  // Issued before the first read completed: a not-found is still allowed (concurrent).
  const early = read('r0', 'n2')
  c.onReadServed(read('r1', 'n1'), 'v', 5, { index: 5, ctx: 'r1' })
  c.onReadServed(early, undefined, 4, { index: 4, ctx: 'r0' })
  throwsInvariant(
    () => c.onReadServed(read('r2', 'n3'), undefined, 4, { index: 4, ctx: 'r2' }),
    Invariant.linearizableReads,
    /read r1 on n1 had returned k = v before this read was issued/,
  )
  // A not-found at a read index at or past the key's creation is caught on its own.
  const c2 = new Checkers()
  c2.onApply('n1', 2, e, put, 'created')
  throwsInvariant(
    () =>
      c2.onReadServed({ ...read('r3', 'n2'), issuedSeq: c2.nextSeq() }, undefined, 6, {
        index: 6,
        ctx: 'r3',
      }),
    Invariant.linearizableReads,
    /created at index 5, at or below the read index/,
  )
})

test('Leader Completeness: a later leader must hold what an earlier leader committed', () => {
  const c = new Checkers()
  // n1 leads term 2 and commits 2..4 (all of term 2).
  c.onRole('n1', 2, 'leader')
  const l1 = logOf([2, 2, 2])
  c.onStableDone('n1', l1, [{ term: 2, index: 4, type: 'normal', data: new Uint8Array(0) }])
  c.onLeaderCommit('n1', 2, 4, l1)
  // n2 leads term 3 without entry 4: caught when its first entry is stable.
  c.onRole('n2', 3, 'leader')
  const l2 = logOf([2, 2, 3])
  throwsInvariant(
    () =>
      c.onStableDone('n2', l2, [{ term: 3, index: 4, type: 'normal', data: new Uint8Array(0) }]),
    Invariant.leaderCompleteness,
    /n2, leader of term 3, has term 3 at index 4, but entry 4 of term 2 was committed by term 2/,
  )
  // A deposed leader's commit that arrives after the next leader was checked is caught too.
  const d = new Checkers()
  d.onRole('n1', 2, 'leader')
  d.onRole('n2', 3, 'leader')
  d.onStableDone('n2', l2, [{ term: 3, index: 4, type: 'normal', data: new Uint8Array(0) }])
  throwsInvariant(
    () => d.onLeaderCommit('n1', 2, 4, l1),
    Invariant.leaderCompleteness,
    /n2, leader of term 3, has term 3 at index 4/,
  )
})

test('Configuration: the core must hold the configuration the host stored, as the log gives it', () => {
  const c = new Checkers()
  c.onBootstrap({ voters: ['n3', 'n1', 'n2'], learners: [] })
  const three = { voters: ['n1', 'n2', 'n3'], learners: [] }
  c.checkConf('n1', three, { voters: ['n2', 'n1', 'n3'], learners: [] }, 1, 'test')
  throwsInvariant(
    () => c.checkConf('n1', { voters: ['n1', 'n2'], learners: ['n3'] }, three, 1, 'test'),
    Invariant.confMatchesHost,
  )
  const cc = encodeConfChange({ type: 'addLearner', node: 'n4' })
  c.onApply(
    'n1',
    2,
    { term: 2, index: 2, type: 'normal', data: new Uint8Array(0) },
    undefined,
    undefined,
  )
  c.onApply('n1', 2, { term: 2, index: 3, type: 'conf', data: cc }, undefined, undefined)
  const four = { voters: ['n1', 'n2', 'n3'], learners: ['n4'] }
  c.checkConf('n1', four, four, 3, 'test')
  throwsInvariant(() => c.checkConf('n1', four, four, 2, 'test'), Invariant.confMatchesLog)
})

test('a run is a function of its seed', () => {
  const a = new Simulation({ seed: 12345, nodes: 5, ticks: 300 })
  const b = new Simulation({ seed: 12345, nodes: 5, ticks: 300 })
  a.run()
  b.run()
  assert.deepEqual(a.summary(), b.summary())
  assert.equal(a.trace.dump(), b.trace.dump())
})
