// Messages from nodes outside the configuration (thesis §4.2.3, and what a hostile or confused
// peer can send): the core drops what a removed node or a stranger says, and still hears the
// nodes a pending change is adding and a leader that joined after the configuration it
// applied (a member that lagged while that leader joined must be able to catch up from it).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, Harness, tickUntil } from './harness.test-helper.ts'
import type { ConfChange, NodeId } from './types.ts'
import { app, drain, lone, messagesOf } from './lone.test-helper.ts'

const HUGE = 2 ** 40

function change(h: Harness, leader: NodeId, cc: ConfChange): number {
  const r = h.raft(leader).proposeConfChange(cc)
  assert.ok(r.ok, `proposeConfChange ${cc.type} ${cc.node}: ${JSON.stringify(r)}`)
  h.stabilize()
  return r.index
}

// ------------------------------------------------------------------ remote input never asserts

test('a heartbeat from a stranger with a huge term and commit is dropped', () => {
  const h = cluster()
  const before = h.raft('2').status()
  h.raft('2').step({ type: 'heartbeat', from: 'x', to: '2', term: HUGE, commit: HUGE, ctx: '' })
  h.raft('1').step({ type: 'heartbeat', from: 'x', to: '1', term: HUGE, commit: HUGE, ctx: '' })
  h.raft('2').step(app('x', '2', HUGE, 2, 1, [], HUGE))
  const after = h.raft('2').status()
  assert.equal(after.term, before.term)
  assert.equal(after.commit, before.commit)
  assert.equal(after.leader, '1')
  assert.equal(h.raft('1').status().role, 'leader')
  h.stabilize()
  assert.ok(!h.sent.some((m) => m.to === 'x'), 'nothing answers a stranger leader')
  h.propose('1', 'still serving')
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'still serving'])
})

test('vote requests and timeoutNow from a stranger change nothing, even without a leader', () => {
  const h = cluster()
  h.drop = cut('1', '3') // 2 loses its leader and starts pre-campaigning, alone
  tickUntil(h, ['2'], () => h.raft('2').status().leader === '')
  const term = h.raft('2').status().term
  const before = h.sent.length
  for (const type of ['vote', 'preVote'] as const)
    h.raft('2').step({
      type,
      from: 'x',
      to: '2',
      term: HUGE,
      index: HUGE,
      logTerm: HUGE,
      transfer: true,
    })
  h.raft('2').step({ type: 'timeoutNow', from: 'x', to: '2', term: HUGE })
  assert.equal(h.raft('2').status().term, term)
  assert.notEqual(h.raft('2').status().role, 'candidate')
  h.drop = () => false
  h.processAll()
  const out = h.sent.slice(before)
  assert.ok(!out.some((m) => m.to === 'x'), 'nothing answers a stranger')
})

// ------------------------------------------------------------------ joiners are heard

test('§4.1 a member hears a node named by a pending conf entry before applying it', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  h.tick('1')
  h.stabilize()
  change(h, '1', { type: 'addVoter', node: '4' })
  // 2 has the next change in its log but has not applied it: 5 is pending there.
  h.addEmpty('5')
  h.drop = (m) => m.to === '5' || (m.from === '1' && m.to === '2' && m.type === 'heartbeat')
  const r = h.raft('1').proposeConfChange({ type: 'addLearner', node: '5' })
  assert.ok(r.ok)
  h.process('1')
  h.deliver() // the append reaches 2 and 3; their acks are queued
  const s2 = h.raft('2').status()
  assert.ok(s2.lastIndex >= r.index && s2.applied < r.index, 'pending on 2')
  assert.ok(h.raft('2').admits({ from: '5', type: 'appResp', term: s2.term }))
  assert.ok(!h.raft('2').admits({ from: '6', type: 'appResp', term: s2.term }))
})

test('§4.1 a lagging member follows a leader that joined after the configuration it applied', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.drop = cut('3')
  h.addEmpty('4')
  change(h, '1', { type: 'addLearner', node: '4' })
  h.tick('1')
  h.stabilize()
  change(h, '1', { type: 'addVoter', node: '4' })
  h.raft('1').transferLeader('4')
  h.stabilize()
  assert.deepEqual(h.leaders(), ['4'])
  h.propose('4', 'from 4')
  h.stabilize()
  // 3 knows nothing of 4, and 4's term is news to it.
  assert.deepEqual(h.raft('3').status().conf.voters, ['1', '2', '3'])
  h.drop = () => false
  tickUntil(h, ['1', '2', '3', '4'], () => h.appliedData('3').includes('from 4'))
  assert.equal(h.raft('3').status().leader, '4')
  assert.deepEqual(h.raft('3').status().conf.voters, ['1', '2', '3', '4'])
  assert.deepEqual(h.leaders(), ['4'])
})

test('a leader unknown to a member that still hears its own leader is ignored', () => {
  const n = lone({ logTerms: [1] })
  n.raft.step({ type: 'heartbeat', from: '2', to: '1', term: 1, commit: 2, ctx: '' })
  drain(n)
  assert.equal(n.raft.status().leader, '2')
  n.raft.step({ type: 'heartbeat', from: '9', to: '1', term: 5, commit: 2, ctx: '' })
  assert.equal(n.raft.status().term, 1)
  assert.equal(n.raft.status().leader, '2')
  assert.deepEqual(messagesOf(drain(n)), [])
  // Once its own leader is silent for an election timeout, the unknown leader is followed.
  for (let i = 0; i < 10; i++) n.raft.tick()
  n.raft.step({ type: 'heartbeat', from: '9', to: '1', term: 5, commit: 2, ctx: '' })
  assert.equal(n.raft.status().term, 5)
  assert.equal(n.raft.status().leader, '9')
})
