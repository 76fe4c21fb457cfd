// Log compaction and snapshots (Raft §7): compaction at an applied index, InstallSnapshot to a
// follower behind the compacted point, stale and matching snapshots, restart from snapshot
// plus log, a snapshot racing with appends, and retries of a lost snapshot transfer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, Harness } from './harness.test-helper.ts'
import { app, appResponses, drain, entry, lone } from './lone.test-helper.ts'
import type { Message, NodeId, SnapshotMessage } from './types.ts'

// ------------------------------------------------------------------ helpers

const CONF = { voters: ['1', '2', '3'], learners: [] }

function snap(index: number, term: number, msgTerm = term): SnapshotMessage {
  return { type: 'snap', from: '2', to: '1', term: msgTerm, snapshot: { index, term, conf: CONF } }
}

function snapsTo(h: Harness, to: NodeId): SnapshotMessage[] {
  return h.sent.filter((m): m is SnapshotMessage => m.type === 'snap' && m.to === to)
}

/** lagBehindCompaction leaves member 3 behind while the leader (1) compacts past it. */
function lagBehindCompaction(h: Harness, n = 5): number {
  h.elect('1')
  h.drop = cut('3')
  for (let i = 0; i < n; i++) h.propose('1', `p${i}`)
  h.stabilize()
  const leader = h.member('1')
  const applied = leader.raft.status().applied
  leader.storage.compact(applied, leader.conf)
  assert.ok(h.raft('3').status().lastIndex < applied)
  return applied
}

// ------------------------------------------------------------------ compaction

test('§7 compaction at the applied index drops the log up to it and keeps its index and term', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  for (let i = 0; i < 5; i++) h.propose('1', `p${i}`)
  h.stabilize()
  const m = h.member('1')
  const applied = m.raft.status().applied
  const termAtApplied = m.storage.term(applied)
  m.storage.compact(applied, m.conf)
  assert.equal(m.storage.firstIndex(), applied + 1)
  assert.equal(m.storage.term(applied), termAtApplied, 'the last included term is kept')
  assert.equal(m.storage.term(applied - 1), undefined)
  assert.deepEqual(m.storage.snapshot().conf, m.conf, 'and the configuration')
  assert.equal(m.raft.status().firstIndex, applied + 1)
  // Appends after the compacted point still pass the consistency check.
  h.propose('1', 'after')
  h.stabilize()
  for (const id of ['1', '2', '3']) assert.deepEqual(h.appliedData(id).at(-1), 'after', id)
  assert.equal(snapsTo(h, '2').length + snapsTo(h, '3').length, 0, 'no snapshot was needed')
})

// ------------------------------------------------------------------ InstallSnapshot

test('§7 a follower behind the compacted point receives a snapshot, installs it and resumes', () => {
  const h = new Harness(['1', '2', '3'])
  const compacted = lagBehindCompaction(h)
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  const snaps = snapsTo(h, '3')
  assert.equal(snaps.length, 1)
  assert.equal(snaps[0]?.snapshot.index, compacted)
  const f = h.member('3')
  assert.equal(f.storage.snapshot().index, compacted, 'installed through Ready.snapshot')
  assert.equal(f.raft.status().applied, compacted, 'the snapshot counts as applied')
  assert.equal(f.raft.status().commit, h.raft('1').status().commit)
  // Appends resume after the snapshot.
  const sentBefore = h.sent.length
  h.propose('1', 'after')
  h.stabilize()
  const later = h.sent.slice(sentBefore).filter((m) => m.to === '3')
  assert.ok(later.some((m) => m.type === 'app' && m.entries.length > 0))
  assert.ok(!later.some((m) => m.type === 'snap'))
  assert.deepEqual(h.appliedData('3'), ['after'], 'only entries after the snapshot are replayed')
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'replicate')
})

test('§7 a stale or duplicate snapshot is ignored', () => {
  const n = lone({ logTerms: [2, 2, 2, 2, 2], term: 2 }) // 2..6
  n.raft.step(app('2', '1', 2, 6, 2, [], 5))
  drain(n)
  assert.equal(n.raft.status().commit, 5)
  n.raft.step(snap(4, 2)) // older than what we have committed
  n.raft.step(snap(5, 2)) // exactly our commit: a duplicate
  const readies = drain(n)
  assert.ok(readies.every((rd) => rd.snapshot === undefined))
  assert.ok(readies.every((rd) => rd.entries.length === 0))
  assert.equal(n.storage.snapshot().index, 1)
  assert.equal(n.raft.status().lastIndex, 6)
  assert.deepEqual(
    appResponses(readies).map((m) => [m.reject, m.index]),
    [
      [false, 5],
      [false, 5],
    ],
    'the leader learns how far we really are',
  )
})

test('§7 a snapshot older than the follower own compacted log is ignored', () => {
  const n = lone({ logTerms: [2, 2, 2, 2, 2, 2, 2, 2, 2], term: 2 }) // 2..10
  n.raft.step(app('2', '1', 2, 10, 2, [], 10))
  drain(n) // committed and applied up to 10
  n.storage.compact(10, CONF) // the follower took its own snapshot
  n.raft.step(snap(6, 2)) // index 6 is compacted away here: its term is unknown
  const readies = drain(n)
  assert.ok(
    readies.every((rd) => rd.snapshot === undefined),
    'not installed',
  )
  assert.equal(n.storage.snapshot().index, 10)
  assert.deepEqual(
    [n.raft.status().commit, n.raft.status().applied, n.raft.status().lastIndex],
    [10, 10, 10],
  )
})

test('§7 a snapshot whose last entry is in the follower log keeps the suffix after it', () => {
  const n = lone({ logTerms: [2, 2, 2, 2, 2], term: 2 }) // 2..6, nothing committed past 1
  n.raft.step(snap(4, 2))
  const readies = drain(n)
  assert.ok(
    readies.every((rd) => rd.snapshot === undefined),
    'no need to install it',
  )
  assert.equal(n.raft.status().lastIndex, 6, 'entries 5 and 6 are kept')
  assert.equal(n.raft.status().commit, 4, 'the snapshot proves 4 committed')
  assert.deepEqual(
    appResponses(readies).map((m) => m.index),
    [4],
  )
})

test('§7 a snapshot that conflicts with or passes the follower log replaces the whole log', () => {
  const n = lone({ logTerms: [2, 2, 2, 2, 2], term: 2 }) // 2..6 of term 2
  n.raft.step(snap(5, 3, 3)) // index 5 has term 3 in the leader's history, not 2
  const readies = drain(n)
  const installed = readies.map((rd) => rd.snapshot).filter((s) => s !== undefined)
  assert.deepEqual(installed, [{ index: 5, term: 3, conf: CONF }])
  assert.equal(n.storage.snapshot().index, 5)
  assert.equal(n.storage.lastIndex(), 5, 'the conflicting suffix (6@2) is gone')
  const s = n.raft.status()
  assert.deepEqual([s.commit, s.applied, s.lastIndex], [5, 5, 5])
  assert.deepEqual(
    appResponses(readies).map((m) => m.index),
    [5],
  )
  assert.ok(
    readies.every((rd) => rd.committedEntries.length === 0),
    'no entries below it are applied',
  )
})

// ------------------------------------------------------------------ restart

test('§7 a restart restores the latest snapshot, then the log after it', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  for (let i = 0; i < 4; i++) h.propose('1', `p${i}`)
  h.stabilize()
  const m = h.member('2')
  const at = m.raft.status().applied - 2 // keep a log suffix after the snapshot
  m.storage.compact(at, m.conf)
  const before = m.raft.status()
  const appliedCount = m.applied.length
  h.restart('2')
  const after = h.raft('2').status()
  assert.equal(after.firstIndex, at + 1)
  assert.equal(after.lastIndex, before.lastIndex)
  assert.equal(after.term, before.term)
  assert.equal(after.vote, before.vote)
  assert.equal(after.commit, before.commit)
  assert.equal(after.applied, before.applied)
  assert.deepEqual(after.conf, before.conf)
  // It rejoins without re-applying anything and applies what comes next exactly once.
  h.propose('1', 'after')
  h.stabilize()
  const indexes = h.member('2').applied.map((e) => e.index)
  assert.equal(new Set(indexes).size, indexes.length, 'nothing applied twice')
  assert.equal(h.member('2').applied.length, appliedCount + 1)
  assert.deepEqual(h.appliedData('2').at(-1), 'after')
})

test('§7 a restart with everything compacted rebuilds from the snapshot alone', () => {
  const h = cluster()
  const m = h.member('3')
  const last = m.raft.status().lastIndex
  m.storage.compact(last, m.conf)
  h.restart('3')
  const s = h.raft('3').status()
  assert.deepEqual([s.firstIndex, s.lastIndex, s.applied], [last + 1, last, last])
  h.propose('1', 'b')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['a', 'b'])
})

// ------------------------------------------------------------------ racing

test('§7 (trap) a snapshot racing with appends does not move the log backwards', () => {
  const n = lone({ logTerms: [], term: 1 })
  n.raft.step(snap(5, 2))
  // Appends after the snapshot arrive before the host has even persisted it...
  n.raft.step(app('2', '1', 2, 5, 2, [entry(6, 2), entry(7, 2)], 7))
  // ...and a delayed copy of the same snapshot arrives after them.
  n.raft.step(snap(5, 2))
  const readies = drain(n)
  assert.equal(readies.filter((rd) => rd.snapshot).length, 1, 'installed once')
  assert.equal(n.storage.snapshot().index, 5)
  assert.equal(n.storage.lastIndex(), 7)
  assert.equal(n.raft.status().commit, 7)
  // Once durable, a retransmitted snapshot is still ignored.
  n.raft.step(snap(5, 2))
  n.raft.step(snap(6, 2))
  const later = drain(n)
  assert.ok(later.every((rd) => rd.snapshot === undefined && rd.entries.length === 0))
  assert.equal(n.storage.lastIndex(), 7)
  assert.equal(n.storage.snapshot().index, 5)
})

test('§7 (trap) a delayed snapshot message delivered after catch-up is ignored', () => {
  const h = new Harness(['1', '2', '3'])
  lagBehindCompaction(h)
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  const [delayed] = snapsTo(h, '3')
  assert.ok(delayed)
  for (let i = 0; i < 3; i++) h.propose('1', `q${i}`)
  h.stabilize()
  const last = h.raft('3').status().lastIndex
  assert.ok(last > delayed.snapshot.index)
  h.raft('3').step(delayed)
  const rd = h.raft('3').ready()
  assert.ok(rd)
  assert.equal(rd.snapshot, undefined)
  assert.deepEqual(rd.entries, [])
  h.raft('3').advance(rd)
  assert.equal(h.raft('3').status().lastIndex, last)
  assert.equal(h.member('3').storage.snapshot().index, delayed.snapshot.index)
})

// ------------------------------------------------------------------ lost transfers

test('§7 a lost snapshot transfer is retried after reportSnapshot(to, false)', () => {
  const h = new Harness(['1', '2', '3'])
  const compacted = lagBehindCompaction(h)
  h.drop = (m) => m.type === 'snap'
  h.tick('1')
  h.stabilize()
  assert.equal(snapsTo(h, '3').length, 1)
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'snapshot')
  // While the transfer is outstanding, nothing more is sent to 3 (heartbeats aside).
  for (let i = 0; i < 5; i++) {
    h.tick('1')
    h.stabilize()
  }
  assert.equal(snapsTo(h, '3').length, 1)
  h.drop = () => false
  h.raft('1').reportSnapshot('3', false)
  h.tick('1')
  h.stabilize()
  assert.equal(snapsTo(h, '3').length, 2, 'sent again')
  assert.equal(h.member('3').storage.snapshot().index, compacted)
  assert.equal(h.raft('3').status().commit, h.raft('1').status().commit)
})

test('§7 a lost snapshot transfer nobody reports is retried after a timeout', () => {
  const ELECTION = 10
  const h = new Harness(['1', '2', '3'], { electionTicks: ELECTION })
  const compacted = lagBehindCompaction(h)
  h.drop = (m) => m.type === 'snap'
  h.tick('1')
  h.stabilize()
  assert.equal(snapsTo(h, '3').length, 1)
  h.drop = () => false
  let ticks = 0
  while (snapsTo(h, '3').length < 2) {
    h.tick('1')
    h.stabilize()
    ticks++
    assert.ok(ticks <= 4 * ELECTION, 'no retry within four election timeouts')
  }
  assert.ok(ticks >= 2 * ELECTION, `retried after only ${ticks} ticks`)
  assert.equal(h.raft('1').status().role, 'leader')
  assert.equal(h.member('3').storage.snapshot().index, compacted)
  h.propose('1', 'after')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['after'])
})

test('§7 reportSnapshot(to, true) waits for the follower, whose ack resumes replication', () => {
  const h = new Harness(['1', '2', '3'])
  lagBehindCompaction(h)
  // The host holds the snapshot message while it streams the data.
  const streaming: Message[] = []
  h.drop = (m) => m.type === 'snap' && streaming.push(m) > 0
  h.tick('1')
  h.stabilize()
  assert.equal(streaming.length, 1)
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'snapshot')
  h.drop = () => false
  h.raft('1').reportSnapshot('3', true)
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'probe')
  h.queue.push(...streaming)
  h.stabilize()
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'replicate')
  assert.equal(snapsTo(h, '3').length, 1)
  h.propose('1', 'after')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['after'])
})
