// Linearizable reads through ReadIndex (thesis §6.4), leadership transfer (thesis §3.10), and
// the trap of matching replies by arrival order instead of by term and index.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, ELECTION_TICKS, Harness } from './harness.test-helper.ts'
import type { AppendResponse, HeartbeatMessage, Message, NodeId } from './types.ts'

// ------------------------------------------------------------------ helpers

function appResps(msgs: readonly Message[], from: NodeId): AppendResponse[] {
  return msgs.filter((m): m is AppendResponse => m.type === 'appResp' && m.from === from)
}

// ------------------------------------------------------------------ ReadIndex

test('§6.4 the leader releases a read only after a heartbeat round acknowledged by a majority', () => {
  const h = cluster()
  const commit = h.raft('1').status().commit
  assert.equal(h.raft('1').readIndex('r1'), true)
  h.process('1')
  const beats = h.queue.filter((m) => m.type === 'heartbeat' && m.ctx !== '')
  assert.deepEqual(beats.map((m) => m.to).sort(), ['2', '3'])
  assert.deepEqual(h.member('1').readStates, [], 'the leader alone is no majority')
  // Only 2 answers: with the leader that makes two of three.
  const held = h.queue.filter((m) => m.to === '3')
  h.queue = h.queue.filter((m) => m.to !== '3')
  h.deliver()
  h.process('2')
  assert.deepEqual(h.member('1').readStates, [])
  h.deliver()
  h.process('1')
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'r1' }])
  // 3's late acknowledgement releases nothing more.
  h.queue = held
  h.stabilize()
  assert.equal(h.member('1').readStates.length, 1)
})

/** followersOf are the members of h other than the leader '1'. */
function followersOf(h: Harness): NodeId[] {
  return [...h.members.keys()].filter((id) => id !== '1').sort()
}

/** sentRound takes the heartbeats of the ReadIndex round the leader '1' sent off the queue:
 * one per follower, all with the same round id. */
function sentRound(h: Harness): HeartbeatMessage[] {
  const round = h.queue.filter((m): m is HeartbeatMessage => m.type === 'heartbeat' && m.ctx !== '')
  assert.deepEqual(round.map((m) => m.to).sort(), followersOf(h), 'one heartbeat per follower')
  assert.equal(new Set(round.map((m) => m.ctx)).size, 1)
  h.queue = h.queue.filter((m) => !(round as Message[]).includes(m))
  return round
}

/** roundAcks delivers round to the followers and takes their acknowledgements off the
 * queue (one per follower), undelivered. */
function roundAcks(h: Harness, round: readonly HeartbeatMessage[]): Message[] {
  for (const m of round) {
    h.raft(m.to).step(m)
    h.process(m.to)
  }
  const acks = h.queue.filter((m) => m.type === 'heartbeatResp' && m.ctx === round[0]?.ctx)
  assert.equal(acks.length, round.length)
  h.queue = []
  return acks
}

/** ackRound delivers round to the followers and their acknowledgements to the leader '1',
 * then runs its Ready: what the round confirmed is in its readStates. */
function ackRound(h: Harness, round: readonly HeartbeatMessage[]): void {
  for (const m of roundAcks(h, round)) h.raft('1').step(m)
  h.process('1')
}

/** fiveMembers is a 5-voter cluster led by '1', with one entry committed. */
function fiveMembers(): Harness {
  const h = new Harness(['1', '2', '3', '4', '5'])
  h.elect('1')
  h.propose('1', 'a')
  h.stabilize()
  return h
}

/** askFrom delivers a ReadIndex request from follower `from` (ctx) to the leader '1'. */
function askFrom(h: Harness, from: NodeId, ctx: string): void {
  h.raft('1').step({ type: 'readIndex', from, to: '1', term: h.raft('1').status().term, ctx })
}

test("§6.4 with 3 voters a follower's request is answered at once: the requester and the leader are a quorum", () => {
  const h = cluster()
  const commit = h.raft('1').status().commit
  askFrom(h, '2', 'f')
  h.process('1')
  assert.deepEqual(
    h.queue.filter((m) => m.type === 'heartbeat'),
    [],
    'no heartbeat round',
  )
  assert.deepEqual(
    h.queue
      .filter((m) => m.type === 'readIndexResp')
      .map((m) => ({ to: m.to, ctx: m.ctx, index: m.index, reject: m.reject })),
    [{ to: '2', ctx: 'f', index: commit, reject: false }],
  )
  // The leader's own read still needs a follower's acknowledgement.
  assert.equal(h.raft('1').readIndex('a'), true)
  h.process('1')
  assert.deepEqual(h.member('1').readStates, [])
  ackRound(h, sentRound(h))
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'a' }])
})

test("§6.4 with 5 voters a follower's request waits for a round; requests that arrive before it goes out share it, a later one waits for the next", () => {
  const h = fiveMembers()
  const commit = h.raft('1').status().commit
  // Two requests (a follower's and the leader's own) before the leader's next Ready: one
  // heartbeat round for both. The requester and the leader are no quorum of 5.
  askFrom(h, '2', 'f')
  assert.equal(h.raft('1').readIndex('a'), true)
  h.process('1')
  assert.ok(!h.queue.some((m) => m.type === 'readIndexResp'), 'not answered before the round')
  const round = sentRound(h)
  // A request after the round went out: its acknowledgements must not confirm it.
  assert.equal(h.raft('1').readIndex('b'), true)
  ackRound(h, round)
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'a' }])
  assert.ok(
    h.queue.some((m) => m.type === 'readIndexResp' && m.to === '2' && m.ctx === 'f'),
    'the follower is answered by the same round',
  )
  // 'b' goes with the next round, sent with that Ready: released once it is acknowledged.
  h.stabilize()
  assert.deepEqual(
    h.member('1').readStates.map((r) => r.ctx),
    ['a', 'b'],
  )
})

test("§6.4 (trap) with 5 voters the requester's own request does not count toward the round it shares", () => {
  // The leader's read 'a' may have arrived after follower 2 sent its request: 2's request
  // says nothing of 'a'. The round needs 2 acknowledgements besides the leader's, whoever
  // asked.
  const h = fiveMembers()
  const commit = h.raft('1').status().commit
  assert.equal(h.raft('1').readIndex('a'), true)
  askFrom(h, '2', 'f')
  h.process('1')
  const acks = roundAcks(h, sentRound(h))
  const ack = (from: NodeId): void => {
    const m = acks.find((x) => x.from === from)
    assert.ok(m)
    h.raft('1').step(m)
    h.process('1')
  }
  ack('3')
  assert.deepEqual(h.member('1').readStates, [], 'the leader and 3 are 2 of 5')
  assert.ok(!h.queue.some((m) => m.type === 'readIndexResp'))
  ack('4')
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'a' }])
  assert.ok(h.queue.some((m) => m.type === 'readIndexResp' && m.to === '2' && m.ctx === 'f'))
})

test("§6.4 with 2 voters the other voter's request is answered at once", () => {
  const h = new Harness(['1', '2'])
  h.elect('1')
  h.propose('1', 'a')
  h.stabilize()
  const commit = h.raft('1').status().commit
  askFrom(h, '2', 'f')
  h.process('1')
  assert.ok(!h.queue.some((m) => m.type === 'heartbeat'), 'no heartbeat round')
  assert.ok(
    h.queue.some(
      (m) => m.type === 'readIndexResp' && m.to === '2' && m.ctx === 'f' && m.index === commit,
    ),
  )
})

test('§6.4 (trap) a request from a learner, or from an older term, is no acknowledgement', () => {
  const h = cluster()
  const term = h.raft('1').status().term
  // A request from the leader's previous term is dropped (step) before the leader looks at
  // it: the shortcut never sees it (this guards step, not handleReadIndex).
  h.raft('1').step({ type: 'readIndex', from: '2', to: '1', term: term - 1, ctx: 'old' })
  h.process('1')
  assert.ok(!h.queue.some((m) => m.type === 'readIndexResp'))
  // A learner counts for nothing: its request waits for a round of the voters.
  h.addEmpty('4')
  assert.ok(h.raft('1').proposeConfChange({ type: 'addLearner', node: '4' }).ok)
  h.stabilize()
  h.queue = []
  askFrom(h, '4', 'l')
  h.process('1')
  assert.ok(!h.queue.some((m) => m.type === 'readIndexResp'), 'not answered before the round')
  h.stabilize()
  assert.ok(h.sent.some((m) => m.type === 'readIndexResp' && m.to === '4' && m.ctx === 'l'))
})

test('§6.4 (trap) a request that arrives while the Ready carrying a round is outstanding is not confirmed by that round', () => {
  const h = cluster()
  const commit = h.raft('1').status().commit
  assert.equal(h.raft('1').readIndex('a'), true)
  let asked = false
  // The host is still writing the Ready whose heartbeats carry a's round when 'b' arrives.
  h.process('1', {
    send: () => {
      if (!asked) asked = h.raft('1').readIndex('b')
    },
  })
  assert.ok(asked)
  ackRound(h, sentRound(h))
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'a' }])
  h.stabilize()
  assert.deepEqual(
    h.member('1').readStates.map((r) => r.ctx),
    ['a', 'b'],
  )
})

test('§6.4 (trap) a delayed reply to an older round never confirms a read that reuses its ctx', () => {
  const h = cluster()
  assert.equal(h.raft('1').readIndex('same'), true)
  h.stabilize()
  assert.equal(h.member('1').readStates.length, 1)
  const oldReplies = h.sent.filter((m) => m.type === 'heartbeatResp' && m.ctx !== '')
  assert.ok(oldReplies.length >= 2)
  // The followers are cut off; the requester reuses its ctx (as after a restart).
  h.drop = cut('2', '3')
  assert.equal(h.raft('1').readIndex('same'), true)
  h.stabilize()
  // The old round's replies arrive late: they must not confirm the new read.
  for (const m of oldReplies) h.raft('1').step(m)
  h.processAll()
  assert.equal(h.member('1').readStates.length, 1, 'no read released without a fresh quorum')
})

test('§6.4 a read index is the commit index when the request arrived', () => {
  const h = cluster()
  const commit = h.raft('1').status().commit
  h.raft('1').readIndex('r')
  h.drop = (m) => m.type === 'heartbeatResp' // hold the confirmation back
  h.stabilize()
  h.propose('1', 'b')
  h.stabilize()
  assert.ok(h.raft('1').status().commit > commit)
  h.drop = () => false
  h.tick('1') // the heartbeat repeats the pending ctx
  h.stabilize()
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'r' }])
})

test('§6.4 a follower reads through the leader', () => {
  const h = cluster()
  const commit = h.raft('1').status().commit
  assert.equal(h.raft('2').readIndex('f1'), true)
  h.stabilize()
  assert.ok(h.sent.some((m) => m.type === 'readIndex' && m.from === '2' && m.to === '1'))
  assert.deepEqual(h.member('2').readStates, [{ index: commit, ctx: 'f1' }])
  assert.deepEqual(h.member('1').readStates, [], 'the leader does not release it locally')
  assert.ok(h.raft('2').status().applied >= commit, 'the follower can serve it now')
})

test('§6.4 a member that knows no leader refuses a read at once', () => {
  const h = new Harness(['1', '2', '3'])
  assert.equal(h.raft('2').readIndex('x'), false)
})

test('§6.4 no read is released before the leader commits an entry of its term', () => {
  const h = new Harness(['1', '2', '3'])
  h.drop = (m) => m.type === 'appResp' // the new leader's empty entry cannot commit
  h.elect('1')
  const s = h.raft('1').status()
  assert.equal(s.role, 'leader')
  assert.ok(s.commit < s.lastIndex)
  h.raft('1').readIndex('early')
  h.raft('2').readIndex('early-f')
  h.stabilize()
  assert.deepEqual(h.member('1').readStates, [])
  assert.deepEqual(h.member('2').readStates, [])
  assert.ok(
    !h.sent.some((m) => m.type === 'heartbeat' && m.ctx !== ''),
    'no read round starts before the commit',
  )
  h.drop = () => false
  h.tick('1')
  h.stabilize()
  const commit = h.raft('1').status().commit
  assert.equal(h.raft('1').status().commit, h.raft('1').status().lastIndex)
  assert.deepEqual(h.member('1').readStates, [{ index: commit, ctx: 'early' }])
  assert.deepEqual(h.member('2').readStates, [{ index: commit, ctx: 'early-f' }])
})

test('§6.4 a leader cut off in a minority never releases a read', () => {
  for (const checkQuorum of [true, false]) {
    const h = cluster({ checkQuorum })
    h.drop = cut('1')
    h.raft('1').readIndex('r')
    // The majority moves on: a new leader commits a write the old one has not seen.
    let newLeader: NodeId | undefined
    for (let i = 0; i < 5 * ELECTION_TICKS; i++) {
      h.tickAll()
      newLeader ??= h.leaders().find((id) => id !== '1')
      if (newLeader && i % 10 === 0) h.propose(newLeader, `b${i}`)
    }
    assert.ok(newLeader, `checkQuorum ${checkQuorum}: the majority elected a leader`)
    assert.ok(h.appliedData(newLeader).length > 1)
    assert.deepEqual(h.member('1').readStates, [], `checkQuorum ${checkQuorum}`)
    // Healing brings the newer term to 1; the stale read is still never released.
    h.drop = () => false
    h.tickAll(2 * ELECTION_TICKS)
    assert.deepEqual(h.member('1').readStates, [], `checkQuorum ${checkQuorum} after healing`)
    assert.notEqual(h.raft('1').status().role, 'leader')
  }
})

test('§6.4 a pending read is dropped, not answered, when its leader is deposed', () => {
  const h = cluster()
  h.drop = (m) => m.type === 'heartbeatResp'
  h.raft('1').readIndex('r')
  h.stabilize()
  // A newer term reaches the leader before the confirmation does.
  h.raft('1').step({ type: 'heartbeat', from: '2', to: '1', term: 99, commit: 0, ctx: '' })
  h.drop = () => false
  h.queue = []
  h.stabilize()
  assert.equal(h.raft('1').status().role, 'follower')
  // Late confirmations of the old round arrive.
  for (const id of ['2', '3']) {
    h.raft('1').step({ type: 'heartbeatResp', from: id, to: '1', term: 99, ctx: 'r' })
  }
  h.process('1')
  assert.deepEqual(h.member('1').readStates, [])
})

// ------------------------------------------------------------------ leadership transfer

test('§3.10 transfer: a lagging target is brought up to date before TimeoutNow', () => {
  const h = cluster()
  h.drop = cut('3')
  for (let i = 0; i < 3; i++) h.propose('1', `p${i}`)
  h.stabilize()
  h.drop = () => false
  const last = h.raft('1').status().lastIndex
  assert.ok(h.raft('3').status().lastIndex < last)
  const from = h.sent.length
  h.raft('1').transferLeader('3')
  h.stabilize()
  const flow = h.sent.slice(from)
  const timeoutAt = flow.findIndex((m) => m.type === 'timeoutNow')
  assert.ok(timeoutAt >= 0, 'TimeoutNow was sent')
  assert.equal(flow[timeoutAt]?.to, '3')
  const caughtUp = flow.findIndex(
    (m) => m.type === 'appResp' && m.from === '3' && !m.reject && m.index === last,
  )
  assert.ok(caughtUp >= 0 && caughtUp < timeoutAt, 'only once 3 acknowledged the whole log')
  assert.equal(flow.filter((m) => m.type === 'timeoutNow').length, 1)
  assert.deepEqual(h.leaders(), ['3'])
  assert.deepEqual(h.appliedData('3'), ['a', 'p0', 'p1', 'p2'])
})

test('§3.10 the target campaigns at once, without pre-vote, and wins despite leader stickiness', () => {
  const h = cluster() // pre-vote and check-quorum on: followers are in their lease
  const term = h.raft('1').status().term
  const from = h.sent.length
  h.raft('1').transferLeader('2')
  h.stabilize()
  const flow = h.sent.slice(from)
  assert.ok(!flow.some((m) => m.type === 'preVote'), 'no pre-vote round')
  const votes = flow.filter((m) => m.type === 'vote' && m.from === '2')
  assert.ok(votes.length > 0 && votes.every((m) => m.type === 'vote' && m.transfer))
  assert.ok(
    flow.some((m) => m.type === 'voteResp' && m.from === '3' && !m.reject),
    '3 granted although it had just heard from 1',
  )
  assert.deepEqual(h.leaders(), ['2'])
  assert.equal(h.raft('2').status().term, term + 1)
  h.propose('2', 'b')
  h.stabilize()
  assert.deepEqual(h.appliedData('1'), ['a', 'b'])
})

test('§3.10 a target without the transfer flag is refused by followers in their lease', () => {
  // The contrast: the same immediate campaign, not marked as a transfer, is ignored.
  const h = cluster()
  const term = h.raft('1').status().term
  h.raft('2').step({ type: 'timeoutNow', from: '1', to: '2', term })
  h.stabilize()
  assert.deepEqual(h.leaders(), ['2'], 'timeoutNow from the leader: transfer election')
  const h2 = cluster()
  const from = h2.sent.length
  h2.raft('2').campaign() // an ordinary campaign: pre-vote, ignored while the leader is heard
  h2.stabilize()
  assert.ok(h2.sent.slice(from).some((m) => m.type === 'preVote'))
  assert.deepEqual(h2.leaders(), ['1'])
  assert.equal(h2.raft('1').status().term, term)
})

test('§3.10 proposals are refused while a transfer is in progress', () => {
  const h = cluster()
  h.drop = cut('3') // the target cannot catch up, so the transfer stays in progress
  h.propose('1', 'b')
  h.stabilize()
  h.raft('1').transferLeader('3')
  assert.equal(h.raft('1').status().leadTransferee, '3')
  assert.deepEqual(h.propose('1', 'c'), { ok: false, reason: 'transferring' })
  assert.deepEqual(h.raft('1').proposeConfChange({ type: 'remove', node: '2' }), {
    ok: false,
    reason: 'transferring',
  })
})

test('§3.10 a target that ignored TimeoutNow (a committed conf change unapplied) gets it again with the next heartbeat reply', () => {
  const h = cluster({ lazyCommitNotice: true })
  // A learner that never answers: 1 commits its entry with 2's and 3's acks and, with lazy
  // notices, does not tell them yet.
  assert.ok(h.raft('1').proposeConfChange({ type: 'addLearner', node: '4' }).ok)
  h.processAll()
  h.deliver() // the appends
  h.processAll()
  h.deliver() // the acks: committed on 1
  h.processAll()
  const confIndex = h.raft('1').status().lastIndex
  assert.equal(h.raft('1').status().commit, confIndex)
  assert.ok(h.raft('2').status().commit < confIndex, '2 was not told')
  const from = h.sent.length
  h.raft('1').transferLeader('2')
  h.processAll()
  // The commit notice and TimeoutNow reach 2 together: it learns the conf change committed
  // but has not applied it, so it may not campaign.
  h.deliver()
  assert.equal(h.raft('2').status().role, 'follower')
  h.stabilize()
  assert.deepEqual(h.leaders(), ['1'])
  assert.equal(h.sent.slice(from).filter((m) => m.type === 'timeoutNow').length, 1)
  // 2 has applied it now; the next heartbeat's reply brings TimeoutNow again.
  for (let t = 0; t < ELECTION_TICKS && h.leaders()[0] !== '2'; t++) {
    h.tick('1')
    h.stabilize()
  }
  assert.deepEqual(h.leaders(), ['2'])
  assert.equal(h.raft('1').status().leadTransferee, '')
})

test('§3.10 a transfer to a target that is down is abandoned after an election timeout', () => {
  const h = cluster()
  const term = h.raft('1').status().term
  h.drop = cut('3')
  h.propose('1', 'b')
  h.stabilize()
  h.raft('1').transferLeader('3')
  let ticks = 0
  while (h.raft('1').status().leadTransferee !== '') {
    h.tick('1')
    h.stabilize()
    ticks++
    assert.ok(ticks <= ELECTION_TICKS, 'still transferring after an election timeout')
  }
  assert.equal(ticks, ELECTION_TICKS)
  assert.equal(h.raft('1').status().role, 'leader')
  assert.equal(h.raft('1').status().term, term)
  assert.ok(h.propose('1', 'c').ok, 'proposals resume')
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'b', 'c'])
})

test('§3.10 a follower forwards a transfer request to its leader', () => {
  const h = cluster()
  h.raft('2').transferLeader('3')
  h.stabilize()
  assert.ok(h.sent.some((m) => m.type === 'transferLeader' && m.from === '2' && m.to === '1'))
  assert.deepEqual(h.leaders(), ['3'])
})

test('§3.10 a transfer to a learner or to itself is ignored', () => {
  const h = cluster()
  h.addEmpty('4')
  assert.ok(h.raft('1').proposeConfChange({ type: 'addLearner', node: '4' }).ok)
  h.stabilize()
  h.raft('1').transferLeader('4')
  assert.equal(h.raft('1').status().leadTransferee, '')
  h.raft('1').transferLeader('1')
  assert.equal(h.raft('1').status().leadTransferee, '')
  h.stabilize()
  assert.deepEqual(h.leaders(), ['1'])
})

// ------------------------------------------------------------------ matching replies

test('(trap) replies are matched by term and index, not arrival order: delayed old acks and rejections change nothing', () => {
  const h = cluster()
  const leader = h.raft('1')
  const term = leader.status().term
  const oldAck = appResps(h.sent, '2')
    .filter((m) => !m.reject)
    .at(0)
  assert.ok(oldAck)
  // 2 drops off, misses entries, comes back and is repaired; its rejection during the repair
  // is recorded too.
  h.drop = cut('2')
  for (let i = 0; i < 3; i++) h.propose('1', `p${i}`)
  h.stabilize()
  h.drop = () => false
  const from = h.sent.length
  h.tick('1')
  h.stabilize()
  const oldReject = appResps(h.sent.slice(from), '2').find((m) => m.reject)
  assert.ok(oldReject, 'the repair went through a rejection')
  const before = leader.status().progress.get('2')
  assert.deepEqual([before?.match, before?.state], [leader.status().lastIndex, 'replicate'])

  // Now the network delivers the old replies late, and a reply from an older term.
  leader.step(oldAck)
  leader.step(oldReject)
  leader.step({ ...oldAck, term: term - 1, index: leader.status().lastIndex + 5 })
  assert.deepEqual(leader.status().progress.get('2'), before, 'progress unchanged')
  const rd = leader.ready()
  if (rd) {
    assert.ok(!rd.messages.some((m) => m.type === 'app' && m.to === '2'), 'no spurious resend')
    h.member('1').storage.append(rd.entries)
    leader.advance(rd)
  }
  h.propose('1', 'after')
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'p0', 'p1', 'p2', 'after'])
})

test('(trap) an ack from an older term does not count toward commit', () => {
  const h = cluster()
  const leader = h.raft('1')
  const term = leader.status().term
  h.drop = cut('2', '3')
  const p = h.propose('1', 'p')
  assert.ok(p.ok)
  h.stabilize()
  // An ack for the new index, but sent in an older term (say, to this member's previous
  // leadership, for an entry since replaced): it must not commit p.
  for (const id of ['2', '3']) {
    leader.step({
      type: 'appResp',
      from: id,
      to: '1',
      term: term - 1,
      index: p.index,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    })
  }
  assert.ok(leader.status().commit < p.index)
  assert.ok((leader.status().progress.get('2')?.match ?? 0) < p.index)
})

test('§3.10 (trap) repeated transfer requests do not keep a cut-off leader from stepping down', () => {
  const h = cluster()
  h.drop = cut('1')
  for (let i = 0; i < 3 * ELECTION_TICKS && h.raft('1').status().role === 'leader'; i++) {
    h.raft('1').transferLeader(i % 2 === 0 ? '2' : '3')
    h.raft('1').tick()
    h.processAll()
    h.queue = []
  }
  assert.notEqual(h.raft('1').status().role, 'leader', 'check-quorum still applies')
})
