// Elections (Raft §5.2, §5.4.1) and the thesis's additions that keep them from disturbing a
// healthy cluster: pre-vote (§9.6), check-quorum and leader stickiness (§6.2, §4.2.3). Single
// members are driven with crafted messages; multi-node flows use the harness.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, ELECTION_TICKS, Harness, tickUntil } from './harness.test-helper.ts'
import {
  blankEntry,
  drain,
  lone,
  messagesOf,
  type Lone,
  type LoneOptions,
} from './lone.test-helper.ts'
import type { Raft } from './raft.ts'
import type { Message, NodeId, VoteResponse } from './types.ts'

// ------------------------------------------------------------------ helpers

function voteReq(
  from: NodeId,
  to: NodeId,
  term: number,
  index: number,
  logTerm: number,
  type: 'vote' | 'preVote' = 'vote',
  transfer = false,
): Message {
  return { type, from, to, term, index, logTerm, transfer }
}

function voteResp(
  from: NodeId,
  to: NodeId,
  term: number,
  reject: boolean,
  type: 'voteResp' | 'preVoteResp' = 'voteResp',
): Message {
  return { type, from, to, term, reject }
}

function heartbeat(from: NodeId, to: NodeId, term: number): Message {
  return { type: 'heartbeat', from, to, term, commit: 1, ctx: '' }
}

/** responses lists the vote responses among messages. */
function voteResponses(msgs: readonly Message[]): VoteResponse[] {
  return msgs.filter((m): m is VoteResponse => m.type === 'voteResp' || m.type === 'preVoteResp')
}

/** ticksToCampaign ticks until the member leaves the follower role; returns the tick count. */
function ticksToCampaign(r: Raft, max = 100): number {
  for (let i = 1; i <= max; i++) {
    r.tick()
    if (r.status().role !== 'follower') return i
  }
  throw new Error(`no campaign within ${max} ticks`)
}

/** leaderOf makes a lone 3-voter member leader of term 2 (no pre-vote, one granted vote). */
function leaderOf(o: LoneOptions = {}): Lone {
  const n = lone({ preVote: false, ...o })
  n.raft.campaign()
  const term = n.raft.status().term
  n.raft.step(voteResp('2', n.raft.id, term, false))
  assert.equal(n.raft.status().role, 'leader')
  drain(n)
  return n
}

/** removalNeverCommitsOn lets `id` receive the append carrying a conf entry and nothing else. */
function removalNeverCommitsOn(id: NodeId): (m: Message) => boolean {
  return (m) => m.to === id && !(m.type === 'app' && m.entries.some((e) => e.type === 'conf'))
}

// ------------------------------------------------------------------ §5.2 basic election

test('§5.2 a follower that hears nothing for its election timeout becomes a candidate', () => {
  const n = lone({ preVote: false })
  const ticks = ticksToCampaign(n.raft)
  assert.ok(
    ticks >= ELECTION_TICKS && ticks < 2 * ELECTION_TICKS,
    `timeout ${ticks} outside [${ELECTION_TICKS}, ${2 * ELECTION_TICKS})`,
  )
  const s = n.raft.status()
  assert.equal(s.role, 'candidate')
  assert.equal(s.term, 2, 'it increments its term')
  assert.equal(s.vote, '1', 'it votes for itself')
  const readies = drain(n)
  const votes = messagesOf(readies).filter((m) => m.type === 'vote')
  assert.deepEqual(
    votes.map((m) => m.to).sort(),
    ['2', '3'],
    'it asks every other voter for its vote',
  )
  for (const m of votes) {
    assert.equal(m.term, 2)
    assert.ok(m.type === 'vote' && m.index === 1 && m.logTerm === 1, 'it sends its last entry')
  }
})

test('§5.2 a follower does not campaign before its minimum election timeout', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const n = lone({ preVote: false, seed })
    for (let i = 1; i < ELECTION_TICKS; i++) n.raft.tick()
    assert.equal(n.raft.status().role, 'follower', `seed ${seed}`)
    assert.equal(n.raft.status().term, 1, `seed ${seed}`)
  }
})

test('§5.2 a candidate that wins a majority becomes leader and sends appends at once', () => {
  const n = lone({ preVote: false })
  n.raft.campaign()
  drain(n)
  assert.equal(n.raft.status().role, 'candidate')
  n.raft.step(voteResp('3', '1', 2, false))
  assert.equal(n.raft.status().role, 'leader')
  assert.equal(n.raft.status().leader, '1')
  const apps = messagesOf(drain(n)).filter((m) => m.type === 'app')
  assert.deepEqual(apps.map((m) => m.to).sort(), ['2', '3'])
})

test('§5.2 a candidate that hears from a leader of its own term steps down', () => {
  const n = lone({ preVote: false })
  n.raft.campaign()
  drain(n)
  n.raft.step({
    type: 'app',
    from: '3',
    to: '1',
    term: 2,
    index: 1,
    logTerm: 1,
    entries: [],
    commit: 1,
  })
  const s = n.raft.status()
  assert.equal(s.role, 'follower')
  assert.equal(s.leader, '3')
  assert.equal(s.term, 2)
  assert.equal(s.vote, '1', 'its vote of this term stands')
})

test('§5.2 a candidate refused by a majority goes back to follower in the same term', () => {
  const n = lone({ preVote: false })
  n.raft.campaign()
  drain(n)
  n.raft.step(voteResp('2', '1', 2, true))
  assert.equal(n.raft.status().role, 'candidate', 'one refusal of three decides nothing')
  n.raft.step(voteResp('3', '1', 2, true))
  assert.equal(n.raft.status().role, 'follower')
  assert.equal(n.raft.status().term, 2)
})

test('§5.2 a split vote times out and a new election at a higher term elects one leader', () => {
  const h = new Harness(['1', '2', '3'])
  h.drop = cut('3')
  h.raft('1').campaign()
  h.raft('2').campaign()
  h.stabilize()
  for (const id of ['1', '2']) {
    assert.equal(h.raft(id).status().role, 'candidate', `${id} is a candidate`)
    assert.equal(h.raft(id).status().term, 2)
  }
  assert.deepEqual(h.leaders(), [], 'the vote is split')
  const ticks = tickUntil(h, ['1', '2'], () => h.leaders().length > 0)
  assert.ok(ticks < 2 * ELECTION_TICKS, `retried within one maximum timeout (${ticks} ticks)`)
  const [leader] = h.leaders()
  assert.ok(leader === '1' || leader === '2')
  assert.equal(h.raft(leader).status().term, 3, 'the retry ran at the next term and won')
})

test('§5.2 election timeouts are re-randomized on every election (trap: repeated split votes)', () => {
  // A member that can never win campaigns again and again; each round must draw a fresh
  // timeout in [electionTicks, 2 * electionTicks), or two such members would stay in step.
  for (const preVote of [true, false]) {
    const n = lone({ preVote })
    const intervals: number[] = []
    let since = 0
    for (let i = 0; intervals.length < 30; i++) {
      n.raft.tick()
      since++
      const msgs = messagesOf(drain(n))
      if (msgs.some((m) => m.type === 'vote' || m.type === 'preVote')) {
        intervals.push(since)
        since = 0
      }
    }
    for (const t of intervals) {
      assert.ok(t >= ELECTION_TICKS && t < 2 * ELECTION_TICKS, `interval ${t} (preVote ${preVote})`)
    }
    const distinct = new Set(intervals).size
    assert.ok(distinct >= 4, `only ${distinct} distinct timeouts in 30 rounds (preVote ${preVote})`)
  }
})

test('§5.2 becoming a follower of a new term re-draws the election timeout', () => {
  // After each reset to follower the timeout must be a new draw, not the one the member was
  // constructed with.
  const n = lone({ preVote: false })
  const first = ticksToCampaign(n.raft)
  const draws: number[] = [first]
  for (let term = 3; term < 40; term++) {
    // A newer term resets the member to follower.
    n.raft.step(heartbeat('2', '1', term))
    drain(n)
    // Stop hearing from the leader: the next timeout runs from here.
    draws.push(ticksToCampaign(n.raft))
    drain(n)
  }
  assert.ok(new Set(draws).size >= 4, `timeouts ${draws.join(',')} were not re-drawn`)
})

test('§5.2 a refused vote does not reset the election timer (trap: a node never campaigns)', () => {
  // Three identical members (same seed, same log). One refuses a stale candidate after 5
  // ticks; one grants an up-to-date candidate after 5 ticks. Only the grant may delay it.
  const opts: LoneOptions = { preVote: false, logTerms: [2, 2], term: 2, makeEntry: blankEntry }
  const control = lone(opts)
  const refusing = lone(opts)
  const granting = lone(opts)
  for (const n of [control, refusing, granting]) for (let i = 0; i < 5; i++) n.raft.tick()

  refusing.raft.step(voteReq('2', '1', 2, 1, 1)) // shorter log: not up to date
  const refused = voteResponses(messagesOf(drain(refusing)))
  assert.equal(refused.length, 1)
  assert.equal(refused[0]?.reject, true)

  granting.raft.step(voteReq('2', '1', 2, 3, 2))
  const granted = voteResponses(messagesOf(drain(granting)))
  assert.equal(granted[0]?.reject, false)

  const controlTicks = ticksToCampaign(control.raft)
  assert.equal(ticksToCampaign(refusing.raft), controlTicks, 'the refusal left the timer alone')
  assert.equal(ticksToCampaign(granting.raft), controlTicks + 5, 'a granted vote resets the timer')
})

// ------------------------------------------------------------------ terms

test('§5.1 a request with a higher term makes a leader a follower of that term', () => {
  const n = leaderOf()
  n.raft.step(heartbeat('3', '1', 5))
  const s = n.raft.status()
  assert.equal(s.role, 'follower')
  assert.equal(s.term, 5)
  assert.equal(s.leader, '3', 'a heartbeat names the new leader')
  assert.equal(s.vote, '', 'the vote of the old term is gone')
})

test('§5.1 a reply with a higher term makes a leader or candidate a follower of that term', () => {
  const replies: Message[] = [
    {
      type: 'appResp',
      from: '2',
      to: '1',
      term: 7,
      index: 0,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    },
    { type: 'heartbeatResp', from: '2', to: '1', term: 7, ctx: '' },
    voteResp('2', '1', 7, true),
  ]
  for (const reply of replies) {
    const n = leaderOf()
    n.raft.step(reply)
    const s = n.raft.status()
    assert.equal(s.role, 'follower', `leader after ${reply.type}`)
    assert.equal(s.term, 7, `leader after ${reply.type}`)
    assert.equal(n.raft.propose(new Uint8Array([1])).ok, false)
  }
  const candidate = lone({ preVote: false })
  candidate.raft.campaign()
  candidate.raft.step(voteResp('2', '1', 7, true))
  assert.equal(candidate.raft.status().role, 'follower')
  assert.equal(candidate.raft.status().term, 7)

  const preCandidate = lone({ preVote: true })
  preCandidate.raft.campaign()
  assert.equal(preCandidate.raft.status().role, 'preCandidate')
  preCandidate.raft.step(voteResp('2', '1', 7, true, 'preVoteResp'))
  assert.equal(preCandidate.raft.status().role, 'follower')
  assert.equal(preCandidate.raft.status().term, 7)
})

test('§5.1 a vote request with a higher term raises the term even when the vote is refused', () => {
  const n = lone({ logTerms: [2, 2], term: 2, makeEntry: blankEntry })
  n.raft.step(voteReq('2', '1', 6, 1, 1)) // stale log
  const resp = voteResponses(messagesOf(drain(n)))
  assert.equal(resp[0]?.reject, true)
  assert.equal(n.raft.status().term, 6)
  assert.equal(n.raft.status().vote, '')
})

// ------------------------------------------------------------------ one vote per term

test('§5.2 a server grants at most one vote per term', () => {
  const n = lone()
  n.raft.step(voteReq('2', '1', 2, 1, 1))
  n.raft.step(voteReq('3', '1', 2, 1, 1))
  n.raft.step(voteReq('2', '1', 2, 1, 1)) // a retry by the same candidate
  const resps = voteResponses(messagesOf(drain(n)))
  assert.deepEqual(
    resps.map((m) => [m.to, m.reject]),
    [
      ['2', false],
      ['3', true],
      ['2', false],
    ],
  )
  assert.equal(n.raft.status().vote, '2')
})

test('§5.2 the one-vote test fails on a core that votes twice (testOnlyBugs.voteTwice)', () => {
  const n = lone({ testOnlyBugs: { voteTwice: true } })
  n.raft.step(voteReq('2', '1', 2, 1, 1))
  n.raft.step(voteReq('3', '1', 2, 1, 1))
  const resps = voteResponses(messagesOf(drain(n)))
  assert.deepEqual(
    resps.map((m) => m.reject),
    [false, false],
    'the bug grants both: the test above would catch it',
  )
})

test('§5.2 term and vote are persisted before the vote is answered (same Ready)', () => {
  const n = lone()
  n.raft.step(voteReq('2', '1', 2, 1, 1))
  const readies = drain(n)
  assert.equal(readies.length, 1)
  const [rd] = readies
  assert.ok(rd)
  assert.deepEqual(rd.hardState, { term: 2, vote: '2', commit: 1 })
  assert.equal(rd.mustSync, true, 'a new vote must be fsynced')
  const resp = voteResponses(rd.messages)
  assert.equal(resp.length, 1)
  assert.equal(resp[0]?.reject, false)
})

test('§5.2 a candidate persists its new term and self-vote in the Ready that asks for votes', () => {
  const n = lone({ preVote: false })
  n.raft.campaign()
  const [rd] = drain(n)
  assert.ok(rd)
  assert.deepEqual(rd.hardState, { term: 2, vote: '1', commit: 1 })
  assert.equal(rd.mustSync, true)
  assert.equal(rd.messages.filter((m) => m.type === 'vote').length, 2)
})

// ------------------------------------------------------------------ §5.4.1 up to date

test('§5.4.1 a vote is granted only to a candidate whose log is at least as up to date', () => {
  // The voter's log ends at index 3, term 3.
  const cases: { index: number; logTerm: number; granted: boolean; why: string }[] = [
    { index: 3, logTerm: 3, granted: true, why: 'same last term and index' },
    { index: 9, logTerm: 3, granted: true, why: 'same last term, longer' },
    { index: 2, logTerm: 3, granted: false, why: 'same last term, shorter' },
    { index: 2, logTerm: 4, granted: true, why: 'higher last term, shorter' },
    { index: 9, logTerm: 2, granted: false, why: 'lower last term, longer' },
  ]
  for (const c of cases) {
    const n = lone({ logTerms: [2, 3], term: 3, makeEntry: blankEntry })
    n.raft.step(voteReq('2', '1', 4, c.index, c.logTerm))
    const resp = voteResponses(messagesOf(drain(n)))
    assert.equal(resp.length, 1, c.why)
    assert.equal(resp[0]?.reject, !c.granted, c.why)
    assert.equal(n.raft.status().vote, c.granted ? '2' : '', c.why)
  }
})

test('§5.4.1 a member with a stale log cannot become leader', () => {
  const h = new Harness(['1', '2', '3'], { preVote: false, checkQuorum: false })
  h.elect('1')
  h.drop = cut('3')
  h.propose('1', 'a')
  h.stabilize()
  h.drop = () => false
  for (let i = 0; i < 5; i++) {
    h.raft('3').campaign()
    h.stabilize()
    assert.notEqual(h.raft('3').status().role, 'leader', `campaign ${i}`)
  }
  assert.deepEqual(h.appliedData('1'), ['a'])
})

// ------------------------------------------------------------------ thesis §9.6 pre-vote

test('§9.6 a pre-candidate asks at term+1 without raising its term or changing its vote', () => {
  const n = lone({ preVote: true })
  ticksToCampaign(n.raft)
  const s = n.raft.status()
  assert.equal(s.role, 'preCandidate')
  assert.equal(s.term, 1)
  assert.equal(s.vote, '')
  const readies = drain(n)
  assert.ok(
    readies.every((rd) => rd.hardState === undefined),
    'nothing to persist for a pre-vote',
  )
  const pre = messagesOf(readies).filter((m) => m.type === 'preVote')
  assert.deepEqual(pre.map((m) => [m.to, m.term]).sort(), [
    ['2', 2],
    ['3', 2],
  ])
  assert.ok(!messagesOf(readies).some((m) => m.type === 'vote'))

  // A granted pre-vote from a majority starts the real election.
  n.raft.step(voteResp('2', '1', 2, false, 'preVoteResp'))
  assert.equal(n.raft.status().role, 'candidate')
  assert.equal(n.raft.status().term, 2)
  assert.equal(n.raft.status().vote, '1')
  assert.equal(messagesOf(drain(n)).filter((m) => m.type === 'vote').length, 2)
})

test('§9.6 a pre-vote binds nothing: the voter keeps its term and its vote free', () => {
  const n = lone()
  n.raft.step(voteReq('2', '1', 2, 1, 1, 'preVote'))
  const readies = drain(n)
  assert.equal(voteResponses(messagesOf(readies))[0]?.reject, false)
  assert.equal(n.raft.status().term, 1)
  assert.equal(n.raft.status().vote, '')
  assert.ok(readies.every((rd) => rd.hardState === undefined))
  // It can still give its real vote of term 2 to someone else.
  n.raft.step(voteReq('3', '1', 2, 1, 1))
  assert.equal(voteResponses(messagesOf(drain(n)))[0]?.reject, false)
  assert.equal(n.raft.status().vote, '3')
})

test('§9.6 a pre-candidate with a stale log is refused and no term rises', () => {
  const n = lone({ logTerms: [2, 2], term: 2, makeEntry: blankEntry })
  n.raft.step(voteReq('2', '1', 3, 1, 1, 'preVote'))
  const resp = voteResponses(messagesOf(drain(n)))
  assert.equal(resp[0]?.type, 'preVoteResp')
  assert.equal(resp[0]?.reject, true)
  assert.equal(n.raft.status().term, 2)

  // The pre-candidate side: refusals from a majority send it back to follower, same term.
  const c = lone({ preVote: true })
  c.raft.campaign()
  c.raft.step(voteResp('2', '1', 1, true, 'preVoteResp'))
  c.raft.step(voteResp('3', '1', 1, true, 'preVoteResp'))
  assert.equal(c.raft.status().role, 'follower')
  assert.equal(c.raft.status().term, 1)
})

test('§9.6 a member that still hears its leader does not grant a pre-vote', () => {
  const n = lone()
  n.raft.step(heartbeat('2', '1', 1))
  drain(n)
  n.raft.step(voteReq('3', '1', 2, 1, 1, 'preVote'))
  const resps = voteResponses(messagesOf(drain(n)))
  assert.ok(!resps.some((m) => !m.reject), 'no pre-vote granted while the leader is heard')
  assert.equal(n.raft.status().leader, '2')
  // Once an election timeout passes without the leader, it grants.
  for (let i = 0; i < ELECTION_TICKS; i++) n.raft.tick()
  drain(n)
  n.raft.step(voteReq('3', '1', 2, 1, 1, 'preVote'))
  const later = voteResponses(messagesOf(drain(n)))
  assert.deepEqual(
    later.map((m) => m.reject),
    [false],
  )
})

test('§9.6 a partitioned member that rejoins does not disturb a healthy leader', () => {
  const h = cluster()
  const term = h.raft('1').status().term
  h.drop = cut('3')
  h.tickAll(10 * ELECTION_TICKS)
  assert.equal(h.raft('3').status().term, term, 'pre-vote kept the isolated term from rising')
  assert.ok(
    h.sent.some((m) => m.from === '3' && m.type === 'preVote'),
    '3 did try to campaign',
  )
  h.drop = () => false
  h.tickAll(5 * ELECTION_TICKS)
  assert.deepEqual(h.leaders(), ['1'])
  for (const id of ['1', '2', '3']) assert.equal(h.raft(id).status().term, term, id)
  h.propose('1', 'b')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['a', 'b'])
})

test('§9.6 without pre-vote the same rejoin does disrupt the leader (the test above can fail)', () => {
  const h = cluster({ preVote: false, checkQuorum: false })
  const term = h.raft('1').status().term
  h.drop = cut('3')
  h.tickAll(10 * ELECTION_TICKS)
  assert.ok(h.raft('3').status().term > term, 'the isolated member raised its term')
  h.drop = () => false
  h.tickAll(5 * ELECTION_TICKS)
  assert.ok(h.raft('1').status().term > term, 'the cluster was forced into a new term')
})

// ------------------------------------------------------------------ check-quorum, stickiness

test('check-quorum: a leader cut off from a majority steps down within two election timeouts', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.drop = cut('1')
  // The first check after the cut may still count replies heard before it.
  let ticks = 0
  while (h.raft('1').status().role === 'leader') {
    h.tick('1')
    h.stabilize()
    ticks++
    assert.ok(ticks <= 2 * ELECTION_TICKS, 'still leading after two election timeouts')
  }
  assert.ok(ticks >= ELECTION_TICKS, `stepped down after only ${ticks} ticks`)
  assert.equal(h.raft('1').status().role, 'follower')
  assert.deepEqual(h.propose('1', 'x'), { ok: false, reason: 'not_leader' })
})

test('check-quorum: a leader that hears from a majority keeps leading', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  const term = h.raft('1').status().term
  h.drop = cut('3') // one follower down still leaves a majority
  h.tickAll(20 * ELECTION_TICKS)
  assert.deepEqual(h.leaders(), ['1'])
  assert.equal(h.raft('1').status().term, term)
})

test('check-quorum off: a leader cut off keeps believing it leads (contrast)', () => {
  const h = new Harness(['1', '2', '3'], { checkQuorum: false })
  h.elect('1')
  h.drop = cut('1')
  h.tick('1', 5 * ELECTION_TICKS)
  h.stabilize()
  assert.equal(h.raft('1').status().role, 'leader')
})

test('leader stickiness: a follower that hears its leader ignores a higher-term vote request', () => {
  const n = lone({ preVote: false })
  n.raft.step(heartbeat('2', '1', 1))
  drain(n)
  n.raft.step(voteReq('3', '1', 5, 1, 1))
  const msgs = messagesOf(drain(n))
  assert.equal(voteResponses(msgs).length, 0, 'the request is ignored')
  assert.equal(n.raft.status().term, 1, 'and does not raise the term')
  assert.equal(n.raft.status().leader, '2')
  // A leadership-transfer election is the one exception.
  n.raft.step(voteReq('3', '1', 5, 1, 1, 'vote', true))
  const resp = voteResponses(messagesOf(drain(n)))
  assert.deepEqual(
    resp.map((m) => m.reject),
    [false],
  )
  assert.equal(n.raft.status().term, 5)
})

test('leader stickiness: the leader itself ignores a higher-term vote request', () => {
  const n = leaderOf()
  n.raft.step(voteReq('3', '1', 9, 99, 9))
  drain(n)
  assert.equal(n.raft.status().role, 'leader')
  assert.equal(n.raft.status().term, 2)
})

test('§4.2.3 a removed server cannot disrupt the cluster with elections', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  const term = h.raft('1').status().term
  // 3 receives its removal entry (so its log is as up to date as anyone's) but never hears
  // that it committed.
  h.drop = removalNeverCommitsOn('3')
  assert.ok(h.raft('1').proposeConfChange({ type: 'remove', node: '3' }).ok)
  h.stabilize()
  assert.deepEqual(h.raft('1').status().conf.voters, ['1', '2'])
  assert.deepEqual(h.raft('3').status().conf.voters, ['1', '2', '3'])
  assert.equal(h.raft('3').status().lastIndex, h.raft('1').status().lastIndex)
  h.drop = () => false
  h.tickAll(20 * ELECTION_TICKS)
  assert.ok(
    h.sent.some((m) => m.from === '3' && (m.type === 'preVote' || m.type === 'vote')),
    'the removed server did campaign',
  )
  assert.deepEqual(h.leaders(), ['1'])
  assert.equal(h.raft('1').status().term, term)
  assert.equal(h.raft('2').status().term, term)
})

test('§4.2.3 without pre-vote and stickiness the removed server still cannot disrupt: members drop what non-members send', () => {
  // Its vote requests (real ones, not pre-votes, here) would raise the members' terms and
  // depose the leader; the members' cores drop them instead.
  const h = new Harness(['1', '2', '3'], { preVote: false, checkQuorum: false })
  h.elect('1')
  const term = h.raft('1').status().term
  h.drop = removalNeverCommitsOn('3')
  assert.ok(h.raft('1').proposeConfChange({ type: 'remove', node: '3' }).ok)
  h.stabilize()
  assert.equal(h.raft('3').status().lastIndex, h.raft('1').status().lastIndex)
  h.drop = () => false
  h.tickAll(20 * ELECTION_TICKS)
  assert.ok(
    h.sent.some((m) => m.from === '3' && m.type === 'vote'),
    'the removed server did campaign',
  )
  assert.deepEqual(h.leaders(), ['1'])
  assert.equal(h.raft('1').status().term, term)
  assert.equal(h.raft('2').status().term, term)
})
