// Raft is the consensus core: a pure, deterministic state machine. The host drives it with
// tick() (logical time), step() (a peer's message) and the local calls (propose, readIndex,
// proposeConfChange, transferLeader), and collects its work with ready(): what to persist,
// what to send, what to apply and which reads to release. It does no I/O, keeps no timers
// and draws chance only from the injected Rng.
//
// Persistence contract (what the host must do with each Ready, in this order):
//   1. Make durable, in one write: the hard state (term, vote, commit), the snapshot if any
//      (and install its data into the state machine), and the entries (replacing any stable
//      suffix from the first entry's index on). fsync when mustSync is true.
//   2. Only then send the messages. A vote, a vote response, an append acknowledgement and a
//      leader's append all depend on state from step 1 (a leader's own append included).
//   3. Apply the committed entries in order. For a 'conf' entry call applyConfChange and store
//      the returned configuration in the same transaction as the applied index.
//   4. Release each read state once the applied index reaches its index.
//   5. Call advance(ready). Only then may ready() be called again.
// The leader counts its own log toward a commit only from advance() on, that is once its
// copy is durable; committed entries are handed out only once a majority holds them durably,
// which may include entries of the same Ready not yet durable here.
// Relaxations the host may take (the database member takes them all): messages that depend on
// nothing of the Ready ('prop' proposals; a leader's appends and heartbeats when its term and
// vote are durable already, thesis 10.2.1) may go before step 1; committed entries may be
// applied before step 1, since they are durable on a majority, provided the applied state is
// never made durable ahead of the log entries it covers; and a hard state whose only change
// is the commit index (mustSync false) may be made durable later, as the commit index can be
// learnt again from the leader.
// Commit notices. By default (as etcd-io/raft) a leader whose commit index moves sends every
// follower an append at once, empty if it has nothing new, so that followers apply at once.
// With lazyCommitNotice (as hashicorp/raft's CommitTimeout) the new commit index travels
// with the next append or heartbeat, and at the next tick a follower that heard neither gets
// an empty append. A follower that waits to apply (Progress.noticeWanted: its forwarded
// proposals, a read index it was given) is told as soon as it holds those entries and they
// committed, and a transferee before it is told to campaign. Under a stream of writes this
// saves each follower a message, an acknowledgement and a Ready per group of writes;
// followers apply, as a rule, within a tick. A notice lost on the way, or held back by a full
// window, is made good by the next append or heartbeat, which always carries the commit
// index the follower holds.
// The host may call step(), tick() and the local calls while a Ready is outstanding (while it
// awaits an fsync, say): what they produce goes into the next Ready. A readIndex ctx need only
// be unique among the host's requests in flight; the leader confirms each request with a
// heartbeat round of its own, so a reused ctx is never confirmed by an older round.
import { assert, assertNever, type Rng } from '../base/index.ts'
import { RaftLog } from './log.ts'
import { Progress, type ProgressState } from './progress.ts'
import { committedIndex, hasQuorum, voteResult } from './quorum.ts'
import { ReadOnly } from './read-only.ts'
import type { InitialState, LogStorage } from './storage.ts'
import type {
  AppendMessage,
  AppendResponse,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponse,
  Message,
  NodeId,
  ReadIndexResponse,
  ReadState,
  Role,
  SnapshotMessage,
  SnapshotMeta,
  VoteRequest,
} from './types.ts'
import { applyConfChangeTo, decodeConfChange, encodeConfChange, entryBytes, NONE } from './types.ts'

/** TestOnlyBugs break one Raft rule on purpose, to show the simulator catches it. */
export interface TestOnlyBugs {
  /** voteTwice grants every vote request of a term, breaking one vote per term (§5.2). */
  readonly voteTwice?: boolean
  /** commitOldTermByCounting commits entries of older terms by counting replicas (§5.4.2). */
  readonly commitOldTermByCounting?: boolean
}

/** RaftConfig configures one member. Ticks are the host's unit of logical time. */
export interface RaftConfig {
  readonly id: NodeId
  /** electionTicks is the minimum election timeout; each timeout is drawn from
   * [electionTicks, 2 * electionTicks). */
  readonly electionTicks?: number
  /** heartbeatTicks is the leader's heartbeat interval. */
  readonly heartbeatTicks?: number
  /** preVote asks whether an election could be won before raising the term (thesis §9.6). */
  readonly preVote?: boolean
  /** checkQuorum makes a leader step down when it has not heard from a majority within an
   * election timeout, and followers ignore votes while they hear a leader (leader stickiness). */
  readonly checkQuorum?: boolean
  /** maxSizePerMsg bounds the bytes of entries in one append. */
  readonly maxSizePerMsg?: number
  /** maxInflightMsgs bounds appends in flight to one follower (the pipelining window). */
  readonly maxInflightMsgs?: number
  /** maxUncommittedBytes bounds proposed but uncommitted bytes on the leader (0: no bound). */
  readonly maxUncommittedBytes?: number
  /** maxCommittedBytesPerReady bounds the entries to apply handed out in one Ready. */
  readonly maxCommittedBytesPerReady?: number
  /** maxPendingReads bounds the ReadIndex requests the leader queues. */
  readonly maxPendingReads?: number
  /** lazyCommitNotice lets a new commit index wait for the next append or heartbeat, or the
   * next tick, rather than go out at once (see "Commit notices" above). */
  readonly lazyCommitNotice?: boolean
  /** initial is the state the member restarts from. */
  readonly initial: InitialState
  readonly testOnlyBugs?: TestOnlyBugs
}

/** ProposeResult tells whether a proposal entered the leader's log, and where. The entry
 * committed for the proposal is the one applied at index with the same term. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | {
      readonly ok: false
      readonly reason:
        | 'not_leader'
        | 'transferring'
        | 'conf_change_pending'
        | 'invalid_conf_change'
        | 'too_many_uncommitted'
    }

/** SoftState is volatile information about a member, for the host's information. */
export interface SoftState {
  readonly leader: NodeId
  readonly role: Role
  readonly term: number
}

/** Ready is a batch of work for the host; see the persistence contract at the top. */
export interface Ready {
  readonly softState: SoftState
  readonly hardState: HardState | undefined
  readonly entries: readonly Entry[]
  readonly snapshot: SnapshotMeta | undefined
  readonly mustSync: boolean
  readonly messages: readonly Message[]
  readonly committedEntries: readonly Entry[]
  readonly readStates: readonly ReadState[]
}

/** ProgressStatus is the leader's view of one member, for status pages and promotion. */
export interface ProgressStatus {
  readonly match: number
  readonly next: number
  readonly state: ProgressState
  readonly isLearner: boolean
  readonly recentActive: boolean
}

/** Status describes a member for the host (stats, learner promotion, tests). */
export interface Status {
  readonly id: NodeId
  readonly term: number
  readonly vote: NodeId
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly firstIndex: number
  readonly role: Role
  readonly leader: NodeId
  readonly conf: ConfState
  readonly leadTransferee: NodeId
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>
}

const EMPTY = new Uint8Array(0)

/** FORWARD_BATCH_MAX bounds the proposals one 'prop' message carries (and maxSizePerMsg
 * their bytes, but for a single proposal). */
const FORWARD_BATCH_MAX = 1024

/** Raft is one member's consensus state machine. */
export class Raft {
  readonly id: NodeId
  private readonly electionTicks: number
  private readonly heartbeatTicks: number
  private readonly preVote: boolean
  private readonly checkQuorum: boolean
  private readonly maxSizePerMsg: number
  private readonly maxInflightMsgs: number
  private readonly maxUncommittedBytes: number
  private readonly maxCommittedBytesPerReady: number
  private readonly lazyCommitNotice: boolean
  private readonly bugs: TestOnlyBugs

  // Persistent state (§5.1 Figure 2), durable through the Ready loop.
  private term = 0
  private vote: NodeId = NONE
  private readonly log: RaftLog

  // Volatile state.
  private role: Role = 'follower'
  private lead: NodeId = NONE
  // The applied configuration (etcd-style: a change takes effect when its entry is applied).
  private conf: ConfState
  // The log index conf is as of: the last applied conf change or restored snapshot.
  // Invariant: never decreases.
  private confIndex: number
  // The configuration as the applied log gives it (what the host stores with its applied
  // index). It differs from conf only while a restored snapshot is not yet persisted.
  private appliedConf: ConfState
  private prs = new Map<NodeId, Progress>()
  private readonly votes = new Map<NodeId, boolean>()
  private msgs: Message[] = []
  // Bytes of proposals in the last 'prop' message of msgs (forward).
  private forwardBytes = 0
  private readStates: ReadState[] = []
  private electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedElectionTimeout = 0
  private leadTransferee: NodeId = NONE
  // Invariant (leader): no new conf change is proposed while pendingConfIndex > applied.
  private pendingConfIndex = 0
  private uncommittedBytes = 0
  private readonly readOnly: ReadOnly
  // ReadIndex requests that arrived before this leader committed an entry of its term.
  private pendingReadIndex: { ctx: string; from: NodeId }[] = []
  private needBroadcast = false
  // Numbers this leader's ReadIndex heartbeat rounds.
  private readRoundSeq = 0
  // The round that ReadIndex requests join until its heartbeat goes out (ready()).
  private openReadRound: string | undefined
  // Ticks since a leadership transfer started (aborted after an election timeout).
  private transferElapsed = 0

  // The nodes named by conf entries not yet applied, and the log state they were read at.
  private pendingConf: { key: string; nodes: ReadonlySet<NodeId> } | undefined

  private prevHardState: HardState
  private prevSoftState: SoftState | undefined
  private outstanding: Ready | undefined

  constructor(
    config: RaftConfig,
    storage: LogStorage,
    private readonly rng: Rng,
  ) {
    this.id = config.id
    assert(config.id !== NONE, 'a member needs an id')
    this.electionTicks = config.electionTicks ?? 10
    this.heartbeatTicks = config.heartbeatTicks ?? 1
    assert(this.heartbeatTicks < this.electionTicks, 'heartbeatTicks must be below electionTicks')
    this.preVote = config.preVote ?? true
    this.checkQuorum = config.checkQuorum ?? true
    this.maxSizePerMsg = config.maxSizePerMsg ?? 1024 * 1024
    this.maxInflightMsgs = config.maxInflightMsgs ?? 256
    this.maxUncommittedBytes = config.maxUncommittedBytes ?? 0
    this.maxCommittedBytesPerReady = config.maxCommittedBytesPerReady ?? 16 * 1024 * 1024
    this.readOnly = new ReadOnly(config.maxPendingReads ?? 4096)
    this.lazyCommitNotice = config.lazyCommitNotice ?? false
    this.bugs = config.testOnlyBugs ?? {}

    const { hardState, applied, conf } = config.initial
    assert(
      applied >= storage.snapshot().index,
      () => `applied ${applied} below snapshot ${storage.snapshot().index}`,
    )
    this.log = new RaftLog(storage, hardState.commit, applied)
    this.term = hardState.term
    this.vote = hardState.vote
    this.prevHardState = hardState
    this.conf = conf
    this.confIndex = applied
    this.appliedConf = conf
    this.becomeFollower(this.term, NONE)
  }

  // ---------------------------------------------------------------- host inputs

  /** tick advances logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat()
    else this.tickElection()
  }

  /** campaign starts an election now, as an expired election timeout would. */
  campaign(): void {
    this.hup(false)
  }

  /** propose appends data to the log if this member is the leader. */
  propose(data: Uint8Array): ProposeResult {
    return this.proposeEntry('normal', data)
  }

  /** proposeConfChange proposes one single-server membership change (thesis §4.1). Only one
   * may be pending, and none before this leader committed an entry of its term. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role === 'leader' && this.pendingConfIndex > this.log.applied) {
      return { ok: false, reason: 'conf_change_pending' }
    }
    if (this.role === 'leader' && applyConfChangeTo(this.conf, cc).voters.length === 0) {
      // Removing or demoting the last voter would leave a cluster that can never elect.
      return { ok: false, reason: 'invalid_conf_change' }
    }
    const result = this.proposeEntry('conf', encodeConfChange(cc))
    if (result.ok) this.pendingConfIndex = result.index
    return result
  }

  /**
   * applyConfChange makes a committed change take effect; the host calls it while applying the
   * change's entry at index and persists the returned configuration with the applied index.
   * A change at or below the index the current configuration already covers (a snapshot
   * restored while the entry was being applied) does not change the core's configuration:
   * the snapshot's includes it. The returned configuration is always the one the log gives
   * at index, which is what the host must store with that applied index.
   */
  applyConfChange(cc: ConfChange, index: number): ConfState {
    this.appliedConf = applyConfChangeTo(this.appliedConf, cc)
    // The host stores appliedConf with this entry's index, so that a crash before the
    // snapshot is persisted restarts from a configuration the log agrees with.
    if (index <= this.confIndex) return this.appliedConf
    this.confIndex = index
    this.conf = applyConfChangeTo(this.conf, cc)
    this.syncProgress()
    if (this.role === 'leader') {
      if (!this.conf.voters.includes(this.id)) {
        // A removed leader led until its removal committed; it steps down now and does not
        // count itself in the new majority (thesis §4.2.2).
        this.becomeFollower(this.term, NONE)
      } else {
        if (this.leadTransferee !== NONE && !this.conf.voters.includes(this.leadTransferee)) {
          this.leadTransferee = NONE
        }
        // A smaller quorum may commit at once.
        if (this.maybeCommit()) this.noticeCommit()
      }
    }
    return this.appliedConf
  }

  /**
   * knowsMember tells whether id may take part in this member's Raft traffic: a voter or
   * learner of the applied configuration, or a member named by a conf change in the log that
   * is not applied here yet (it is being added, and may already be in the configuration of a
   * member ahead of us). A member that has no configuration yet (it is joining) knows anyone.
   * The host drops peer messages from members it does not know: a stranger, or a member
   * removed from the configuration.
   */
  knowsMember(id: NodeId): boolean {
    const { voters, learners } = this.conf
    if (voters.length === 0 && learners.length === 0) return true
    if (voters.includes(id) || learners.includes(id)) return true
    return this.pendingConfNodes().has(id)
  }

  /** pendingConfNodes are the nodes named by conf entries after the applied index, cached for
   * the log they were read from (a lagging member may hear many messages from a sender it
   * does not know, each asking). */
  private pendingConfNodes(): ReadonlySet<NodeId> {
    const last = this.log.lastIndex()
    const key = `${this.log.applied}/${last}/${this.log.term(last) ?? 0}/${this.confIndex}`
    if (this.pendingConf?.key === key) return this.pendingConf.nodes
    const nodes = new Set<NodeId>()
    const from = Math.max(this.log.applied + 1, this.log.firstIndex())
    if (from <= last) {
      for (const e of this.log.slice(from, last + 1, Infinity))
        if (e.type === 'conf') nodes.add(decodeConfChange(e.data).node)
    }
    this.pendingConf = { key, nodes }
    return nodes
  }

  /**
   * admits tells whether step() considers a message at all. It takes what knowsMember knows,
   * and one more sender: a leader this member does not know, while it hears no other leader.
   * A member that lagged (down, cut off) while a new one joined and took the lead has applied
   * a configuration without that leader, and may not even hold the conf entry that adds it;
   * dropping its appends and snapshots would leave the member stuck for as long as that
   * leader leads. A stranger or a removed member claiming to lead cannot depose a leader this
   * member hears, and a leader's commit index is never believed past the log it matches.
   */
  admits(m: Pick<Message, 'from' | 'type' | 'term'>): boolean {
    if (this.knowsMember(m.from)) return true
    if (m.type !== 'app' && m.type !== 'heartbeat' && m.type !== 'snap') return false
    if (m.term < this.term) return false
    return m.from === this.lead || this.lead === NONE || this.electionElapsed >= this.electionTicks
  }

  /**
   * forward passes a proposal to the leader (a 'prop' message), for a member that does not
   * lead. It says nothing of the outcome: the entry commits and this member applies it, or
   * it never appears (the leader changed or was full), which the host learns by waiting.
   * It returns false, sending nothing, when this member leads (propose instead) or knows
   * no leader. Proposals forwarded before the next ready() travel in one message.
   */
  forward(data: Uint8Array): boolean {
    if (this.role === 'leader' || this.lead === NONE) return false
    const last = this.msgs[this.msgs.length - 1]
    if (
      last?.type === 'prop' &&
      last.to === this.lead &&
      last.term === this.term &&
      last.data.length < FORWARD_BATCH_MAX &&
      this.forwardBytes + data.byteLength <= this.maxSizePerMsg
    ) {
      ;(last.data as Uint8Array[]).push(data)
      this.forwardBytes += data.byteLength
    } else {
      this.send({ type: 'prop', from: this.id, to: this.lead, term: this.term, data: [data] })
      this.forwardBytes = data.byteLength
    }
    return true
  }

  /** readIndex asks for a linearizable read barrier; the answer comes as a ReadState with the
   * same ctx. It returns false when no leader is known (the host retries or fails). */
  readIndex(ctx: string): boolean {
    if (this.role === 'leader') {
      this.handleReadIndex(ctx, this.id)
      return true
    }
    if (this.lead === NONE) return false
    this.send({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, ctx })
    return true
  }

  /** transferLeader hands leadership to a voter (thesis §3.10); a follower forwards the
   * request to its leader. */
  transferLeader(to: NodeId): void {
    if (this.role === 'leader') this.handleTransferLeader(to)
    else if (this.lead !== NONE) {
      this.send({
        type: 'transferLeader',
        from: this.id,
        to: this.lead,
        term: this.term,
        transferee: to,
      })
    }
  }

  /** reportSnapshot tells the leader the host's snapshot transfer to `to` ended. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.prs.get(to)
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return
    if (!ok) pr.pendingSnapshot = 0
    // Either way, wait for the follower's answer (or a heartbeat reply) before probing.
    pr.becomeProbe()
    pr.probeSent = true
  }

  /** reportUnreachable tells the leader a message to `to` could not be delivered. */
  reportUnreachable(to: NodeId): void {
    const pr = this.prs.get(to)
    if (this.role === 'leader' && pr?.state === 'replicate') pr.becomeProbe()
  }

  /** step handles a message from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return
    // A stranger, or a removed member: nothing it says may move our term or commit index.
    if (!this.admits(m)) return
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const inLease =
          this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTicks
        // Leader stickiness: while we hear a leader, a vote request cannot depose it,
        // unless the leader itself asked for the election (transfer).
        if (inLease && !m.transfer) return
      }
      if (m.type === 'preVote') {
        // A pre-vote does not change our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the term we would campaign at; it is not news.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, NONE)
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A stale leader learns our term from this and steps down.
        this.send({
          type: 'appResp',
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0,
          reject: false,
          rejectHint: 0,
          logTerm: 0,
        })
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true })
      }
      return
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m)
      return
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m)
        break
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m)
        break
      case 'follower':
        this.stepFollower(m)
        break
      default:
        assertNever(this.role)
    }
  }

  // ---------------------------------------------------------------- Ready

  /** hasReady tells whether ready() has work. */
  hasReady(): boolean {
    if (this.outstanding) return false
    if (this.needBroadcast || this.msgs.length > 0 || this.readStates.length > 0) return true
    if (this.openReadRound !== undefined) return true
    if (this.log.hasUnstable()) return true
    if (!this.sameHardState(this.hardState(), this.prevHardState)) return true
    if (!this.sameSoftState(this.softState(), this.prevSoftState)) return true
    return this.applyFrom() <= Math.min(this.log.committed, this.log.lastIndex())
  }

  /** ready returns the next batch of work, or undefined when there is none. At most one
   * Ready is outstanding: the host calls advance() before the next ready(). */
  ready(): Ready | undefined {
    assert(!this.outstanding, 'ready() called before advance()')
    this.flushBroadcast()
    this.flushReadRound()
    const snapshot =
      this.log.pendingSnapshot && !this.log.snapshotInProgress
        ? this.log.pendingSnapshot
        : undefined
    if (snapshot) {
      this.log.snapshotInProgress = true
      // The host installs the snapshot before it applies this Ready's entries, which follow it.
      this.appliedConf = snapshot.conf
    }
    const entries = this.log.unstableToPersist()
    this.log.inProgress = this.log.lastIndex()
    const hs = this.hardState()
    const hardState = this.sameHardState(hs, this.prevHardState) ? undefined : hs
    const committedEntries = this.log.committedToApply(
      this.applyFrom(),
      this.maxCommittedBytesPerReady,
    )
    const softState = this.softState()
    const softChanged = !this.sameSoftState(softState, this.prevSoftState)
    const rd: Ready = {
      softState,
      hardState,
      entries,
      snapshot,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        (hardState !== undefined &&
          (hardState.term !== this.prevHardState.term ||
            hardState.vote !== this.prevHardState.vote)),
      messages: this.msgs,
      committedEntries,
      readStates: this.readStates,
    }
    this.msgs = []
    this.readStates = []
    this.prevSoftState = softState
    if (
      !softChanged &&
      !hardState &&
      !snapshot &&
      entries.length === 0 &&
      committedEntries.length === 0 &&
      rd.messages.length === 0 &&
      rd.readStates.length === 0
    ) {
      return undefined
    }
    this.outstanding = rd
    return rd
  }

  /** advance tells the core the host has done everything rd asked. */
  advance(rd: Ready): void {
    assert(this.outstanding === rd, 'advance() with a Ready that is not outstanding')
    this.outstanding = undefined
    if (rd.hardState) this.prevHardState = rd.hardState
    if (rd.snapshot) {
      this.log.stableSnapTo(rd.snapshot.index)
      if (this.log.applied < rd.snapshot.index) this.log.applied = rd.snapshot.index
    }
    const last = rd.entries[rd.entries.length - 1]
    if (last) {
      this.log.stableTo(last.index, last.term)
      if (this.role === 'leader') {
        // The leader's own copy is durable only now: count it toward commit from here on.
        const self = this.prs.get(this.id)
        if (self && self.maybeUpdate(this.durableIndex()) && this.maybeCommit()) this.noticeCommit()
      }
    }
    const applied = rd.committedEntries[rd.committedEntries.length - 1]
    if (applied) {
      this.log.appliedTo(applied.index)
      if (this.role === 'leader') {
        for (const e of rd.committedEntries)
          this.uncommittedBytes = Math.max(0, this.uncommittedBytes - entryBytes(e))
      }
    }
  }

  /** leader is the member this one takes as the leader of its term (itself when it leads),
   * or NONE: status().leader without building the whole status. */
  leader(): NodeId {
    return this.lead
  }

  /** status describes this member. */
  status(): Status {
    const progress = new Map<NodeId, ProgressStatus>()
    if (this.role === 'leader') {
      for (const [id, pr] of this.prs) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
        })
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      role: this.role,
      leader: this.lead,
      conf: this.conf,
      leadTransferee: this.leadTransferee,
      progress,
    }
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term)
    this.role = 'follower'
    this.lead = lead
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate')
    // A pre-candidate keeps its term and vote (thesis §9.6).
    this.votes.clear()
    this.role = 'preCandidate'
    this.lead = NONE
    this.electionElapsed = 0
    this.resetRandomizedElectionTimeout()
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate')
    this.reset(this.term + 1)
    this.vote = this.id
    this.role = 'candidate'
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader')
    this.reset(this.term)
    this.role = 'leader'
    this.lead = this.id
    for (const pr of this.prs.values()) pr.recentActive = true
    const self = this.prs.get(this.id)
    if (self) {
      self.maybeUpdate(this.durableIndex())
      self.becomeReplicate()
    }
    // §5.4.2 / §8: an empty entry of the new term commits the earlier entries and lets
    // ReadIndex start.
    this.appendEntries([{ type: 'normal', data: EMPTY }])
    // No conf change until everything up to here is applied: an entry of this term commits
    // first (the fix to the single-server change bug).
    this.pendingConfIndex = this.log.lastIndex()
    this.needBroadcast = true
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.resetRandomizedElectionTimeout()
    this.leadTransferee = NONE
    this.votes.clear()
    this.pendingConfIndex = 0
    this.uncommittedBytes = 0
    this.readOnly.reset()
    this.openReadRound = undefined
    this.pendingReadIndex = []
    this.needBroadcast = false
    this.prs = new Map()
    this.syncProgress()
  }

  // Trap: the timeout is drawn anew on every reset, or split votes repeat forever.
  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTicks + this.rng.int(this.electionTicks)
  }

  /** syncProgress makes prs hold exactly the members of conf. */
  private syncProgress(): void {
    const members = new Set([...this.conf.voters, ...this.conf.learners])
    for (const id of [...this.prs.keys()]) if (!members.has(id)) this.prs.delete(id)
    for (const id of members) {
      const isLearner = this.conf.learners.includes(id)
      const pr = this.prs.get(id)
      if (pr) pr.isLearner = isLearner
      else {
        const fresh = new Progress(this.log.lastIndex() + 1, this.maxInflightMsgs, isLearner)
        if (id === this.id && this.role === 'leader') fresh.maybeUpdate(this.durableIndex())
        // A new member has not answered yet, but counts as active until the next check.
        fresh.recentActive = true
        this.prs.set(id, fresh)
      }
    }
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id) && this.log.pendingSnapshot === undefined
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.hup(false)
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0
      if (this.checkQuorum) {
        const active = hasQuorum(
          this.conf.voters,
          (id) => id === this.id || this.prs.get(id)?.recentActive === true,
        )
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false
        if (!active) {
          // §6.2 / thesis §6.2: a leader cut off from a majority stops serving.
          this.becomeFollower(this.term, NONE)
          return
        }
      }
    }
    if (this.leadTransferee !== NONE && ++this.transferElapsed >= this.electionTicks) {
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = NONE
    }
    for (const pr of this.prs.values()) {
      if (pr.state === 'snapshot' && ++pr.snapshotElapsedTicks >= 3 * this.electionTicks) {
        // The transfer was lost and nobody reported it: start over.
        pr.becomeProbe()
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0
      this.broadcastHeartbeat(this.readOnly.lastCtx())
    }
    // Lazy notices: a follower that heard of no commit it holds since the last tick hears now.
    if (!this.lazyCommitNotice) return
    for (const [id, pr] of this.prs) {
      if (id !== this.id && this.commitUntold(pr)) this.sendAppend(id, true)
    }
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return
    // A member with committed but unapplied conf changes may not know its configuration.
    if (this.hasUnappliedConfChanges()) return
    if (this.preVote && !transfer) this.runElection('preCandidate', false)
    else this.runElection('candidate', transfer)
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false
    const from = Math.max(this.log.applied + 1, this.log.firstIndex())
    for (const e of this.log.slice(from, this.log.committed + 1, Infinity))
      if (e.type === 'conf') return true
    return false
  }

  private runElection(kind: 'preCandidate' | 'candidate', transfer: boolean): void {
    if (kind === 'preCandidate') this.becomePreCandidate()
    else this.becomeCandidate()
    const term = kind === 'preCandidate' ? this.term + 1 : this.term
    const type = kind === 'preCandidate' ? 'preVote' : 'vote'
    if (this.recordVote(this.id, true) === 'won') {
      // A single voter wins alone.
      if (kind === 'preCandidate') this.runElection('candidate', transfer)
      else this.becomeLeader()
      return
    }
    const index = this.log.lastIndex()
    const logTerm = this.log.lastTerm()
    for (const id of this.conf.voters) {
      if (id === this.id) continue
      this.send({ type, from: this.id, to: id, term, index, logTerm, transfer })
    }
  }

  private recordVote(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted)
    return voteResult(this.conf.voters, this.votes)
  }

  // ---------------------------------------------------------------- step by role

  private handleVoteRequest(m: VoteRequest): void {
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp'
    // §5.2: one vote per term. We may vote again for the same candidate (a retry), or for
    // anyone if we have not voted and know no leader of this term. A pre-vote for a future
    // term binds nothing.
    let canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term)
    if (this.bugs.voteTwice && m.type === 'vote') canVote = true
    // §5.4.1: only for a candidate whose log is at least as up to date as ours.
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false })
      if (m.type === 'vote') {
        // Only a granted vote resets the election timer; a refused one must not, or a
        // member with a stale log could keep a better one from ever campaigning.
        this.electionElapsed = 0
        this.vote = m.from
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true })
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'prop': {
        // Proposals a member passed on; those the leader cannot take now are dropped (their
        // proposer times out and retries).
        const pr = this.prs.get(m.from)
        for (const data of m.data) {
          const r = this.proposeEntry('normal', data)
          // Its writers wait for it to apply these: it is told of their commit at once.
          if (r.ok && pr) pr.noticeWanted = r.index
        }
        return
      }
      case 'appResp':
        this.handleAppendResponse(m)
        return
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m)
        return
      case 'readIndex':
        this.handleReadIndex(m.ctx, m.from)
        return
      case 'transferLeader':
        this.handleTransferLeader(m.transferee)
        return
      case 'app':
      case 'heartbeat':
      case 'snap':
        // Another leader of our own term: impossible unless Election Safety is broken,
        // which the simulator's checkers report; the core just ignores it.
        return
      case 'vote':
      case 'preVote':
      case 'voteResp':
      case 'preVoteResp':
      case 'readIndexResp':
      case 'timeoutNow':
        return
      default:
        assertNever(m)
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from)
        this.handleAppend(m)
        return
      case 'heartbeat':
        this.becomeFollower(m.term, m.from)
        this.handleHeartbeat(m)
        return
      case 'snap':
        this.becomeFollower(m.term, m.from)
        this.handleSnapshot(m)
        return
      case 'voteResp':
      case 'preVoteResp': {
        const mine = this.role === 'candidate' ? 'voteResp' : 'preVoteResp'
        if (m.type !== mine) return
        const result = this.recordVote(m.from, !m.reject)
        if (result === 'won') {
          if (this.role === 'preCandidate') this.runElection('candidate', false)
          else {
            this.becomeLeader()
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE)
        }
        return
      }
      case 'appResp':
      case 'heartbeatResp':
      case 'vote':
      case 'preVote':
      case 'readIndex':
      case 'readIndexResp':
      case 'timeoutNow':
      case 'transferLeader':
      case 'prop':
        return
      default:
        assertNever(m)
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleAppend(m)
        return
      case 'heartbeat':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleHeartbeat(m)
        return
      case 'snap':
        this.electionElapsed = 0
        this.lead = m.from
        this.handleSnapshot(m)
        return
      case 'timeoutNow':
        // Thesis §3.10: the transfer target campaigns at once, skipping pre-vote.
        this.hup(true)
        return
      case 'readIndexResp':
        if (!m.reject) this.readStates.push({ index: m.index, ctx: m.ctx })
        return
      case 'transferLeader':
        if (this.lead !== NONE) this.send({ ...m, from: this.id, to: this.lead, term: this.term })
        return
      case 'appResp':
      case 'heartbeatResp':
      case 'vote':
      case 'preVote':
      case 'voteResp':
      case 'preVoteResp':
      case 'readIndex':
      case 'prop':
        // A follower does not pass proposals on: the proposer times out and retries.
        return
      default:
        assertNever(m)
    }
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches any leader's log (§5.4): say so.
      this.sendAppendResponse(m.from, this.log.committed)
      return
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNew !== undefined) {
      this.sendAppendResponse(m.from, lastNew)
      return
    }
    // §5.3: no entry matches (index, logTerm). Hint the last index whose term is <= logTerm,
    // so the leader skips back a whole term at a time.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm)
    this.send({
      type: 'appResp',
      from: this.id,
      to: m.from,
      term: this.term,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    })
  }

  private sendAppendResponse(to: NodeId, index: number): void {
    this.send({
      type: 'appResp',
      from: this.id,
      to,
      term: this.term,
      index,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    })
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // A leader sends min(our match, its commit), which never passes our log; a commit beyond
    // our last index comes from a peer that is no leader of ours (or a broken one) and is
    // clamped, as etcd-io/raft does, rather than trusted or asserted on.
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()))
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, ctx: m.ctx })
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const s = m.snapshot
    if (this.restore(s)) this.sendAppendResponse(m.from, this.log.lastIndex())
    else this.sendAppendResponse(m.from, this.log.committed)
  }

  /** restore installs a snapshot unless it is stale or our log already holds its last entry. */
  private restore(s: SnapshotMeta): boolean {
    // §7: a stale or duplicate snapshot is ignored; a snapshot never moves the log backwards.
    if (s.index <= this.log.committed) return false
    if (this.log.matchTerm(s.index, s.term)) {
      // Our log already holds the snapshot's last entry: keep the suffix, just commit.
      this.log.commitTo(s.index)
      return false
    }
    this.log.restore(s)
    this.conf = s.conf
    this.confIndex = Math.max(this.confIndex, s.index)
    this.syncProgress()
    return true
  }

  // ---------------------------------------------------------------- leader side

  private proposeEntry(type: Entry['type'], data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { ok: false, reason: 'not_leader' }
    // Thesis §3.10: proposals stop while leadership moves.
    if (this.leadTransferee !== NONE) return { ok: false, reason: 'transferring' }
    const bytes = data.byteLength + 16
    if (
      this.maxUncommittedBytes > 0 &&
      this.uncommittedBytes > 0 &&
      this.uncommittedBytes + bytes > this.maxUncommittedBytes
    ) {
      return { ok: false, reason: 'too_many_uncommitted' }
    }
    this.uncommittedBytes += bytes
    const index = this.appendEntries([{ type, data }])
    // Batching: every proposal until the next ready() travels in one append per follower.
    this.needBroadcast = true
    return { ok: true, index, term: this.term }
  }

  /** appendEntries appends new entries of the current term; returns the last index. */
  private appendEntries(entries: readonly { type: Entry['type']; data: Uint8Array }[]): number {
    let index = this.log.lastIndex()
    const full: Entry[] = entries.map((e) => ({
      term: this.term,
      index: ++index,
      type: e.type,
      data: e.data,
    }))
    this.log.append(full)
    return index
  }

  /** durableIndex is the last index of this member's log that is durable and current. */
  private durableIndex(): number {
    return Math.min(this.log.lastIndex(), this.log.unstableOffset - 1)
  }

  private matchOf(id: NodeId): number {
    return this.prs.get(id)?.match ?? 0
  }

  /** maybeCommit advances the commit index to what a majority holds; true if it moved. */
  private maybeCommit(): boolean {
    if (this.conf.voters.length === 0) return false
    const index = committedIndex(this.conf.voters, (id) => this.matchOf(id))
    if (index <= this.log.committed) return false
    // Raft §5.4.2: never commit an entry of an earlier term by counting replicas; it commits
    // with the first entry of the current term after it (Figure 8).
    if (this.log.term(index) !== this.term && !this.bugs.commitOldTermByCounting) return false
    this.log.commitTo(index)
    if (this.pendingReadIndex.length > 0 && this.committedInCurrentTerm()) {
      const waiting = this.pendingReadIndex
      this.pendingReadIndex = []
      for (const r of waiting) this.handleReadIndex(r.ctx, r.from)
    }
    return true
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term
  }

  /** noticeCommit tells followers of a new commit index: at once, or lazily (see "Commit
   * notices" above; ready() tells those that wait for it). */
  private noticeCommit(): void {
    if (!this.lazyCommitNotice) this.needBroadcast = true
  }

  private flushBroadcast(): void {
    if (this.role !== 'leader') {
      this.needBroadcast = false
      return
    }
    if (this.needBroadcast) {
      this.needBroadcast = false
      for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, true)
    } else if (this.lazyCommitNotice) {
      // Lazy notices: only a follower that waits for a commit (noticeWanted) is told now.
      for (const [id, pr] of this.prs) if (id !== this.id) this.noticeIfWanted(id, pr)
    }
  }

  /** noticeIfWanted sends pr's follower an append (empty if nothing is new) when it holds
   * committed entries up to which it waits to apply and was not told of them (lazy notices:
   * its forwarded proposals, or a read index it was given). A follower whose window is full
   * hears with its next append or heartbeat. */
  private noticeIfWanted(id: NodeId, pr: Progress): void {
    if (this.lazyCommitNotice && pr.noticeWanted > pr.commitSent && this.commitUntold(pr))
      this.sendAppend(id, true)
  }

  /** commitUntold tells whether pr's follower holds committed entries it was not told of. */
  private commitUntold(pr: Progress): boolean {
    return Math.min(pr.match, this.log.committed) > pr.commitSent
  }

  /** sendAppend sends what `to` needs next, if its window allows. True if it sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to)
    if (!pr || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.sendSnapshot(to, pr)
    const entries =
      pr.next <= this.log.lastIndex() ? this.log.entries(pr.next, this.maxSizePerMsg) : []
    if (entries.length === 0 && !sendIfEmpty) return false
    this.send({
      type: 'app',
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    })
    pr.commitSent = Math.max(
      pr.commitSent,
      Math.min(this.log.committed, prevIndex + entries.length),
    )
    pr.sentEntries(prevIndex + entries.length, entries.length)
    return true
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snapshot = this.log.storage.snapshot()
    this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot })
    pr.becomeSnapshot(snapshot.index)
    return true
  }

  private broadcastHeartbeat(ctx: string): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue
      const commit = Math.min(pr.match, this.log.committed)
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, ctx })
      pr.commitSent = Math.max(pr.commitSent, commit)
    }
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.prs.get(m.from)
    if (!pr) return
    pr.recentActive = true
    if (m.reject) {
      // Fast backtracking: skip to the last index whose term is <= the follower's term there.
      let matchHint = m.rejectHint
      if (m.logTerm > 0) matchHint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index
      if (pr.maybeDecrTo(m.index, matchHint)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        this.sendAppend(m.from, true)
      }
      return
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return
    if (pr.state === 'probe') pr.becomeReplicate()
    else if (pr.state === 'snapshot') {
      // Only once the follower can continue from our log; a late ack that still leaves it
      // below our first index keeps waiting for the snapshot in flight.
      if (pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe()
        pr.becomeReplicate()
      }
    } else pr.inflights.freeLE(m.index)

    if (this.maybeCommit()) this.noticeCommit()
    else if (wasPaused) this.sendAppend(m.from, true)
    // Pipelining: keep the window full.
    while (this.sendAppend(m.from, false)) {
      if (pr.state !== 'replicate') break
    }
    // Lazy notices: a follower that waits for entries which committed before it held them.
    this.noticeIfWanted(m.from, pr)
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex())
      this.sendTimeoutNow(m.from)
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.prs.get(m.from)
    if (!pr) return
    pr.recentActive = true
    pr.probeSent = false
    // A full window whose appends (or their acknowledgements) were lost would never drain:
    // the heartbeat reply shows the follower is alive, so free one slot. The append it lets
    // through is rejected if entries were lost, and the leader falls back to probing.
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne()
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true)
    // A caught-up transferee that is still following ignored TimeoutNow: it came while a
    // committed conf change was unapplied there (or it was lost). Each of its heartbeat
    // replies gets it again until the transfer ends; one of an older term is ignored.
    else if (m.from === this.leadTransferee) this.sendTimeoutNow(m.from)
    if (m.ctx === '') return
    const acks = this.readOnly.ack(m.ctx, m.from)
    if (!acks || !hasQuorum(this.conf.voters, (id) => acks.has(id))) return
    for (const read of this.readOnly.release(m.ctx))
      this.answerRead(read.requestCtx, read.from, read.index)
  }

  /** handleReadIndex starts a read barrier at the current commit index (thesis §6.4). */
  private handleReadIndex(ctx: string, from: NodeId): void {
    if (!this.committedInCurrentTerm()) {
      // Until an entry of this term commits, our commit index may lag the true one.
      if (this.pendingReadIndex.length < 4096) this.pendingReadIndex.push({ ctx, from })
      return
    }
    const index = this.log.committed
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.answerRead(ctx, from, index)
      return
    }
    // A voter's request is itself an acknowledgement for its own read: it left the requester
    // after the read arrived there, in this term (step drops other terms), so the requester
    // had then voted for no later leader. Where the requester and this leader make a quorum
    // (3 voters, or 2), no later leader can have been elected before the read arrived: every
    // quorum holds one of the two, and both were still in this term afterwards. The commit
    // index now covers every write acknowledged before the read arrived, and the read is
    // answered without a heartbeat round: one round trip instead of two, 2 messages instead
    // of 6. (The round's acknowledgement confirms only reads that arrived before it left;
    // the requester's counts for its own read alone, so it never joins a round's quorum.)
    if (from !== this.id && hasQuorum(this.conf.voters, (id) => id === this.id || id === from)) {
      this.answerRead(ctx, from, index)
      return
    }
    // The heartbeat round carries an id of this leader's own, unique in its term, never the
    // requester's ctx: a requester may reuse a ctx (after a restart, say), and a delayed reply
    // to an older round must never confirm a new read. Requests join the open round until its
    // heartbeat goes out with the next Ready (flushReadRound): one round for all of them, each
    // confirmed by a heartbeat sent after it arrived.
    const round = this.openReadRound ?? `${this.term}.${++this.readRoundSeq}`
    if (!this.readOnly.add(index, round, ctx, from, this.id)) return
    this.openReadRound = round
  }

  /** flushReadRound sends the open ReadIndex round's heartbeat. */
  private flushReadRound(): void {
    const round = this.openReadRound
    if (round === undefined) return
    this.openReadRound = undefined
    if (this.role === 'leader') this.broadcastHeartbeat(round)
  }

  private answerRead(ctx: string, from: NodeId, index: number): void {
    if (from === this.id) this.readStates.push({ index, ctx })
    else {
      // Lazy notices: the requester waits to apply up to index, so it must hear of the commit
      // (the append goes first on the same stream), now or once it holds the entries.
      const pr = this.prs.get(from)
      if (pr) {
        pr.noticeWanted = Math.max(pr.noticeWanted, index)
        this.noticeIfWanted(from, pr)
      }
      const resp: ReadIndexResponse = {
        type: 'readIndexResp',
        from: this.id,
        to: from,
        term: this.term,
        ctx,
        index,
        reject: false,
      }
      this.send(resp)
    }
  }

  private handleTransferLeader(to: NodeId): void {
    const pr = this.prs.get(to)
    if (!pr || pr.isLearner || to === this.id || to === this.leadTransferee) return
    this.leadTransferee = to
    // The transfer must finish within an election timeout (checked in tickHeartbeat). It has
    // its own clock: resetting electionElapsed would let repeated transfer requests postpone
    // check-quorum for ever.
    this.transferElapsed = 0
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to)
    else this.sendAppend(to, true)
  }

  private sendTimeoutNow(to: NodeId): void {
    // Lazy notices: the transferee campaigns knowing what committed (a committed, unapplied
    // conf change keeps a member from campaigning).
    const pr = this.prs.get(to)
    if (this.lazyCommitNotice && pr && this.commitUntold(pr)) this.sendAppend(to, true)
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term })
  }

  // ---------------------------------------------------------------- helpers

  private send(m: Message): void {
    this.msgs.push(m)
  }

  private applyFrom(): number {
    const snap = this.log.pendingSnapshot
    return snap ? snap.index + 1 : this.log.applied + 1
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed }
  }

  private sameHardState(a: HardState, b: HardState): boolean {
    return a.term === b.term && a.vote === b.vote && a.commit === b.commit
  }

  private softState(): SoftState {
    return { leader: this.lead, role: this.role, term: this.term }
  }

  private sameSoftState(a: SoftState, b: SoftState | undefined): boolean {
    return b !== undefined && a.leader === b.leader && a.role === b.role && a.term === b.term
  }
}
