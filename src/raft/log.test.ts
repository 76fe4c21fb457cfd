// RaftLog: how stable storage and unstable entries merge, how a leader's append is merged
// (§5.3), and the cursors (commit, apply, persist) that keep entries from being applied
// before they are handed out for persisting.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AssertionError } from '../base/index.ts'
import { RaftLog } from './log.ts'
import { ents } from './lone.test-helper.ts'
import { MemoryStorage } from './storage.ts'

const CONF = { voters: ['1'], learners: [] }

/** logOf builds a log whose storage holds a snapshot at (snapIndex, snapTerm) and the given
 * stable entries after it; committed and applied default to the snapshot index. */
function logOf(snapIndex: number, snapTerm: number, stableTerms: number[], committed = snapIndex) {
  const storage = new MemoryStorage({ index: snapIndex, term: snapTerm, conf: CONF })
  storage.append(ents(snapIndex + 1, stableTerms))
  return { log: new RaftLog(storage, committed, snapIndex), storage }
}

function terms(log: RaftLog): (number | undefined)[] {
  const out: (number | undefined)[] = []
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i))
  return out
}

test('term: the snapshot index has its term, below it nothing, past the end nothing', () => {
  const { log } = logOf(5, 2, [2, 3])
  log.append(ents(8, [4]))
  assert.equal(log.term(4), undefined, 'compacted')
  assert.equal(log.term(5), 2, 'the snapshot keeps its last term')
  assert.equal(log.term(6), 2)
  assert.equal(log.term(7), 3)
  assert.equal(log.term(8), 4, 'unstable')
  assert.equal(log.term(9), undefined)
  assert.deepEqual([log.firstIndex(), log.lastIndex(), log.lastTerm()], [6, 8, 4])
})

test('§5.3 maybeAppend rejects when the previous entry does not match', () => {
  const { log } = logOf(0, 0, [1, 1, 2])
  assert.equal(log.maybeAppend(3, 1, 3, ents(4, [3])), undefined, 'term at 3 is 2')
  assert.equal(log.maybeAppend(5, 2, 3, ents(6, [3])), undefined, 'no entry at 5')
  assert.deepEqual(terms(log), [1, 1, 2])
  assert.equal(log.committed, 0)
})

test('§5.3 maybeAppend skips entries it already holds and never truncates on them', () => {
  const { log } = logOf(0, 0, [1, 1, 2, 2])
  assert.equal(log.maybeAppend(1, 1, 0, ents(2, [1, 2])), 3, 'a stale prefix')
  assert.equal(log.maybeAppend(0, 0, 0, []), 0, 'an empty append at the start')
  assert.deepEqual(terms(log), [1, 1, 2, 2])
  assert.equal(log.hasUnstable(), false, 'nothing to persist')
})

test('§5.3 maybeAppend truncates from the first real conflict on', () => {
  const { log } = logOf(0, 0, [1, 1, 2, 2])
  assert.equal(log.maybeAppend(2, 1, 0, ents(3, [2, 3, 3])), 5)
  assert.deepEqual(terms(log), [1, 1, 2, 3, 3])
  assert.deepEqual(
    log.unstableToPersist().map((e) => e.index),
    [4, 5],
    'only the replaced suffix is persisted again',
  )
})

test('§5.3 maybeAppend commits min(leader commit, last new index)', () => {
  const { log } = logOf(0, 0, [1, 1, 1, 1, 1])
  log.maybeAppend(1, 1, 5, ents(2, [1]))
  assert.equal(log.committed, 2, 'the append only vouches for entries up to 2')
  log.maybeAppend(2, 1, 4, ents(3, [1, 1, 1]))
  assert.equal(log.committed, 4, 'the leader commit bounds it')
  log.maybeAppend(1, 1, 1, [])
  assert.equal(log.committed, 4, 'commit never goes back')
})

test('§5.4 a conflict at or below the commit index is an invariant violation', () => {
  const { log } = logOf(0, 0, [1, 1, 1], 2)
  assert.throws(() => log.maybeAppend(1, 1, 2, ents(2, [2])), AssertionError)
  assert.throws(() => log.append(ents(2, [2])), AssertionError)
})

test('§5.3 findConflictByTerm returns the last index <= index whose term is <= term', () => {
  const { log } = logOf(2, 1, [2, 2, 4, 4, 5]) // 3@2 4@2 5@4 6@4 7@5
  assert.deepEqual(log.findConflictByTerm(7, 5), { index: 7, term: 5 })
  assert.deepEqual(log.findConflictByTerm(7, 4), { index: 6, term: 4 })
  assert.deepEqual(log.findConflictByTerm(7, 3), { index: 4, term: 2 })
  assert.deepEqual(log.findConflictByTerm(99, 3), { index: 4, term: 2 }, 'capped at the last index')
  assert.deepEqual(log.findConflictByTerm(7, 1), { index: 2, term: 1 }, 'the snapshot point')
  assert.deepEqual(log.findConflictByTerm(7, 0), { index: 1, term: 0 }, 'compacted: term unknown')
})

test('§5.4.1 isUpToDate compares last term, then last index', () => {
  const { log } = logOf(0, 0, [1, 2, 2]) // last 3@2
  assert.equal(log.isUpToDate(3, 2), true)
  assert.equal(log.isUpToDate(4, 2), true)
  assert.equal(log.isUpToDate(2, 2), false)
  assert.equal(log.isUpToDate(1, 3), true)
  assert.equal(log.isUpToDate(10, 1), false)
})

test('append replaces an unstable suffix, or the stable log from its first index on', () => {
  const { log } = logOf(0, 0, [1, 1])
  log.append(ents(3, [2, 2, 2]))
  log.append(ents(4, [3])) // replaces unstable 4, 5
  assert.deepEqual(terms(log), [1, 1, 2, 3])
  log.append(ents(2, [4])) // replaces stable 2 and everything after
  assert.deepEqual(terms(log), [1, 4])
  assert.equal(log.unstableOffset, 2)
  assert.deepEqual(
    log.unstableToPersist().map((e) => e.index),
    [2],
  )
})

test('stableTo moves entries to stable, unless they were replaced meanwhile', () => {
  const { log } = logOf(0, 0, [])
  log.append(ents(1, [1, 1]))
  const handedOut = log.unstableToPersist()
  log.inProgress = log.lastIndex()
  log.append(ents(2, [2])) // 2@1 replaced while the host persisted it
  log.stableTo(2, 1)
  assert.equal(log.unstableOffset, 1, 'the replaced entry is still unstable')
  assert.equal(handedOut.length, 2)
  assert.deepEqual(
    log.unstableToPersist().map((e) => [e.index, e.term]),
    [[2, 2]],
  )
  log.stableTo(1, 1)
  assert.equal(log.unstableOffset, 2)
})

test('committedToApply hands out only committed entries already handed out for persisting', () => {
  const { log } = logOf(0, 0, [1, 1])
  log.append(ents(3, [1, 1]))
  log.commitTo(4)
  assert.deepEqual(
    log.committedToApply(1, Infinity).map((e) => e.index),
    [1, 2],
    'entries 3 and 4 are committed but not yet handed to the host',
  )
  log.inProgress = 4
  assert.deepEqual(
    log.committedToApply(1, Infinity).map((e) => e.index),
    [1, 2, 3, 4],
  )
  assert.deepEqual(
    log.committedToApply(1, 1).map((e) => e.index),
    [1],
    'a byte bound still returns at least one',
  )
})

test('slice returns at least one entry and no more than maxBytes after that', () => {
  const { log } = logOf(0, 0, [1, 1])
  log.append(ents(3, [1, 1]))
  const size = 16 + '1@1'.length
  assert.equal(log.slice(1, 5, 0).length, 1)
  assert.equal(log.slice(1, 5, 2 * size).length, 2)
  assert.equal(log.slice(2, 5, 3 * size).length, 3, 'across the stable/unstable boundary')
  assert.throws(() => log.slice(0, 2, Infinity), AssertionError)
})

test('commitTo never lowers the commit index and never passes the last index', () => {
  const { log } = logOf(0, 0, [1, 1, 1])
  log.commitTo(2)
  log.commitTo(1)
  assert.equal(log.committed, 2)
  assert.throws(() => log.commitTo(4), AssertionError)
})

test('restore replaces the log with a snapshot awaiting persistence', () => {
  const { log } = logOf(0, 0, [1, 1, 1])
  log.restore({ index: 10, term: 3, conf: CONF })
  assert.deepEqual([log.firstIndex(), log.lastIndex(), log.committed], [11, 10, 10])
  assert.equal(log.term(10), 3)
  assert.equal(log.term(2), undefined, 'the old log is gone')
  assert.equal(log.hasUnstable(), true)
  log.append(ents(11, [3]))
  assert.equal(log.lastIndex(), 11)
  log.stableSnapTo(10)
  assert.equal(log.pendingSnapshot, undefined)
})
