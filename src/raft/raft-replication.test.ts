// Log replication (Raft §5.3): the consistency check on appends, conflict truncation (and the
// trap of truncating on stale appends), fast backtracking, batching, pipelining with a window,
// the follower's commit rule and terms on appends and their replies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cluster, cut, Harness, tickUntil } from './harness.test-helper.ts'
import { app, appResponses, drain, ents, lone } from './lone.test-helper.ts'
import type { Ready } from './raft.ts'
import type { MemoryStorage } from './storage.ts'
import type { AppendMessage, Entry, Message, NodeId } from './types.ts'

// ------------------------------------------------------------------ helpers

function persistedEntries(readies: readonly Ready[]): Entry[] {
  return readies.flatMap((rd) => rd.entries)
}

/** storedTerms lists the terms of a storage's entries from firstIndex on. */
function storedTerms(s: MemoryStorage): number[] {
  const out: number[] = []
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i) ?? -1)
  return out
}

function appsTo(msgs: readonly Message[], to: NodeId): AppendMessage[] {
  return msgs.filter((m): m is AppendMessage => m.type === 'app' && m.to === to)
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

// ------------------------------------------------------------------ consistency check

test('§5.3 a follower rejects an append whose previous entry does not match, keeping its log', () => {
  const n = lone({ logTerms: [2, 2, 3], term: 3 }) // indexes 2..4
  n.raft.step(app('2', '1', 3, 4, 2, ents(5, [3]), 1)) // term at 4 is 3, not 2
  n.raft.step(app('2', '1', 3, 7, 3, ents(8, [3]), 1)) // past our last index
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), [], 'nothing appended')
  assert.deepEqual(storedTerms(n.storage), [2, 2, 3])
  const resps = appResponses(readies)
  assert.deepEqual(
    resps.map((m) => ({ reject: m.reject, index: m.index })),
    [
      { reject: true, index: 4 },
      { reject: true, index: 7 },
    ],
  )
  // The hints name the last index whose term is <= the append's previous term.
  assert.deepEqual(
    resps.map((m) => [m.rejectHint, m.logTerm]),
    [
      [3, 2],
      [4, 3],
    ],
  )
})

test('§5.3 a follower appends after a matching entry and acknowledges its last new index', () => {
  const n = lone({ logTerms: [2], term: 2 })
  n.raft.step(app('2', '1', 2, 2, 2, ents(3, [2, 2]), 1))
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), ents(3, [2, 2]))
  assert.deepEqual(
    appResponses(readies).map((m) => [m.reject, m.index]),
    [[false, 4]],
  )
  assert.equal(n.raft.status().leader, '2')
})

test('§5.3 a real conflict truncates the follower log from the first conflicting entry', () => {
  const n = lone({ logTerms: [2, 2, 2, 2], term: 2 }) // indexes 2..5, uncommitted
  // Entry 4 matches; entry 5 of term 3 conflicts with our 5@2 and replaces it.
  n.raft.step(app('3', '1', 3, 3, 2, ents(4, [2, 3]), 1))
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), ents(5, [3]), 'only the conflicting suffix')
  assert.deepEqual(storedTerms(n.storage), [2, 2, 2, 3])
  // A shorter conflicting append truncates everything after it too.
  n.raft.step(app('3', '1', 3, 2, 2, ents(3, [3]), 1))
  drain(n)
  assert.deepEqual(storedTerms(n.storage), [2, 3])
  assert.equal(n.raft.status().lastIndex, 3)
})

test('§5.3 a stale, duplicate or reordered append never truncates the log (trap)', () => {
  const n = lone({ logTerms: [2, 2, 2, 2], term: 2 }) // indexes 2..5, all from leader 2
  const before = storedTerms(n.storage)
  // A stale prefix (an old append that arrives late), an exact duplicate of the newest
  // append, and a heartbeat-like empty append at an old point.
  n.raft.step(app('2', '1', 2, 1, 1, ents(2, [2, 2]), 1))
  n.raft.step(app('2', '1', 2, 3, 2, ents(4, [2, 2]), 1))
  n.raft.step(app('2', '1', 2, 3, 2, ents(4, [2, 2]), 1))
  n.raft.step(app('2', '1', 2, 2, 2, [], 1))
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), [], 'nothing rewritten')
  assert.deepEqual(storedTerms(n.storage), before)
  assert.equal(n.raft.status().lastIndex, 5)
  // Each is acknowledged only up to what it carried, never claiming more.
  assert.deepEqual(
    appResponses(readies).map((m) => [m.reject, m.index]),
    [
      [false, 3],
      [false, 5],
      [false, 5],
      [false, 2],
    ],
  )
})

test('§5.3 an append below the follower commit index is acknowledged at the commit index', () => {
  const n = lone({ logTerms: [2, 2, 2], term: 2 })
  n.raft.step(app('2', '1', 2, 4, 2, [], 4))
  drain(n)
  assert.equal(n.raft.status().commit, 4)
  n.raft.step(app('2', '1', 2, 1, 1, ents(2, [2]), 4)) // late duplicate from long ago
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), [])
  assert.deepEqual(
    appResponses(readies).map((m) => [m.reject, m.index]),
    [[false, 4]],
  )
})

// ------------------------------------------------------------------ follower commit

test('§5.3 a follower commits up to min(leader commit, index of its last new entry)', () => {
  const n = lone({ logTerms: [2, 2, 2, 2, 2], term: 2 }) // indexes 2..6
  // The leader has committed 6 but this append only vouches for entries up to 3: the
  // follower's entries 4..6 might not be the leader's.
  n.raft.step(app('2', '1', 2, 1, 1, ents(2, [2, 2]), 6))
  drain(n)
  assert.equal(n.raft.status().commit, 3)
  n.raft.step(app('2', '1', 2, 3, 2, [], 6))
  drain(n)
  assert.equal(n.raft.status().commit, 3, 'an empty append at 3 vouches for nothing past 3')
  n.raft.step(app('2', '1', 2, 6, 2, ents(7, [2]), 6))
  const readies = drain(n)
  assert.equal(n.raft.status().commit, 6, 'the leader commit bounds it below the last new entry')
  assert.deepEqual(
    readies.flatMap((rd) => rd.committedEntries).map((e) => e.index),
    [4, 5, 6],
  )
})

// ------------------------------------------------------------------ terms on appends

test('§5.1 an append from an older term is refused and answered with the newer term (trap)', () => {
  const n = lone({ logTerms: [2, 3], term: 3 }) // indexes 2, 3
  n.raft.step(app('2', '1', 2, 3, 3, ents(4, [2]), 4))
  n.raft.step(app('2', '1', 2, 1, 1, ents(2, [2, 2]), 3)) // would overwrite 3@3 if accepted
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), [])
  assert.deepEqual(storedTerms(n.storage), [2, 3])
  const s = n.raft.status()
  assert.equal(s.term, 3)
  assert.equal(s.commit, 1)
  assert.equal(s.leader, '', 'the stale sender is not taken as leader')
  const resps = appResponses(readies)
  assert.equal(resps.length, 2)
  assert.ok(
    resps.every((m) => m.term === 3 && m.to === '2'),
    'the stale leader learns the newer term',
  )
})

test('§5.1 a stale leader steps down when a reply carries a newer term (trap)', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.drop = cut('1')
  tickUntil(h, ['2', '3'], () => h.leaders().some((id) => id !== '1'))
  const newLeader = h.leaders().find((id) => id !== '1')
  assert.ok(newLeader)
  const newTerm = h.raft(newLeader).status().term
  assert.equal(h.raft('1').status().role, 'leader', '1 still believes it leads')
  assert.ok(h.raft('1').status().term < newTerm)

  h.drop = () => false
  h.tick('1') // its heartbeat reaches members of the newer term, whose replies depose it
  h.stabilize()
  assert.equal(h.raft('1').status().role, 'follower')
  assert.equal(h.raft('1').status().term, newTerm)
  assert.ok(
    h.sent.some((m) => m.type === 'appResp' && m.to === '1' && m.term === newTerm),
    'the reply carried the newer term',
  )
  assert.deepEqual(h.leaders(), [newLeader])
})

// ------------------------------------------------------------------ fast backtracking

test('§5.3 fast backtracking repairs a long divergence in O(terms) round trips, not O(entries)', () => {
  const DIVERGED = 60
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.propose('1', 'base')
  h.stabilize()
  const base = h.raft('1').status().lastIndex

  // 1 leads alone and gathers DIVERGED entries of its term that never commit.
  h.drop = cut('1')
  for (let i = 0; i < DIVERGED; i++) h.propose('1', `lost ${i}`)
  h.stabilize()
  assert.equal(h.raft('1').status().lastIndex, base + DIVERGED)

  // The others elect a leader of a new term and write as many entries of their own...
  tickUntil(h, ['2', '3'], () => h.leaders().some((id) => id !== '1'))
  const a = h.leaders().find((id) => id !== '1') as NodeId
  const b = a === '2' ? '3' : '2'
  for (let i = 0; i < DIVERGED; i++) h.propose(a, `kept ${i}`)
  h.stabilize()
  // ...then hand leadership over, so the leader that meets 1 starts probing far out.
  h.raft(a).transferLeader(b)
  h.stabilize()
  assert.deepEqual(h.leaders().sort(), ['1', b].sort(), '1 is cut off and still thinks it leads')
  const leaderLast = h.raft(b).status().lastIndex
  assert.ok(leaderLast >= base + DIVERGED, 'the new leader probes past the divergence')
  const leaderLogBefore = storedTerms(h.member(b).storage)

  h.drop = () => false
  const sentBefore = h.sent.length
  h.tick(b)
  h.stabilize()
  const repair = h.sent.slice(sentBefore)
  const rejects = repair.filter((m) => m.type === 'appResp' && m.from === '1' && m.reject)
  const appends = repair.filter((m) => m.type === 'app' && m.from === b && m.to === '1')
  // Two terms are involved (1's term and the new leaders'): one or two rejections suffice.
  assert.ok(rejects.length <= 2, `${rejects.length} rejections to repair ${DIVERGED} entries`)
  assert.ok(appends.length <= 4, `${appends.length} appends to repair ${DIVERGED} entries`)
  assert.deepEqual(storedTerms(h.member('1').storage), storedTerms(h.member(b).storage))
  assert.deepEqual(storedTerms(h.member(b).storage), leaderLogBefore, 'the leader log untouched')
  assert.ok(!h.appliedData('1').some((d) => d.startsWith('lost')))
  assert.equal(h.appliedData('1').filter((d) => d.startsWith('kept')).length, DIVERGED)
})

test('§5.3 a follower hint lets the leader skip back over a whole term at once', () => {
  // Leader side alone. The leader's log: 2@2, 3@2, then 30 entries of term 3 (4..33); it
  // wins term 4 and probes follower 3 at 33. Follower 3 holds a long term-2 suffix, so it
  // rejects with hint (33, term 2), and the next append starts right after the leader's
  // last entry of term <= 2: index 3, not 32.
  const n = lone({ logTerms: [2, 2, ...Array<number>(30).fill(3)], term: 3, preVote: false })
  n.raft.campaign() // term 4
  n.raft.step({ type: 'voteResp', from: '2', to: '1', term: 4, reject: false })
  const first = appsTo(
    drain(n).flatMap((rd) => rd.messages),
    '3',
  )
  assert.deepEqual(
    first.map((m) => [m.index, m.logTerm]),
    [[33, 3]],
    'the first probe is at the end of the log',
  )
  n.raft.step({
    type: 'appResp',
    from: '3',
    to: '1',
    term: 4,
    index: 33,
    reject: true,
    rejectHint: 33,
    logTerm: 2,
  })
  const apps = appsTo(
    drain(n).flatMap((rd) => rd.messages),
    '3',
  )
  assert.equal(apps.length, 1)
  assert.equal(apps[0]?.index, 3, 'the next append follows the last entry of term <= 2')
  assert.equal(apps[0]?.logTerm, 2)
})

// ------------------------------------------------------------------ batching, pipelining

test('§5.3 proposals made before one ready() travel in one append per follower (batching)', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  const first = h.raft('1').status().lastIndex + 1
  for (let i = 0; i < 10; i++) assert.ok(h.propose('1', `p${i}`).ok)
  const rd = h.raft('1').ready()
  assert.ok(rd)
  for (const to of ['2', '3']) {
    const apps = appsTo(rd.messages, to)
    assert.equal(apps.length, 1, `one append to ${to}`)
    assert.deepEqual(
      apps[0]?.entries.map((e) => e.index),
      Array.from({ length: 10 }, (_, i) => first + i),
    )
  }
  h.raft('1').advance(rd)
})

test('§5.3 the leader pipelines appends before any ack, within maxInflightMsgs', () => {
  const WINDOW = 3
  const h = new Harness(['1', '2', '3'], { maxInflightMsgs: WINDOW })
  h.elect('1')
  for (let i = 0; i < WINDOW + 2; i++) {
    h.propose('1', `p${i}`)
    h.process('1') // send, but deliver nothing
  }
  for (const to of ['2', '3']) {
    const apps = appsTo(h.queue, to).filter((m) => m.entries.length > 0)
    assert.equal(apps.length, WINDOW, `${WINDOW} appends in flight to ${to}, no more`)
    const pr = h.raft('1').status().progress.get(to)
    assert.equal(pr?.state, 'replicate')
  }
  // The acks open the window and the rest follows.
  h.stabilize()
  const last = h.raft('1').status().lastIndex
  for (const id of ['2', '3']) assert.equal(h.raft(id).status().lastIndex, last)
  assert.equal(h.appliedData('2').length, WINDOW + 2)
})

test('§5.3 on a rejection the leader falls back to probing one append at a time', () => {
  const h = new Harness(['1', '2', '3'], { maxInflightMsgs: 8 })
  h.elect('1')
  for (let i = 0; i < 3; i++) {
    h.propose('1', `p${i}`)
    h.process('1')
  }
  // The first append to 2 is lost; the two after it cannot match.
  const lost = h.queue.findIndex((m) => m.type === 'app' && m.to === '2')
  h.queue.splice(lost, 1)
  h.deliver()
  h.process('2')
  h.process('3')
  assert.equal(h.queue.filter((m) => m.type === 'appResp' && m.from === '2' && m.reject).length, 2)
  h.deliver()
  const pr = h.raft('1').status().progress.get('2')
  assert.equal(pr?.state, 'probe')
  h.process('1')
  assert.equal(appsTo(h.queue, '2').length, 1, 'one probe, the second rejection was stale')
  // While the probe is unanswered, new proposals send nothing more to 2.
  const held = h.queue
  h.queue = []
  h.propose('1', 'p3')
  h.process('1')
  assert.equal(appsTo(h.queue, '2').length, 0, 'probing waits for the answer')
  assert.equal(appsTo(h.queue, '3').length, 1, 'the healthy follower still replicates')
  h.queue = [...held, ...h.queue]
  h.stabilize()
  assert.equal(h.raft('1').status().progress.get('2')?.state, 'replicate')
  assert.deepEqual(h.appliedData('2'), ['p0', 'p1', 'p2', 'p3'])
})

test('§5.3 a follower whose whole window of appends was lost is repaired once it answers heartbeats', () => {
  const WINDOW = 2
  const h = new Harness(['1', '2', '3'], { maxInflightMsgs: WINDOW })
  h.elect('1')
  h.drop = cut('3')
  for (let i = 0; i < WINDOW + 3; i++) {
    h.propose('1', `p${i}`)
    h.stabilize()
  }
  h.drop = () => false
  h.tickAll(10 * 10)
  assert.equal(h.raft('3').status().lastIndex, h.raft('1').status().lastIndex)
  assert.deepEqual(h.appliedData('3'), h.appliedData('1'))
})

test('§5.3 a follower whose acks for a whole window were lost is repaired once it answers heartbeats', () => {
  const WINDOW = 4
  const h = new Harness(['1', '2', '3'], { maxInflightMsgs: WINDOW })
  h.elect('1')
  h.drop = (m) => m.from === '3' && m.type === 'appResp'
  for (let i = 0; i < WINDOW + 2; i++) {
    h.propose('1', `p${i}`)
    h.stabilize()
  }
  h.drop = () => false
  h.tickAll(10 * 10)
  h.propose('1', 'late')
  h.stabilize()
  h.tickAll(10)
  assert.equal(h.raft('1').status().progress.get('3')?.match, h.raft('1').status().lastIndex)
  assert.deepEqual(h.appliedData('3').at(-1), 'late')
})

test('§5.3 reportUnreachable lets a stalled window fall back to probing', () => {
  // The one recovery path the core has today for the stall above: the transport reports it.
  const h = new Harness(['1', '2', '3'], { maxInflightMsgs: 2 })
  h.elect('1')
  h.drop = cut('3')
  for (let i = 0; i < 5; i++) {
    h.propose('1', `p${i}`)
    h.stabilize()
  }
  h.drop = () => false
  h.raft('1').reportUnreachable('3')
  assert.equal(h.raft('1').status().progress.get('3')?.state, 'probe')
  h.tickAll(5)
  assert.equal(h.raft('3').status().lastIndex, h.raft('1').status().lastIndex)
  assert.deepEqual(h.appliedData('3'), ['p0', 'p1', 'p2', 'p3', 'p4'])
})

test('§5.3 a lost append in probe state is resent after a heartbeat reply', () => {
  const h = new Harness(['1', '2', '3'])
  h.elect('1')
  h.drop = (m) => m.type === 'app' && m.to === '2'
  h.propose('1', 'a')
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), [])
  h.drop = () => false
  h.tick('1') // heartbeat; 2's reply shows it lags and brings the entry again
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a'])
})

// ------------------------------------------------------------------ leader append-only

test('§5.3 the leader never overwrites or deletes entries in its own log', () => {
  const n = lone({ logTerms: [2, 2], term: 2, preVote: false })
  n.raft.campaign()
  n.raft.step({ type: 'voteResp', from: '2', to: '1', term: 3, reject: false })
  n.raft.propose(bytes('mine'))
  drain(n)
  const before = storedTerms(n.storage)
  const lastBefore = n.raft.status().lastIndex
  // An append of its own term from another member (impossible unless Election Safety broke)
  // and a rejection hint pointing far back must not touch the leader's log.
  n.raft.step(app('3', '1', 3, 1, 1, ents(2, [3, 3, 3, 3, 3, 3]), 7))
  n.raft.step({
    type: 'appResp',
    from: '2',
    to: '1',
    term: 3,
    index: lastBefore,
    reject: true,
    rejectHint: 1,
    logTerm: 1,
  })
  const readies = drain(n)
  assert.deepEqual(persistedEntries(readies), [])
  assert.deepEqual(storedTerms(n.storage), before)
  assert.equal(n.raft.status().role, 'leader')
  assert.equal(n.raft.status().lastIndex, lastBefore)
})

// ------------------------------------------------------------------ forwarded proposals

test('a follower forwards proposals to its leader in one message; they commit everywhere', () => {
  const h = cluster()
  assert.equal(h.raft('2').forward(bytes('b')), true)
  assert.equal(h.raft('2').forward(bytes('c')), true)
  h.process('2')
  const props = h.queue.filter((m) => m.type === 'prop')
  assert.equal(props.length, 1, 'both proposals in one message')
  assert.equal(props[0]?.to, '1')
  h.stabilize()
  for (const id of ['1', '2', '3']) assert.deepEqual(h.appliedData(id), ['a', 'b', 'c'])
  // The leader proposes its own; forwarding is for members that do not lead.
  assert.equal(h.raft('1').forward(bytes('d')), false)
})

test('a forwarded proposal reaching a member that does not lead is dropped', () => {
  const h = cluster()
  // 3 forwards to 1, which loses its leadership before the proposal arrives.
  assert.equal(h.raft('3').forward(bytes('lost')), true)
  h.process('3')
  const held = h.queue
  h.queue = []
  h.drop = cut('1')
  tickUntil(h, ['2', '3'], () => h.leaders().some((id) => id !== '1'))
  h.drop = () => false
  tickUntil(h, ['2', '3'], () => h.raft('1').status().role === 'follower')
  h.queue.push(...held)
  h.stabilize()
  for (const id of ['1', '2', '3']) assert.deepEqual(h.appliedData(id), ['a'])
})

test('forwarded proposals start a new message past maxSizePerMsg bytes', () => {
  const h = cluster({ maxSizePerMsg: 1000 })
  for (let i = 0; i < 3; i++) assert.equal(h.raft('2').forward(new Uint8Array(600)), true)
  h.process('2')
  const props = h.queue.filter((m) => m.type === 'prop')
  assert.deepEqual(
    props.map((m) => m.data.length),
    [1, 1, 1],
  )
  h.stabilize()
  assert.equal(h.member('3').applied.filter((e) => e.data.byteLength === 600).length, 3)
})

test('a member that knows no leader does not forward', () => {
  const h = new Harness(['1', '2', '3'])
  assert.equal(h.raft('2').forward(bytes('x')), false)
})

// ------------------------------------------------------------------ commit notices

/** commitOnlyApps counts the appends sent since sent[from] that carry no entries. */
function commitOnlyApps(h: Harness, from: number): number {
  return h.sent.slice(from).filter((m) => m.type === 'app' && m.entries.length === 0).length
}

test('by default a new commit index goes to every follower at once, in an empty append', () => {
  const h = cluster()
  const from = h.sent.length
  h.propose('1', 'x')
  h.stabilize()
  for (const id of ['1', '2', '3']) assert.deepEqual(h.appliedData(id), ['a', 'x'])
  assert.equal(commitOnlyApps(h, from), 2, 'one notice per follower')
})

test('lazy notices: the commit index rides on the next append, and no empty append is sent', () => {
  const h = cluster({ lazyCommitNotice: true })
  const from = h.sent.length
  h.propose('1', 'x')
  h.stabilize()
  assert.deepEqual(h.appliedData('1'), ['a', 'x'], 'the leader applies once a majority holds x')
  for (const id of ['2', '3']) {
    assert.equal(h.member(id).storage.lastIndex(), h.member('1').storage.lastIndex())
    assert.deepEqual(h.appliedData(id), ['a'], `${id} holds x but was not told it committed`)
  }
  h.propose('1', 'y')
  h.stabilize()
  for (const id of ['2', '3'])
    assert.deepEqual(h.appliedData(id), ['a', 'x'], `${id} learnt of x with the append of y`)
  assert.equal(commitOnlyApps(h, from), 0)
})

test('lazy notices: a follower not told of a commit by the next tick gets an empty append', () => {
  // Heartbeats every third tick: the first tick's notice is the empty append, not a heartbeat.
  const h = cluster({ lazyCommitNotice: true, heartbeatTicks: 3 })
  h.propose('1', 'x')
  h.stabilize()
  for (const id of ['2', '3']) assert.deepEqual(h.appliedData(id), ['a'])
  let from = h.sent.length
  h.tick('1')
  h.process('1')
  assert.equal(commitOnlyApps(h, from), 2)
  assert.equal(h.sent.slice(from).filter((m) => m.type === 'heartbeat').length, 0)
  h.stabilize()
  for (const id of ['2', '3']) assert.deepEqual(h.appliedData(id), ['a', 'x'])
  from = h.sent.length
  h.tick('1')
  h.process('1')
  assert.equal(h.sent.length, from, 'nothing to tell: the next tick sends nothing')
})

test('lazy notices: a heartbeat carries the commit index a follower holds', () => {
  const h = cluster({ lazyCommitNotice: true, heartbeatTicks: 1 })
  h.propose('1', 'x')
  h.stabilize()
  const from = h.sent.length
  h.tick('1')
  h.stabilize()
  assert.equal(commitOnlyApps(h, from), 0, 'the heartbeat told them')
  for (const id of ['2', '3']) assert.deepEqual(h.appliedData(id), ['a', 'x'])
})

test('lazy notices: a follower whose forwarded proposal committed is told at once', () => {
  const h = cluster({ lazyCommitNotice: true })
  assert.equal(h.raft('2').forward(bytes('f')), true)
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'f'], 'its writers wait for it to apply f')
  assert.deepEqual(h.appliedData('3'), ['a'], 'the other follower waits for the next append')
  h.propose('1', 'y')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['a', 'f'])
})

test('lazy notices: a forwarder whose acknowledgement comes after the commit is told then', () => {
  const h = cluster({ lazyCommitNotice: true })
  assert.equal(h.raft('2').forward(bytes('f')), true)
  h.process('2')
  h.deliver() // the proposal reaches the leader
  h.process('1')
  h.deliver() // its appends reach both followers
  h.process('2')
  h.process('3')
  // 3's acknowledgement arrives first and commits f (with the leader's own copy); 2's comes
  // after, when the commit index no longer moves.
  const fromTwo = h.queue.filter((m) => m.from === '2')
  h.queue = h.queue.filter((m) => m.from !== '2')
  h.deliver()
  h.process('1')
  assert.deepEqual(h.appliedData('1'), ['a', 'f'])
  h.queue.push(...fromTwo)
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'f'], 'told without waiting for a tick')
})

test('lazy notices: a follower read index covers what committed, and the follower applies it', () => {
  const h = cluster({ lazyCommitNotice: true })
  h.propose('1', 'x')
  h.stabilize()
  assert.deepEqual(h.appliedData('3'), ['a'])
  assert.equal(h.raft('3').readIndex('r'), true)
  h.stabilize()
  const commit = h.raft('1').status().commit
  assert.deepEqual(h.member('3').readStates, [{ index: commit, ctx: 'r' }])
  assert.deepEqual(h.appliedData('3'), ['a', 'x'], 'the read round told it the commit index')
})

test('lazy notices: a lost notice is made good by the next heartbeat (a guard: heartbeats always carry it)', () => {
  const h = cluster({ lazyCommitNotice: true, heartbeatTicks: 3 })
  h.propose('1', 'x')
  h.stabilize()
  h.drop = (m) => m.type === 'app' && m.entries.length === 0
  h.tick('1')
  h.stabilize()
  h.drop = () => false
  for (const id of ['2', '3']) assert.deepEqual(h.appliedData(id), ['a'], 'the notice was lost')
  h.tick('1', 2)
  h.stabilize()
  for (const id of ['2', '3']) assert.deepEqual(h.appliedData(id), ['a', 'x'])
})

test('lazy notices: a forwarder is told when another acknowledgement commits its proposal', () => {
  // 5 voters: the forwarder's own acknowledgement comes first and does not commit f; the
  // next one does, and the forwarder is told in the Ready that follows.
  const h = new Harness(['1', '2', '3', '4', '5'], { lazyCommitNotice: true })
  h.elect('1')
  h.propose('1', 'a')
  h.stabilize()
  assert.equal(h.raft('2').forward(bytes('f')), true)
  h.process('2')
  h.deliver()
  h.process('1')
  h.deliver()
  for (const id of ['2', '3', '4', '5']) h.process(id)
  const ack = (from: NodeId): Message => h.queue.find((m) => m.from === from) as Message
  h.queue = [ack('2'), ack('3')]
  h.drop = (m) => m.from === '4' || m.from === '5'
  h.deliver()
  h.process('1')
  assert.deepEqual(h.appliedData('1'), ['a', 'f'])
  h.stabilize()
  assert.deepEqual(h.appliedData('2'), ['a', 'f'], 'told without waiting for a tick')
  assert.deepEqual(h.appliedData('3'), ['a'], 'not a forwarder: told with the next append')
})

test('lazy notices: a follower given a read index before it holds the entries is told once it does', () => {
  const h = cluster({ lazyCommitNotice: true })
  h.propose('1', 'x')
  h.process('1')
  // The append of x to 3 is slow; x commits with 2.
  const held = h.queue.filter((m) => m.to === '3')
  h.queue = h.queue.filter((m) => m.to !== '3')
  h.stabilize()
  assert.deepEqual(h.appliedData('1'), ['a', 'x'])
  assert.equal(h.raft('3').readIndex('r'), true)
  h.process('3')
  h.deliver()
  h.process('1')
  // The answer follows the slow append on the leader's stream to 3.
  h.queue = [...held, ...h.queue]
  h.stabilize()
  const commit = h.raft('1').status().commit
  assert.deepEqual(h.member('3').readStates, [{ index: commit, ctx: 'r' }])
  assert.deepEqual(h.appliedData('3'), ['a', 'x'], 'told once its acknowledgement came')
})

test('lazy notices: a transferee hears of the commit index before it is told to campaign', () => {
  const h = cluster({ lazyCommitNotice: true })
  h.propose('1', 'x')
  h.stabilize()
  const from = h.sent.length
  h.raft('1').transferLeader('2')
  h.process('1')
  const toTwo = h.sent.slice(from).filter((m) => m.to === '2')
  assert.deepEqual(
    toTwo.map((m) => m.type),
    ['app', 'timeoutNow'],
  )
  assert.equal((toTwo[0] as AppendMessage).commit, h.raft('1').status().commit)
})
