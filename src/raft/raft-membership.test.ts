// Membership changes (thesis §4): one server at a time, taking effect when its entry is
// applied (the etcd-io/raft rule, with at most one change pending); learners replicate but do
// not vote or count; a fresh leader proposes no change before an entry of its term applies;
// a leader that removes itself leads until the change applies, then steps down.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, Harness, tickUntil } from './harness.test-helper.ts'
import type { ConfChange, NodeId } from './types.ts'
import { decodeConfChange, encodeConfChange } from './types.ts'
import { app, drain, lone } from './lone.test-helper.ts'

// ------------------------------------------------------------------ helpers

function change(h: Harness, leader: NodeId, cc: ConfChange): number {
  const r = h.raft(leader).proposeConfChange(cc)
  assert.ok(r.ok, `proposeConfChange ${cc.type} ${cc.node}: ${JSON.stringify(r)}`)
  h.stabilize()
  return r.index
}

/** appliedChanges lists the conf changes a member applied from its log. */
function appliedChanges(h: Harness, id: NodeId): ConfChange[] {
  return h
    .member(id)
    .applied.filter((e) => e.type === 'conf')
    .map((e) => decodeConfChange(e.data))
}

// ------------------------------------------------------------------ learners

test('§4.2.1 a new server joins as a learner, receives the log and applies what others applied', () => {
  const h = cluster()
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  h.propose('1', 'b')
  h.stabilize()
  for (const id of ['1', '2', '3', '4']) {
    assert.deepEqual(h.raft(id).status().conf, { voters: ['1', '2', '3'], learners: ['4'] }, id)
  }
  assert.deepEqual(h.appliedData('4').slice(-1), ['b'])
  assert.equal(h.raft('4').status().commit, h.raft('1').status().commit)
  assert.equal(h.raft('4').status().role, 'follower')
  assert.equal(h.raft('1').status().progress.get('4')?.isLearner, true)
})

test('§4.2.1 a learner does not count toward commit: with 2 of 3 voters down nothing commits', () => {
  // Two learners, so that counting them would make a majority of five (1, 4, 5).
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  h.addEmpty('5')
  change(h, '1', { type: 'addLearner', node: '4' })
  change(h, '1', { type: 'addLearner', node: '5' })
  h.tick('1')
  h.stabilize()
  const commit = h.raft('1').status().commit
  h.drop = cut('2', '3')
  const p = h.propose('1', 'p')
  assert.ok(p.ok)
  h.stabilize()
  for (const id of ['4', '5']) {
    assert.equal(h.raft('1').status().progress.get(id)?.match, p.index, `learner ${id} acked`)
  }
  assert.equal(h.raft('1').status().commit, commit, 'but learner acks make no majority')
  assert.deepEqual(h.appliedData('1'), [])
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  assert.deepEqual(h.appliedData('1'), ['p'])
  assert.deepEqual(h.appliedData('4'), ['p'])
})

test('§4.2.1 a learner never campaigns and its votes are not requested', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  h.drop = cut('1', '4') // the learner hears no leader for a long time
  h.tickAll(50)
  assert.ok(!h.sent.some((m) => m.from === '4' && (m.type === 'vote' || m.type === 'preVote')))
  assert.ok(!h.sent.some((m) => m.to === '4' && (m.type === 'vote' || m.type === 'preVote')))
})

test('§4.2.1 promoting a caught-up learner makes it a voter that counts toward commit', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  change(h, '1', { type: 'addVoter', node: '4' })
  for (const id of ['1', '2', '3', '4']) {
    assert.deepEqual(h.raft(id).status().conf, { voters: ['1', '2', '3', '4'], learners: [] }, id)
  }
  // Four voters: a majority is three. With 2 and 3 down, 1 and 4 are not enough...
  const commit = h.raft('1').status().commit
  h.drop = cut('2', '3')
  h.propose('1', 'p')
  h.stabilize()
  assert.equal(h.raft('1').status().commit, commit)
  // ...and with only 2 down, 4's ack is what makes the majority (1, 3, 4).
  h.drop = cut('2')
  h.tick('1')
  h.stabilize()
  assert.deepEqual(h.appliedData('1'), ['p'])
})

test('§4.2.1 a promoted learner can be elected leader', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  change(h, '1', { type: 'addVoter', node: '4' })
  h.raft('1').transferLeader('4')
  h.stabilize()
  assert.deepEqual(h.leaders(), ['4'])
  h.propose('4', 'from 4')
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['from 4'])
})

// ------------------------------------------------------------------ removal

test('§4.1 removing a follower: it stops receiving messages and the rest commit alone', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  change(h, '1', { type: 'remove', node: '3' })
  for (const id of ['1', '2']) assert.deepEqual(h.raft(id).status().conf.voters, ['1', '2'], id)
  assert.equal(h.raft('1').status().progress.has('3'), false)
  const sentBefore = h.sent.length
  h.propose('1', 'p')
  h.tickAll(30)
  assert.ok(!h.sent.slice(sentBefore).some((m) => m.to === '3' && m.from === '1'))
  assert.deepEqual(h.appliedData('2'), ['p'])
  // Two voters: both are needed now.
  h.drop = cut('2')
  const commit = h.raft('1').status().commit
  h.propose('1', 'q')
  h.stabilize()
  assert.equal(h.raft('1').status().commit, commit)
})

test('§4.2.2 a leader that removes itself leads until the change applies, then steps down', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  const term = h.raft('1').status().term
  const r = h.raft('1').proposeConfChange({ type: 'remove', node: '1' })
  assert.ok(r.ok)
  // Replicate and commit, step by step.
  h.process('1')
  h.deliver()
  h.process('2')
  h.process('3')
  h.deliver()
  const s = h.raft('1').status()
  assert.ok(s.commit >= r.index, 'the removal is committed')
  assert.equal(s.role, 'leader', 'committed but not applied: still leading')
  assert.ok(h.propose('1', 'still leading').ok)
  h.process('1') // applies the removal
  assert.equal(h.raft('1').status().role, 'follower')
  assert.deepEqual(h.raft('1').status().conf.voters, ['2', '3'])
  h.stabilize()
  for (const id of ['2', '3']) {
    assert.deepEqual(h.raft(id).status().conf.voters, ['2', '3'], `${id} applied the removal`)
  }
  // The rest elect a new leader; the removed one never campaigns.
  const sentBefore = h.sent.length
  tickUntil(h, ['1', '2', '3'], () => h.leaders().length > 0)
  const [leader] = h.leaders()
  assert.ok(leader === '2' || leader === '3')
  assert.ok(h.raft(leader).status().term > term)
  h.tickAll(50)
  assert.ok(
    !h.sent.slice(sentBefore).some((m) => m.from === '1' && /vote/i.test(m.type)),
    'the removed leader does not campaign',
  )
  h.propose(leader, 'after')
  h.stabilize()
  assert.ok(h.appliedData('2').includes('after'))
})

// ------------------------------------------------------------------ one change at a time

test('§4.1 one change at a time: a second change before the first applies is refused', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  h.addEmpty('5')
  const first = h.raft('1').proposeConfChange({ type: 'addLearner', node: '4' })
  assert.ok(first.ok)
  assert.deepEqual(h.raft('1').proposeConfChange({ type: 'addLearner', node: '5' }), {
    ok: false,
    reason: 'conf_change_pending',
  })
  // Committed is not enough: the first must be applied.
  h.process('1')
  h.deliver()
  h.process('2')
  h.process('3')
  h.deliver()
  assert.ok(h.raft('1').status().commit >= first.index)
  assert.equal(h.raft('1').proposeConfChange({ type: 'addLearner', node: '5' }).ok, false)
  h.stabilize()
  assert.ok(h.raft('1').proposeConfChange({ type: 'addLearner', node: '5' }).ok)
  h.stabilize()
  assert.deepEqual(h.raft('2').status().conf.learners, ['4', '5'])
  assert.deepEqual(
    appliedChanges(h, '2').map((c) => c.node),
    ['4', '5'],
  )
})

test('§4.1 a follower cannot propose a change', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  assert.deepEqual(h.raft('2').proposeConfChange({ type: 'remove', node: '3' }), {
    ok: false,
    reason: 'not_leader',
  })
})

test('§4.1 a fresh leader refuses changes until an entry of its term is applied', () => {
  const h = new Harness(['1', '2', '3'])
  // Votes pass; acks of the new leader's appends are lost, so its empty entry cannot commit.
  h.drop = (m) => m.type === 'appResp'
  h.elect('1')
  assert.equal(h.raft('1').status().role, 'leader')
  assert.ok(h.raft('1').status().commit < h.raft('1').status().lastIndex)
  assert.deepEqual(h.raft('1').proposeConfChange({ type: 'remove', node: '3' }), {
    ok: false,
    reason: 'conf_change_pending',
  })
  assert.ok(h.propose('1', 'normal entries are fine').ok)
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  assert.equal(h.raft('1').status().applied, h.raft('1').status().lastIndex)
  assert.ok(h.raft('1').proposeConfChange({ type: 'remove', node: '3' }).ok)
})

// ------------------------------------------------------------------ joining through a snapshot

test('§4.2.1 a joining server with an empty log receives a snapshot and learns its configuration', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  for (let i = 0; i < 5; i++) h.propose('1', `p${i}`)
  h.stabilize()
  h.addEmpty('4')
  // The leader learns of 4 but nothing reaches it until the leader has compacted.
  h.drop = (m) => m.to === '4'
  change(h, '1', { type: 'addLearner', node: '4' })
  const leader = h.member('1')
  const applied = leader.raft.status().applied
  leader.storage.compact(applied, leader.conf)
  assert.deepEqual(leader.storage.snapshot().conf.learners, ['4'])
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  const snaps = h.sent.filter((m) => m.type === 'snap' && m.to === '4')
  assert.equal(snaps.length, 1)
  assert.equal(snaps[0]?.type === 'snap' && snaps[0].snapshot.index, applied)
  const s4 = h.raft('4').status()
  assert.deepEqual(s4.conf, { voters: ['1', '2', '3'], learners: ['4'] }, 'from the snapshot')
  assert.deepEqual(appliedChanges(h, '4'), [], 'no conf entry was replayed to learn it')
  assert.equal(h.member('4').storage.snapshot().index, applied)
  h.propose('1', 'after')
  h.stabilize()
  assert.deepEqual(h.appliedData('4'), ['after'])
  assert.equal(h.raft('4').status().commit, h.raft('1').status().commit)
})

test('§4.2.1 without compaction a joining server gets the bootstrap snapshot then the log', () => {
  const h = cluster()
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  h.tick('1') // the next heartbeat reaches the newcomer, whose reply starts its catch-up
  h.stabilize()
  const snaps = h.sent.filter((m) => m.type === 'snap' && m.to === '4')
  assert.deepEqual(
    snaps.map((m) => m.type === 'snap' && m.snapshot.index),
    [1],
  )
  assert.deepEqual(h.appliedData('4'), ['a'], 'the log after the snapshot was replayed')
  assert.deepEqual(
    appliedChanges(h, '4'),
    [{ type: 'addLearner', node: '4' }],
    'it learned its membership from the log',
  )
  assert.deepEqual(h.raft('4').status().conf.learners, ['4'])
})

test('§4.1 (trap) a snapshot restored while a conf entry is being applied keeps the snapshot configuration', () => {
  const n = lone()
  const cc = { type: 'conf' as const, data: encodeConfChange({ type: 'addLearner', node: '4' }) }
  n.raft.step(app('2', '1', 2, 1, 1, [{ index: 2, term: 2, ...cc }], 2))
  // The host takes the Ready that applies the conf entry, and before it finishes...
  const rd = n.raft.ready()
  assert.ok(rd)
  assert.deepEqual(
    rd.committedEntries.map((e) => e.index),
    [2],
  )
  n.storage.append(rd.entries)
  // ...a snapshot arrives in which 4 was already promoted.
  const conf = { voters: ['1', '2', '3', '4'], learners: [] }
  n.raft.step({ type: 'snap', from: '2', to: '1', term: 2, snapshot: { index: 10, term: 2, conf } })
  // Applying the older entry must not turn 4 back into a learner in the core, while the
  // host stores the configuration the log gives at index 2 (a crash before the snapshot is
  // persisted must restart from a configuration the log agrees with).
  const stored = n.raft.applyConfChange(decodeConfChange(cc.data), 2)
  assert.deepEqual(stored, { voters: ['1', '2', '3'], learners: ['4'] })
  assert.deepEqual(n.raft.status().conf, conf)
  n.raft.advance(rd)
  drain(n)
  assert.deepEqual(n.raft.status().conf, conf)
})

// ------------------------------------------------------------------ strangers

test('(trap) a heartbeat from a stranger with a commit past our log does not crash the member', () => {
  const h = cluster()
  const last = h.raft('2').status().lastIndex
  // Well formed, from an id outside the configuration, with a huge term and commit: the
  // core clamps the commit to its log (as etcd-io/raft does) instead of asserting on it.
  h.raft('2').step({
    type: 'heartbeat',
    from: 'x9',
    to: '2',
    term: 1e9,
    commit: 1e9,
    ctx: '',
  })
  assert.equal(h.raft('2').status().commit, last)
  assert.equal(h.raft('2').status().lastIndex, last)
})

test('(trap) an append from a stranger commits no further than the entries it matched', () => {
  const h = cluster()
  const s = h.raft('2').status()
  const lastTerm = h.member('2').storage.term(s.lastIndex) as number
  h.raft('2').step(app('x9', '2', 1e9, s.lastIndex, lastTerm, [], 1e9))
  assert.equal(h.raft('2').status().commit, s.lastIndex)
})

test('knowsMember: voters and learners, members being added, not strangers nor removed members', () => {
  const h = cluster()
  h.addEmpty('4')
  // A member with no configuration yet (joining) takes traffic from anyone.
  assert.equal(h.raft('4').knowsMember('1'), true)
  assert.equal(h.raft('4').knowsMember('x9'), true)
  for (const id of ['1', '2', '3']) assert.equal(h.raft('2').knowsMember(id), true, id)
  assert.equal(h.raft('2').knowsMember('x9'), false)
  assert.equal(h.raft('2').knowsMember('4'), false)
  // 2 holds the change adding 4 but has not applied it: 4 is being added.
  h.drop = (m) => m.to === '2' && m.type === 'heartbeat'
  const r = h.raft('1').proposeConfChange({ type: 'addLearner', node: '4' })
  assert.ok(r.ok)
  h.drop = (m) => m.to === '2' && m.type === 'app' && m.entries.length === 0
  h.stabilize()
  assert.equal(h.raft('2').status().lastIndex, r.index)
  assert.ok(h.raft('2').status().applied < r.index, 'the change is applied on 2 too early')
  assert.equal(h.raft('2').knowsMember('4'), true)
  assert.equal(h.raft('2').knowsMember('x9'), false)
  h.drop = () => false
  h.tickAll(2)
  assert.deepEqual(h.raft('2').status().conf.learners, ['4'])
  assert.equal(h.raft('2').knowsMember('4'), true)
  // Once a removal applies, the removed member is a stranger.
  change(h, '1', { type: 'remove', node: '3' })
  h.tickAll(2)
  assert.equal(h.raft('2').knowsMember('3'), false)
  assert.equal(h.raft('1').knowsMember('3'), false)
})
