// Majority math, checked as an oracle test: the sorting implementation against a dumb twin
// that tries every candidate index, on seeded random inputs (SEED=… replays one run).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng } from '../base/index.ts'
import { committedIndex, hasQuorum, majority, voteResult, type VoteResult } from './quorum.ts'
import type { NodeId } from './types.ts'

const SEED = Number(process.env.SEED ?? 20240611)

/** dumbCommitted tries every index any voter holds, highest first, and counts the voters
 * that hold it; the first one a strict majority holds is the commit index. */
function dumbCommitted(voters: readonly NodeId[], match: ReadonlyMap<NodeId, number>): number {
  if (voters.length === 0) return Infinity
  const candidates = [...new Set([0, ...voters.map((v) => match.get(v) ?? 0)])].sort(
    (a, b) => b - a,
  )
  for (const index of candidates) {
    const holders = voters.filter((v) => (match.get(v) ?? 0) >= index).length
    if (holders * 2 > voters.length) return index
  }
  return 0
}

function dumbVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won'
  const yes = voters.filter((v) => votes.get(v) === true).length
  const unknown = voters.filter((v) => !votes.has(v)).length
  if (yes * 2 > voters.length) return 'won'
  if ((yes + unknown) * 2 <= voters.length) return 'lost'
  return 'pending'
}

function randomVoters(rng: SeededRng): NodeId[] {
  const n = rng.int(8) // 0..7 voters, even and odd sizes
  return Array.from({ length: n }, (_, i) => `v${i}`)
}

test('majority is the smallest strict majority', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4])
})

test('committedIndex agrees with a dumb twin on seeded random inputs', (t) => {
  t.diagnostic(`seed ${SEED} (replay with SEED=${SEED})`)
  const rng = new SeededRng(SEED)
  for (let round = 0; round < 5000; round++) {
    const voters = randomVoters(rng)
    const match = new Map<NodeId, number>()
    for (const v of voters) match.set(v, rng.int(rng.pick([3, 20, 1000])))
    // Non-voters (learners) with high matches must not matter.
    match.set('learner', 5000)
    const got = committedIndex(voters, (id) => match.get(id) ?? 0)
    const want = dumbCommitted(voters, match)
    assert.equal(got, want, `seed ${SEED} round ${round}: ${JSON.stringify([...match])}`)
  }
})

test('voteResult agrees with a dumb twin on seeded random inputs', (t) => {
  t.diagnostic(`seed ${SEED} (replay with SEED=${SEED})`)
  const rng = new SeededRng(SEED + 1)
  for (let round = 0; round < 5000; round++) {
    const voters = randomVoters(rng)
    const votes = new Map<NodeId, boolean>()
    for (const v of voters) {
      const r = rng.int(3)
      if (r === 0) votes.set(v, true)
      else if (r === 1) votes.set(v, false)
    }
    votes.set('outsider', true) // a vote from a non-voter counts for nothing
    assert.equal(
      voteResult(voters, votes),
      dumbVote(voters, votes),
      `seed ${SEED} round ${round}: ${JSON.stringify([...votes])}`,
    )
  }
})

test('hasQuorum agrees with counting on seeded random inputs', (t) => {
  t.diagnostic(`seed ${SEED} (replay with SEED=${SEED})`)
  const rng = new SeededRng(SEED + 2)
  for (let round = 0; round < 2000; round++) {
    const voters = randomVoters(rng)
    const acked = new Set(voters.filter(() => rng.chance(0.5)))
    assert.equal(
      hasQuorum(voters, (id) => acked.has(id)),
      acked.size * 2 > voters.length,
      `seed ${SEED} round ${round}`,
    )
  }
})

test('committedIndex examples: even-sized configurations need a strict majority', () => {
  const m =
    (xs: number[]): ((id: NodeId) => number) =>
    (id) =>
      xs[Number(id)] ?? 0
  assert.equal(committedIndex(['0', '1', '2'], m([5, 3, 1])), 3)
  assert.equal(
    committedIndex(['0', '1', '2', '3'], m([5, 5, 3, 1])),
    3,
    'two of four is not enough',
  )
  assert.equal(committedIndex(['0'], m([7])), 7)
  assert.equal(committedIndex([], m([])), Infinity)
})

test('voteResult examples: a split in an even configuration is lost once it cannot be won', () => {
  const votes = (entries: [NodeId, boolean][]): Map<NodeId, boolean> => new Map(entries)
  const four = ['1', '2', '3', '4']
  assert.equal(
    voteResult(
      four,
      votes([
        ['1', true],
        ['2', true],
      ]),
    ),
    'pending',
  )
  assert.equal(
    voteResult(
      four,
      votes([
        ['1', true],
        ['2', true],
        ['3', false],
        ['4', false],
      ]),
    ),
    'lost',
  )
  assert.equal(
    voteResult(
      four,
      votes([
        ['1', true],
        ['2', true],
        ['3', true],
      ]),
    ),
    'won',
  )
  assert.equal(
    voteResult(
      ['1', '2', '3'],
      votes([
        ['2', false],
        ['3', false],
      ]),
    ),
    'lost',
  )
})
