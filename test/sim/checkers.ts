// The simulator's safety checkers. Replicas and clients report what they observe as it happens
// (a role, a granted vote, entries made stable, entries applied, a snapshot installed, a put
// acknowledged, a read served) and each hook checks incrementally against global history, so
// every check runs on every step at a cost proportional to the step. A violation throws
// CheckFailed naming the invariant; the Simulation adds seed, replay line and trace.
//
// What "ever" means here: the history maps below only grow during a run. Raft's four safety
// properties (§5.2, §5.3, §5.4, Figure 3) come first, then the database's own guarantees
// (DESIGN.md "Invariants that tests must hold"):
//   - one vote per voter and term, a candidate's durable vote for itself included;
//   - Leader Completeness against every entry applied anywhere and every entry a leader's
//     commit index covered (checked when a leader's log is first stable, and again for leaders
//     still in office when a deposed leader's commit shows up late);
//   - the core's configuration is the one its host stored with the applied index (whenever no
//     Ready is outstanding or due, and after a restart), and that is the configuration the
//     log's conf changes give at that index;
//   - a linearizable read sees every put acknowledged and every value any read returned
//     before it was issued, and every put committed at or below its read index.
import {
  applyConfChangeTo,
  decodeConfChange,
  type ConfState,
  type Entry,
  type LogStorage,
  type Message,
  type NodeId,
  type ReadState,
  type Role,
  type SnapshotMeta,
} from '../../src/raft/index.ts'
import { CheckFailed } from './sim-trace.ts'
import type { DurableState } from './sim-disk.ts'
import type { PutResult } from './sim-state-machine.ts'

/** Invariant names, as they appear in failure messages. */
export const Invariant = {
  electionSafety: 'Election Safety',
  logMatching: 'Log Matching',
  leaderCompleteness: 'Leader Completeness',
  stateMachineSafety: 'State Machine Safety',
  committedNeverChange: 'Committed Entries Never Change',
  writeOnce: 'No Key Has Two Values',
  ackedReadable: 'Acknowledged Puts Stay Readable',
  linearizableReads: 'Linearizable Reads',
  durableBeforeSend: 'Durable Before Send',
  confMatchesHost: 'Core Configuration Matches the Host',
  confMatchesLog: 'Configuration Matches the Log',
  hostContract: 'Core Contract',
  liveness: 'Liveness',
  exception: 'Exception',
} as const

/** AckedPut is a put a client saw succeed: its entry applied where it was proposed. */
export interface AckedPut {
  readonly key: string
  readonly value: string
  readonly index: number
  readonly term: number
  readonly node: NodeId
  readonly at: number
}

/** ReadRecord is one linearizable read a client issued. */
export interface ReadRecord {
  readonly ctx: string
  readonly node: NodeId
  readonly key: string
  /** expect is the value acknowledged for key before the read was issued, if any. */
  readonly expect: string | undefined
  /** minIndex is the highest index of a put acknowledged before the read was issued. */
  readonly minIndex: number
  readonly issuedAt: number
  /** issuedSeq orders the issue among every read completion (Checkers.nextSeq). */
  readonly issuedSeq: number
}

interface StableRecord {
  readonly prevTerm: number | undefined
  readonly entry: Entry
  readonly node: NodeId
}

interface AppliedRecord {
  readonly entry: Entry
  readonly node: NodeId
  readonly result: PutResult | undefined
  /** commitTerm bounds from above the term in which the entry committed: the term of the
   * first member seen applying it (a member only learns a commit from a leader of its term
   * or an earlier one). */
  readonly commitTerm: number
}

interface TruthRecord {
  readonly value: string
  readonly index: number
}

interface CommittedRecord {
  readonly term: number
  /** commitTerm bounds from above the term the entry committed in: the term of the first
   * leader seen with a commit index at or past it. */
  readonly commitTerm: number
  readonly node: NodeId
}

interface VoteRecord {
  readonly candidate: NodeId
  /** how the vote was seen: a vote response sent, or a hard state made durable. */
  readonly how: string
}

interface ReadSeen {
  readonly seq: number
  readonly ctx: string
  readonly node: NodeId
  readonly value: string
}

/** CheckerOptions turns individual sub-checks off (tests of the checkers only). */
export interface CheckerOptions {
  /** voteOnce checks that no voter grants two candidates a vote in one term. Default true. */
  readonly voteOnce?: boolean
  /** leaderCompleteness checks each new leader's log against committed entries. Default true. */
  readonly leaderCompleteness?: boolean
}

/** Checkers holds the run's history and checks every observation against it. */
export class Checkers {
  private readonly voteOnce: boolean
  private readonly leaderCompleteness: boolean
  // Election Safety: the leader of each term, ever.
  private readonly leaderOfTerm = new Map<number, NodeId>()
  // Election Safety at the voter: `${voter}/${term}` → the candidate it granted (itself
  // included: a candidate's durable vote for itself binds it like any other).
  private readonly votesGranted = new Map<string, VoteRecord>()
  // Log Matching: index → term → the first stable entry seen with that (index, term).
  private readonly stable = new Map<number, Map<number, StableRecord>>()
  // State Machine Safety: index → the entry first applied there.
  private readonly applied = new Map<number, AppliedRecord>()
  private maxApplied = 0
  // Leader Completeness: `${node}/${term}` already checked.
  private readonly leaderChecked = new Set<string>()
  // Leader Completeness: index → the entry a leader's commit index covered, and by when.
  private readonly committed = new Map<number, CommittedRecord>()
  private maxCommitted = 0
  // The commit index each leader (`${node}/${term}`) was last seen with.
  private readonly leaderCommit = new Map<string, number>()
  // Leaders whose log was checked and that still lead that term: node → term and stable log
  // (a leader's log only grows during its term, so it must keep holding what it held).
  private readonly activeLeaders = new Map<NodeId, { term: number; storage: LogStorage }>()
  // The configuration as of each applied conf change, in index order (from the entries
  // themselves, never from what a host stored), starting with the bootstrap configuration.
  private readonly confHistory: { index: number; conf: ConfState }[] = []
  // Linearizable reads: key → the first read that completed with a value.
  private readonly readSeen = new Map<string, ReadSeen>()
  private seq = 0
  // No key has two values: the value each key was first created with, and where.
  private readonly truth = new Map<string, TruthRecord>()
  /** ackedPuts lists every acknowledged put in acknowledgement order. */
  readonly ackedPuts: AckedPut[] = []
  private readonly ackedByKey = new Map<string, AckedPut>()
  /** maxAckedIndex is the highest index of an acknowledged put. */
  maxAckedIndex = 0
  /** counts of what was checked, for the run summary. */
  readonly counts = {
    leaders: 0,
    reads: 0,
    readsServed: 0,
    readsNotFound: 0,
    acked: 0,
    snapshotsInstalled: 0,
    confChecks: 0,
    /** committed conf changes the core ignored (a snapshot covering them was restored). */
    confIgnored: 0,
  }

  constructor(options: CheckerOptions = {}) {
    this.voteOnce = options.voteOnce ?? true
    this.leaderCompleteness = options.leaderCompleteness ?? true
  }

  // ------------------------------------------------------------------ elections

  /** onRole records node's role in term (from its Ready's soft state or its status). */
  onRole(node: NodeId, term: number, role: Role): void {
    if (role !== 'leader') return
    const prev = this.leaderOfTerm.get(term)
    if (prev === undefined) {
      this.leaderOfTerm.set(term, node)
      this.counts.leaders++
      return
    }
    if (prev !== node) {
      fail(Invariant.electionSafety, `two leaders in term ${term}: ${prev} and ${node}`)
    }
  }

  /** leaderOf returns the leader recorded for term, if any. */
  leaderOf(term: number): NodeId | undefined {
    return this.leaderOfTerm.get(term)
  }

  /** onSend sees every message a replica sends (after its state is durable). */
  onSend(m: Message): void {
    if (m.type !== 'voteResp' || m.reject) return
    this.onVote(m.from, m.term, m.to, 'a vote response')
  }

  /**
   * onVote records that voter cast its vote in term for candidate: a granted vote response it
   * sent, or a vote in a hard state it made durable (a candidate's vote for itself included,
   * and whatever a restart finds on disk). §5.2: at most one candidate per voter and term.
   */
  onVote(voter: NodeId, term: number, candidate: NodeId, how: string): void {
    if (!this.voteOnce || candidate === '') return
    const key = `${voter}/${term}`
    const prev = this.votesGranted.get(key)
    if (prev === undefined) this.votesGranted.set(key, { candidate, how })
    else if (prev.candidate !== candidate) {
      fail(
        Invariant.electionSafety,
        `${voter} voted in term ${term} for both ${prev.candidate} (${prev.how}) and ${candidate} (${how})`,
      )
    }
  }

  // ------------------------------------------------------------------ persistence

  /**
   * checkDurable checks that what m announces is on node's disk before m leaves (§5.1 and the
   * core's persistence contract): its term, a granted vote (the candidate's own included), and
   * the entries an append response acknowledges. Pre-votes announce nothing durable. Messages
   * of the node's current term are held to it exactly; older ones only to the term.
   */
  checkDurable(node: NodeId, m: Message, d: Readonly<DurableState>): void {
    const hs = d.hardState
    if (m.type === 'preVote' || m.type === 'preVoteResp') return
    if (hs.term < m.term) {
      fail(
        Invariant.durableBeforeSend,
        `${node} sends ${m.type} of term ${m.term} to ${m.to} while its durable term is ${hs.term}`,
      )
    }
    // A message of an older term was made true by an earlier Ready; the node's newer durable
    // term already keeps it from voting again in that term, and a later-term leader may have
    // truncated what it acknowledged (such an entry cannot be committed: §5.4.3).
    if (hs.term > m.term) return
    if ((m.type === 'voteResp' && !m.reject) || m.type === 'vote') {
      const candidate = m.type === 'vote' ? node : m.to
      if (hs.term !== m.term || hs.vote !== candidate) {
        fail(
          Invariant.durableBeforeSend,
          `${node} sends ${m.type} for ${candidate} in term ${m.term} while its durable vote is ${hs.vote || 'none'} in term ${hs.term}`,
        )
      }
    }
    if (m.type === 'appResp' && !m.reject && m.index > 0) {
      const last = d.snapMeta.index + d.log.length
      if (last < m.index) {
        fail(
          Invariant.durableBeforeSend,
          `${node} acknowledges entries up to ${m.index} to ${m.to}, but its durable log ends at ${last}`,
        )
      }
    }
  }

  /** checkDurableApply checks an entry is durable on node before node applies it. */
  checkDurableApply(node: NodeId, e: Entry, d: Readonly<DurableState>): void {
    const last = d.snapMeta.index + d.log.length
    if (e.index > last) {
      fail(
        Invariant.durableBeforeSend,
        `${node} applies entry ${e.index} before it is durable (durable log ends at ${last})`,
      )
    }
  }

  // ------------------------------------------------------------------ logs

  /**
   * onStable is called before a replica appends entries to its stable log. nodeCommit is the
   * highest commit index the node has persisted in this incarnation (or restarted with).
   */
  onStable(node: NodeId, storage: LogStorage, entries: readonly Entry[], nodeCommit: number): void {
    const first = entries[0]
    if (first === undefined) return
    // Committed entries never change: a member never rewrites its log at or below its commit.
    if (first.index <= nodeCommit) {
      for (const e of entries) {
        if (e.index > nodeCommit) break
        const old = storage.term(e.index)
        if (old !== undefined && old !== e.term) {
          fail(
            Invariant.committedNeverChange,
            `${node} overwrites its committed entry ${e.index} (term ${old}) with term ${e.term}; its commit is ${nodeCommit}`,
          )
        }
      }
    }
    // Log Matching (§5.3), checked by induction: each (index, term) names one entry, and one
    // predecessor term. Two logs sharing (index, term) then share every entry up to it.
    let prevTerm = storage.term(first.index - 1)
    for (const e of entries) {
      let byTerm = this.stable.get(e.index)
      if (byTerm === undefined) {
        byTerm = new Map()
        this.stable.set(e.index, byTerm)
      }
      const rec = byTerm.get(e.term)
      if (rec === undefined) {
        byTerm.set(e.term, { prevTerm, entry: e, node })
      } else {
        if (rec.entry !== e && !sameEntry(rec.entry, e)) {
          fail(
            Invariant.logMatching,
            `entry ${e.index} of term ${e.term} differs between ${rec.node} and ${node}: ${describeEntry(rec.entry)} vs ${describeEntry(e)}`,
          )
        }
        if (rec.prevTerm !== undefined && prevTerm !== undefined && rec.prevTerm !== prevTerm) {
          fail(
            Invariant.logMatching,
            `entry ${e.index} of term ${e.term} follows term ${rec.prevTerm} on ${rec.node} but term ${prevTerm} on ${node}`,
          )
        }
      }
      prevTerm = e.term
    }
  }

  /**
   * onStableDone is called after a replica appended entries; it runs Leader Completeness once
   * per (leader, term), when the leader's first entry of its term is stable (then everything
   * before it is stable too): against every entry applied anywhere and every entry a leader's
   * commit index covered, committed in an earlier term. The leader then stays registered, so
   * entries found committed later (a deposed leader's late commit) are checked against it too.
   */
  onStableDone(node: NodeId, storage: LogStorage, entries: readonly Entry[]): void {
    const last = entries[entries.length - 1]
    if (last === undefined || !this.leaderCompleteness) return
    const term = last.term
    if (this.leaderOfTerm.get(term) !== node) return
    const key = `${node}/${term}`
    if (this.leaderChecked.has(key)) return
    this.leaderChecked.add(key)
    // §5.4: every entry committed in an earlier term is in the log of this term's leader.
    const lo = storage.firstIndex()
    for (let i = lo; i <= this.maxApplied; i++) {
      const rec = this.applied.get(i)
      if (rec === undefined || rec.commitTerm >= term) continue
      const t = storage.term(i)
      if (t !== rec.entry.term) {
        fail(
          Invariant.leaderCompleteness,
          `${node}, leader of term ${term}, has ${t === undefined ? 'no entry' : `term ${t}`} at index ${i}, ` +
            `but entry ${i} of term ${rec.entry.term} was committed by term ${rec.commitTerm} (applied first on ${rec.node})`,
        )
      }
    }
    for (let i = lo; i <= this.maxCommitted; i++) {
      const rec = this.committed.get(i)
      if (rec !== undefined && rec.commitTerm < term) this.checkHolds(node, term, storage, i, rec)
    }
    this.activeLeaders.set(node, { term, storage })
  }

  /**
   * onLeaderCommit is called when a leader of term persists its commit index (the stable log
   * holds every entry up to it): each entry up to commit is committed, and every leader of a
   * later term must hold it (§5.4), unless compacted below its snapshot.
   */
  onLeaderCommit(node: NodeId, term: number, commit: number, storage: LogStorage): void {
    if (!this.leaderCompleteness) return
    const key = `${node}/${term}`
    const from = Math.max((this.leaderCommit.get(key) ?? 0) + 1, storage.firstIndex())
    this.leaderCommit.set(key, commit)
    for (let i = from; i <= commit; i++) {
      const t = storage.term(i)
      if (t === undefined) {
        fail(
          Invariant.hostContract,
          `${node}, leader of term ${term}, persisted commit ${commit} but its stable log has no entry ${i}`,
        )
      }
      const rec = this.committed.get(i)
      if (rec !== undefined) {
        if (rec.term !== t) {
          const [early, late] = rec.commitTerm <= term ? [rec.node, node] : [node, rec.node]
          fail(
            Invariant.leaderCompleteness,
            `entry ${i} was committed as term ${rec.term} by ${rec.node} (leader by term ${rec.commitTerm}) ` +
              `and as term ${t} by ${node} (leader of term ${term}): ${late} lacks what ${early} committed`,
          )
        }
        continue
      }
      const fresh: CommittedRecord = { term: t, commitTerm: term, node }
      this.committed.set(i, fresh)
      if (i > this.maxCommitted) this.maxCommitted = i
      for (const [leader, l] of this.activeLeaders) {
        if (l.term > term) this.checkHolds(leader, l.term, l.storage, i, fresh)
      }
    }
  }

  /** onLeaderEnd tells that node no longer leads (it stepped down or crashed). */
  onLeaderEnd(node: NodeId): void {
    this.activeLeaders.delete(node)
  }

  private checkHolds(
    node: NodeId,
    term: number,
    storage: LogStorage,
    i: number,
    rec: CommittedRecord,
  ): void {
    if (i < storage.firstIndex() - 1) return // compacted below its snapshot
    const t = storage.term(i)
    if (t !== rec.term) {
      fail(
        Invariant.leaderCompleteness,
        `${node}, leader of term ${term}, has ${t === undefined ? 'no entry' : `term ${t}`} at index ${i}, ` +
          `but entry ${i} of term ${rec.term} was committed by term ${rec.commitTerm} (commit index of leader ${rec.node})`,
      )
    }
  }

  // ------------------------------------------------------------------ configurations

  /** onBootstrap records the configuration the cluster starts from (index 1). */
  onBootstrap(conf: ConfState): void {
    this.confHistory.length = 0
    this.confHistory.push({ index: 1, conf: normalConf(conf) })
  }

  /** confAt is the configuration as of index, from the conf entries applied anywhere; the
   * caller makes sure every entry up to index was applied somewhere. */
  confAt(index: number): ConfState | undefined {
    const h = this.confHistory
    let lo = 0
    let hi = h.length - 1
    if (hi < 0 || (h[0] as { index: number }).index > index) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((h[mid] as { index: number }).index <= index) lo = mid
      else hi = mid - 1
    }
    return h[lo]?.conf
  }

  /** latestConfs are the configuration as of the highest index applied anywhere, and the
   * one before its last change (if any). */
  latestConfs(): ConfState[] {
    return this.confHistory.slice(-2).map((h) => h.conf)
  }

  /** pendingConfChanges lists the conf entries made stable anywhere above the highest index
   * applied anywhere: any one of them may still commit. */
  pendingConfChanges(): Entry[] {
    const out: Entry[] = []
    for (const [index, byTerm] of this.stable) {
      if (index <= this.maxApplied) continue
      for (const rec of byTerm.values()) if (rec.entry.type === 'conf') out.push(rec.entry)
    }
    return out
  }

  /**
   * checkConf checks, while node has no Ready outstanding and nothing for one (or right after
   * a restart), that the core's configuration is the one the host stored with its applied
   * index, and that this is the configuration the log gives at that index.
   */
  checkConf(
    node: NodeId,
    core: ConfState,
    host: ConfState,
    applied: number,
    when: string,
    coreOnly = false,
  ): void {
    this.counts.confChecks++
    if (core !== host && !sameConf(core, host)) {
      fail(
        Invariant.confMatchesHost,
        `${when}: ${node}'s core has configuration ${describeConf(core)}, but its state machine stored ${describeConf(host)} with applied index ${applied}`,
      )
    }
    if (coreOnly || applied > this.maxApplied) return
    const truth = this.confAt(applied)
    if (truth !== undefined && truth !== host && !sameConf(truth, host)) {
      fail(
        Invariant.confMatchesLog,
        `${when}: ${node} stored configuration ${describeConf(host)} with applied index ${applied}, but the log's conf changes give ${describeConf(truth)} there`,
      )
    }
  }

  // ------------------------------------------------------------------ state machines

  /** onApply is called for each committed entry a replica applies, in order. */
  onApply(
    node: NodeId,
    nodeTerm: number,
    e: Entry,
    put: { key: string; value: string } | undefined,
    result: PutResult | undefined,
  ): void {
    const rec = this.applied.get(e.index)
    if (rec === undefined) {
      this.applied.set(e.index, { entry: e, node, result, commitTerm: nodeTerm })
      if (e.index > this.maxApplied) this.maxApplied = e.index
      if (e.type === 'conf') this.recordConf(e)
    } else {
      if (rec.entry !== e && !sameEntry(rec.entry, e)) {
        fail(
          Invariant.stateMachineSafety,
          `${node} applies ${describeEntry(e)} at index ${e.index}, but ${rec.node} applied ${describeEntry(rec.entry)} there`,
        )
      }
      if (rec.result !== result) {
        fail(
          Invariant.stateMachineSafety,
          `entry ${e.index} answered ${String(result)} on ${node} but ${String(rec.result)} on ${rec.node}`,
        )
      }
    }
    if (put === undefined || result === undefined) return
    const truth = this.truth.get(put.key)
    if (result === 'created') {
      if (truth === undefined) {
        this.truth.set(put.key, { value: put.value, index: e.index })
      } else if (truth.value !== put.value) {
        fail(
          Invariant.writeOnce,
          `${node} created key ${put.key} = ${put.value} at index ${e.index}, but it was created = ${truth.value} at index ${truth.index}`,
        )
      } else if (truth.index !== e.index) {
        fail(
          Invariant.stateMachineSafety,
          `${node} created key ${put.key} at index ${e.index}, but it was already created at index ${truth.index}`,
        )
      }
    } else {
      if (truth === undefined || truth.index >= e.index) {
        fail(
          Invariant.stateMachineSafety,
          `${node} answered ${result} for key ${put.key} at index ${e.index}, but it was created ${truth ? `at index ${truth.index}` : 'nowhere'}`,
        )
      }
      if ((result === 'exists') !== (truth.value === put.value)) {
        fail(
          Invariant.writeOnce,
          `${node} answered ${result} for key ${put.key} = ${put.value} at index ${e.index}, but its value is ${truth.value}`,
        )
      }
    }
  }

  private recordConf(e: Entry): void {
    const h = this.confHistory
    const prev = h[h.length - 1]
    // An entry is first applied after every entry below it was applied somewhere.
    if (prev === undefined || prev.index >= e.index) {
      fail(
        Invariant.stateMachineSafety,
        `conf entry ${e.index} is applied first, but the configuration is known up to ${prev?.index ?? 'nowhere'}`,
      )
    }
    h.push({
      index: e.index,
      conf: normalConf(applyConfChangeTo(prev.conf, decodeConfChange(e.data))),
    })
  }

  /** onSnapshotInstalled checks a snapshot a replica installs against global history. */
  onSnapshotInstalled(node: NodeId, meta: SnapshotMeta, kv: ReadonlyMap<string, string>): void {
    this.counts.snapshotsInstalled++
    const rec = this.applied.get(meta.index)
    if (rec !== undefined && rec.entry.term !== meta.term) {
      fail(
        Invariant.stateMachineSafety,
        `${node} installs a snapshot at ${meta.index}@${meta.term}, but entry ${meta.index} of term ${rec.entry.term} was applied on ${rec.node}`,
      )
    }
    const conf = meta.index <= this.maxApplied ? this.confAt(meta.index) : undefined
    if (conf !== undefined && !sameConf(conf, meta.conf)) {
      fail(
        Invariant.confMatchesLog,
        `${node} installs a snapshot at ${meta.index}@${meta.term} with configuration ${describeConf(meta.conf)}, but the log's conf changes give ${describeConf(conf)} there`,
      )
    }
    for (const [k, v] of kv) {
      const truth = this.truth.get(k)
      if (truth === undefined || truth.index > meta.index) {
        fail(
          Invariant.stateMachineSafety,
          `${node}'s snapshot at ${meta.index} holds key ${k}, created ${truth ? `at index ${truth.index}` : 'nowhere'}`,
        )
      }
      if (truth.value !== v) {
        fail(
          Invariant.writeOnce,
          `${node}'s snapshot at ${meta.index} holds ${k} = ${v}, but its value is ${truth.value}`,
        )
      }
    }
    for (const [k, truth] of this.truth) {
      if (truth.index <= meta.index && !kv.has(k)) {
        const acked = this.ackedByKey.get(k)
        fail(
          acked ? Invariant.ackedReadable : Invariant.stateMachineSafety,
          `${node}'s snapshot at ${meta.index} lacks key ${k}, created at index ${truth.index}${acked ? ' and acknowledged' : ''}`,
        )
      }
    }
  }

  /** checkReadable checks every acknowledged put at or below applied is in kv. */
  checkReadable(
    node: NodeId,
    applied: number,
    kv: ReadonlyMap<string, string>,
    when: string,
  ): void {
    for (const p of this.ackedPuts) {
      if (p.index > applied) continue
      const v = kv.get(p.key)
      if (v !== p.value) {
        fail(
          Invariant.ackedReadable,
          `${when}: ${node} applied through ${applied} but reads ${p.key} = ${String(v)}; ` +
            `the put ${p.key} = ${p.value} was acknowledged at index ${p.index} on ${p.node}`,
        )
      }
    }
  }

  // ------------------------------------------------------------------ clients

  /** truthOf returns the value key was created with anywhere, if any. */
  truthOf(key: string): string | undefined {
    return this.truth.get(key)?.value
  }

  /** ackedOf returns the acknowledged put of key, if any. */
  ackedOf(key: string): AckedPut | undefined {
    return this.ackedByKey.get(key)
  }

  /** onAck records an acknowledged put. */
  onAck(p: AckedPut): void {
    const prev = this.ackedByKey.get(p.key)
    if (prev !== undefined && prev.value !== p.value) {
      fail(
        Invariant.writeOnce,
        `key ${p.key} acknowledged as ${prev.value} at ${prev.index} and as ${p.value} at ${p.index}`,
      )
    }
    this.counts.acked++
    if (prev !== undefined) return
    this.ackedPuts.push(p)
    this.ackedByKey.set(p.key, p)
    if (p.index > this.maxAckedIndex) this.maxAckedIndex = p.index
  }

  /** onReadState checks the read index a read got (thesis §6.4). */
  onReadState(read: ReadRecord, rs: ReadState, node: NodeId): void {
    this.counts.reads++
    if (rs.index < read.minIndex) {
      fail(
        Invariant.linearizableReads,
        `read ${read.ctx} issued on ${read.node} at ${read.issuedAt} got read index ${rs.index} on ${node}, ` +
          `below index ${read.minIndex} of a put acknowledged before it was issued`,
      )
    }
  }

  /** nextSeq numbers read issues and completions in the order they happen. */
  nextSeq(): number {
    return ++this.seq
  }

  /**
   * onReadServed checks what a linearizable read returned (thesis §6.4), against everything
   * that happened before it was issued: a put acknowledged, any read that completed with a
   * value (on any node), and any put already committed at or below its read index. A value
   * must be the key's one value.
   */
  onReadServed(read: ReadRecord, value: string | undefined, applied: number, rs: ReadState): void {
    this.counts.readsServed++
    const seq = this.nextSeq()
    const where = `read ${read.ctx} of ${read.key} issued on ${read.node} at ${read.issuedAt} (read index ${rs.index}, applied ${applied})`
    if (read.expect !== undefined && value !== read.expect) {
      fail(
        Invariant.linearizableReads,
        `${where} returned ${String(value)}, but ${read.key} = ${read.expect} was acknowledged before the read was issued`,
      )
    }
    const truth = this.truth.get(read.key)
    if (value === undefined) {
      this.counts.readsNotFound++
      const seen = this.readSeen.get(read.key)
      if (seen !== undefined && seen.seq < read.issuedSeq) {
        fail(
          Invariant.linearizableReads,
          `${where} returned not-found, but read ${seen.ctx} on ${seen.node} had returned ${read.key} = ${seen.value} before this read was issued`,
        )
      }
      if (truth !== undefined && truth.index <= rs.index) {
        fail(
          Invariant.linearizableReads,
          `${where} returned not-found, but ${read.key} = ${truth.value} was created at index ${truth.index}, at or below the read index`,
        )
      }
      return
    }
    if (truth === undefined || truth.value !== value) {
      fail(
        Invariant.writeOnce,
        `${where} returned ${value}, but its value is ${String(truth?.value)}`,
      )
    }
    if (!this.readSeen.has(read.key)) {
      this.readSeen.set(read.key, { seq, ctx: read.ctx, node: read.node, value })
    }
  }
}

/** fail throws a CheckFailed. */
export function fail(invariant: string, details: string): never {
  throw new CheckFailed(invariant, details)
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false
  if (a.data === b.data) return true
  if (a.data.byteLength !== b.data.byteLength) return false
  for (let i = 0; i < a.data.byteLength; i++) if (a.data[i] !== b.data[i]) return false
  return true
}

function normalConf(c: ConfState): ConfState {
  return { voters: [...c.voters].sort(), learners: [...c.learners].sort() }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true
  if (a.length !== b.length) return false
  let inOrder = true
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      inOrder = false
      break
    }
  }
  if (inOrder) return true
  const x = [...a].sort()
  const y = [...b].sort()
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

/** sameConf compares configurations as sets (voters and learners sorted). */
export function sameConf(a: ConfState, b: ConfState): boolean {
  return sameList(a.voters, b.voters) && sameList(a.learners, b.learners)
}

/** describeConf renders a configuration. */
export function describeConf(c: ConfState): string {
  return `voters [${[...c.voters].sort().join(',')}] learners [${[...c.learners].sort().join(',')}]`
}

const decoder = new TextDecoder()

function describeEntry(e: Entry): string {
  const body = e.data.byteLength === 0 ? '(empty)' : decoder.decode(e.data.subarray(0, 80))
  return `${e.index}@${e.term} ${e.type} ${body}`
}
