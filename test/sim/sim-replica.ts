// SimReplica is one simulated database node: a Raft core, its MemoryStorage, the write-once
// state machine and a SimDisk, driven by the host's Ready loop (persist, then send, then
// apply, then advance; one Ready in flight at a time, with a drawn fsync latency, or in slow
// runs a drawn duration for every Ready that writes or applies; messages are stepped into the
// core meanwhile, as the database host does while it awaits its store). It streams
// snapshots to followers as chunk packets and assembles the ones it receives, takes its own
// snapshots every `compactEvery` applied entries, and restarts from its disk alone. It reports
// what it observes to the Checkers; the Simulation decides when it ticks, crashes and restarts.
import type { SeededRng } from '../../src/base/index.ts'
import {
  applyConfChangeTo,
  bootstrapSnapshot,
  decodeConfChange,
  EMPTY_CONF,
  EMPTY_HARD_STATE,
  MemoryStorage,
  Raft,
  type ConfChange,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotMessage,
  type SnapshotMeta,
} from '../../src/raft/index.ts'
import { describeConf, fail, Invariant, type Checkers, type ReadRecord } from './checkers.ts'
import { SimDisk, type DurableState } from './sim-disk.ts'
import {
  decodeKv,
  decodePut,
  encodeKv,
  KvStateMachine,
  type PutResult,
} from './sim-state-machine.ts'
import type { Trace } from './sim-trace.ts'

/** NetPayload is what travels in a packet: a Raft message or one chunk of a snapshot. */
export type NetPayload =
  | { readonly kind: 'msg'; readonly msg: Message }
  | {
      readonly kind: 'chunk'
      readonly snapId: number
      readonly part: number
      readonly parts: number
      readonly data: Uint8Array
      readonly msg: SnapshotMessage
    }
  /** snapAck is the receiving host's answer once a snapshot's chunks all arrived. */
  | { readonly kind: 'snapAck'; readonly snapId: number }

/** ReplicaHost is what a replica needs from the simulation around it. */
export interface ReplicaHost {
  now(): number
  /** send puts a payload on the network; false if it was dropped at once (blocked link). */
  send(from: NodeId, to: NodeId, payload: NetPayload): boolean
  isBlocked(from: NodeId, to: NodeId): boolean
  schedule(at: number, fn: () => void): void
  nextSnapId(): number
  readonly checkers: Checkers
  readonly trace: Trace
  /** onRole hears every role change a replica observes (the fault schedule may react). */
  onRole(node: NodeId, role: Role, term: number): void
}

/** RaftKnobs are the per-run Raft settings every replica of a run shares. */
export type RaftKnobs = Omit<RaftConfig, 'id' | 'initial'>

/** ReplicaOptions are the per-run host settings. */
export interface ReplicaOptions {
  readonly raft: RaftKnobs
  /** compactEvery is how many applied entries trigger a snapshot and compaction. */
  readonly compactEvery: number
  /** diskLatencyMax bounds the drawn fsync latency in virtual ms (0: fsync is instant). */
  readonly diskLatencyMax: number
  /** chunkBytes is the size of one snapshot chunk packet. */
  readonly chunkBytes: number
  /** reportSnapshotOnSend reports a snapshot transfer done as soon as its chunks are sent;
   * otherwise when the receiving host's snapAck arrives (the transfer really finished). */
  readonly reportSnapshotOnSend: boolean
  /** slowReadyMax, when above 0, makes every Ready that writes or applies anything take 1 to
   * slowReadyMax virtual ms (the host awaits its store's transaction, as the database does),
   * not only the ones that must fsync; messages keep being stepped meanwhile, and the Ready's
   * committed entries are applied only at its end. */
  readonly slowReadyMax: number
}

/** ProposalWaiter hears how a proposal ended: its result, or undefined if it was dropped. */
export interface ProposalWaiter {
  readonly term: number
  settle(result: PutResult | undefined, index: number): void
}

interface Assembly {
  readonly parts: (Uint8Array | undefined)[]
  got: number
}

/** initialDurable is the disk of a bootstrapping member (voters given) or of a joining one. */
export function initialDurable(voters: readonly NodeId[] | undefined): DurableState {
  if (voters === undefined) {
    return {
      hardState: EMPTY_HARD_STATE,
      snapMeta: { index: 0, term: 0, conf: EMPTY_CONF },
      log: [],
      snapData: new Uint8Array(0),
      kv: new Map(),
      applied: 0,
      conf: EMPTY_CONF,
    }
  }
  const snap = bootstrapSnapshot(voters)
  return {
    hardState: { term: 1, vote: '', commit: 1 },
    snapMeta: snap,
    log: [],
    snapData: new Uint8Array(0),
    kv: new Map(),
    applied: 1,
    conf: snap.conf,
  }
}

/** SimReplica is one node: core, storage, state machine and disk, with the Ready loop. */
export class SimReplica {
  readonly disk: SimDisk
  /** up tells whether the node is running. */
  up = false
  /** incarnation counts starts and crashes; timers of an older incarnation do nothing. */
  incarnation = 0
  private raft!: Raft
  private storage!: MemoryStorage
  private sm!: KvStateMachine
  // The data of storage.snapshot() and of a few earlier snapshots, by `${index}/${term}`: a
  // 'snap' message the core made before a compaction names the snapshot it saw then.
  private snapHistory = new Map<string, Uint8Array>()
  // Snapshot streams this node sent and not yet heard back about: snapId → follower.
  private readonly outgoingSnaps = new Map<number, NodeId>()
  private inflight: Ready | undefined
  // The highest commit index this incarnation persisted or restarted with.
  private persistedCommit = 0
  private lastHardState: HardState = EMPTY_HARD_STATE
  // A Ready completed (or the node restarted) since the configuration was last checked. The
  // core's configuration changes only through a Ready (a restored snapshot) or a conf change
  // the host applies, and some Ready follows any input that changes state, so checking after
  // Readies alone misses nothing for long.
  private confDirty = false
  private lastRole: Role = 'follower'
  private lastTerm = 0
  /** knownLeader is the leader this node last knew of (from its soft state). */
  knownLeader: NodeId = ''
  private readonly waiters = new Map<number, ProposalWaiter>()
  private readonly pendingReads = new Map<string, ReadRecord>()
  private waitingReads: { rec: ReadRecord; rs: ReadState }[] = []
  private readonly assemblies = new Map<number, Assembly>()
  private readonly receivedSnaps = new Map<string, Uint8Array>()
  /** stats about this node over the run. */
  readonly stats = { crashes: 0, snapshotsSent: 0, snapshotsInstalled: 0, compactions: 0 }

  constructor(
    readonly id: NodeId,
    private readonly host: ReplicaHost,
    private readonly options: ReplicaOptions,
    private readonly rng: SeededRng,
    initial: DurableState,
  ) {
    this.disk = new SimDisk(initial)
    // Disks differ: in slow runs each node gets its own bound, so some lag behind the rest.
    const slow = options.slowReadyMax
    this.slowReadyMax = slow > 0 ? rng.pick([Math.max(1, Math.ceil(slow / 10)), slow]) : 0
  }

  /** slowReadyMax is this node's bound on a Ready's duration (see ReplicaOptions). */
  private readonly slowReadyMax: number

  // ------------------------------------------------------------------ lifecycle

  /** start boots the node from its disk alone (first start or restart). */
  start(): void {
    if (this.up) return
    const d = this.disk.restartCopy()
    this.storage = new MemoryStorage(d.snapMeta)
    this.storage.append(d.log)
    this.sm = new KvStateMachine(d.kv, d.applied, d.conf)
    this.snapHistory = new Map([[`${d.snapMeta.index}/${d.snapMeta.term}`, d.snapData]])
    this.outgoingSnaps.clear()
    this.persistedCommit = d.hardState.commit
    this.lastHardState = d.hardState
    this.lastRole = 'follower'
    this.lastTerm = d.hardState.term
    this.knownLeader = ''
    this.incarnation++
    this.raft = new Raft(
      {
        ...this.options.raft,
        id: this.id,
        initial: { hardState: d.hardState, applied: d.applied, conf: d.conf },
      },
      this.storage,
      this.rng.child(),
    )
    this.up = true
    const checkers = this.host.checkers
    checkers.checkReadable(this.id, this.sm.applied, this.sm.kv, 'after restart')
    checkers.onVote(this.id, d.hardState.term, d.hardState.vote, 'its hard state after a restart')
    this.confDirty = true
    this.checkConf('after restart')
    // As the real host does (Replica.start): the only voter campaigns as it starts.
    const { voters } = this.raft.status().conf
    if (voters.length === 1 && voters[0] === this.id) this.raft.campaign()
    this.pump()
  }

  /** crash stops the node at once: memory is lost, unsynced writes are dropped (maybe a prefix
   * kept). Proposals waiting here are reported dropped. */
  crash(keepPrefix: boolean): { kept: number; lost: number } {
    if (!this.up) return { kept: 0, lost: 0 }
    this.up = false
    this.incarnation++
    this.stats.crashes++
    const r = this.disk.crash(this.rng, keepPrefix)
    this.inflight = undefined
    this.host.checkers.onLeaderEnd(this.id)
    const waiters = [...this.waiters.entries()]
    this.waiters.clear()
    this.pendingReads.clear()
    this.waitingReads = []
    this.assemblies.clear()
    this.receivedSnaps.clear()
    this.outgoingSnaps.clear()
    for (const [index, w] of waiters) w.settle(undefined, index)
    return r
  }

  // ------------------------------------------------------------------ inputs

  /** tick advances the node's logical clock by one tick. */
  tick(): void {
    if (!this.up) return
    this.raft.tick()
    this.afterInput()
  }

  /** receive handles a packet from the network. */
  receive(payload: NetPayload, at: number): void {
    if (!this.up) return
    switch (payload.kind) {
      case 'msg':
        this.host.trace.message(at, payload.msg)
        this.raft.step(payload.msg)
        this.afterInput()
        return
      case 'chunk':
        this.receiveChunk(payload, at)
        return
      case 'snapAck': {
        // The transfer finished: the core may probe the follower again.
        const to = this.outgoingSnaps.get(payload.snapId)
        if (to === undefined) return
        this.outgoingSnaps.delete(payload.snapId)
        this.raft.reportSnapshot(to, true)
        this.afterInput()
        return
      }
    }
  }

  /** propose offers a put to the core. When it is accepted, waiterFor makes the waiter that
   * hears the outcome; it is registered before the Ready loop runs, which may apply the entry
   * at once (a single voter). */
  propose(
    data: Uint8Array,
    waiterFor?: (index: number, term: number) => ProposalWaiter,
  ): ProposeResult {
    if (!this.up) return { ok: false, reason: 'not_leader' }
    const r = this.raft.propose(data)
    if (r.ok && waiterFor) this.addWaiter(r.index, waiterFor(r.index, r.term))
    this.afterInput()
    return r
  }

  /** proposeConfChange offers a membership change to the core. */
  proposeConfChange(cc: ConfChange): ProposeResult {
    if (!this.up) return { ok: false, reason: 'not_leader' }
    const r = this.raft.proposeConfChange(cc)
    this.afterInput()
    return r
  }

  /** readIndex starts a linearizable read; false if the core dropped it. */
  readIndex(rec: ReadRecord): boolean {
    if (!this.up) return false
    if (!this.raft.readIndex(rec.ctx)) return false
    this.pendingReads.set(rec.ctx, rec)
    if (this.pendingReads.size > 512) {
      const oldest = this.pendingReads.keys().next().value
      if (oldest !== undefined) this.pendingReads.delete(oldest)
    }
    this.afterInput()
    return true
  }

  /** transferLeader asks the core to hand leadership to `to`. */
  transferLeader(to: NodeId): void {
    if (!this.up) return
    this.raft.transferLeader(to)
    this.afterInput()
  }

  /** status is the core's status (the node must be up). */
  status(): ReturnType<Raft['status']> {
    return this.raft.status()
  }

  /** role is the node's current role and term, or undefined when down. */
  roleNow(): { role: Role; term: number } | undefined {
    return this.up ? { role: this.lastRole, term: this.lastTerm } : undefined
  }

  /** applied is the state machine's applied index. */
  get applied(): number {
    return this.sm.applied
  }

  /** read returns a key's value in the local state machine. */
  read(key: string): string | undefined {
    return this.sm.get(key)
  }

  /** kv is the local state machine's map (read only). */
  kv(): ReadonlyMap<string, string> {
    return this.sm.kv
  }

  private addWaiter(index: number, w: ProposalWaiter): void {
    const old = this.waiters.get(index)
    if (old !== undefined) old.settle(undefined, index)
    this.waiters.set(index, w)
  }

  // ------------------------------------------------------------------ the Ready loop

  private afterInput(): void {
    this.observe()
    this.pump()
  }

  /** observe reports the core's role to the checkers (Election Safety). With no Ready in
   * flight, the next ready() carries any change in its soft state at once; only while a Ready
   * waits for its fsync is the status asked, so that no role goes unseen. */
  private observe(): void {
    if (this.inflight === undefined) return
    const s = this.raft.status()
    this.noteRole(s.role, s.term, s.leader)
  }

  private noteRole(role: Role, term: number, leader: NodeId): void {
    this.knownLeader = leader
    if (role === this.lastRole && term === this.lastTerm) return
    if (term < this.lastTerm) {
      fail(Invariant.hostContract, `${this.id}'s term went back from ${this.lastTerm} to ${term}`)
    }
    this.host.trace.event(
      this.host.now(),
      `${this.id} becomes ${role} in term ${term}${leader ? ` (leader ${leader})` : ''}`,
    )
    if (this.lastRole === 'leader') this.host.checkers.onLeaderEnd(this.id)
    this.lastRole = role
    this.lastTerm = term
    this.host.checkers.onRole(this.id, term, role)
    this.host.onRole(this.id, role, term)
  }

  /** pump runs the Ready loop until the core has nothing to do or a Ready is pending. */
  private pump(): void {
    while (this.up && this.inflight === undefined) {
      if (!this.raft.hasReady()) {
        this.checkConf('between Ready loops')
        return
      }
      const rd = this.raft.ready()
      if (rd === undefined) {
        this.checkConf('between Ready loops')
        return
      }
      this.noteRole(rd.softState.role, rd.softState.term, rd.softState.leader)
      this.inflight = rd
      this.persist(rd)
      const mustSync = rd.mustSync || rd.entries.length > 0 || rd.snapshot !== undefined
      const latency = this.readyLatency(rd, mustSync)
      if (latency === 0) {
        this.complete(rd, mustSync)
        continue
      }
      const incarnation = this.incarnation
      this.host.schedule(this.host.now() + latency, () => {
        if (this.incarnation !== incarnation) return
        this.complete(rd, mustSync)
        this.pump()
      })
      return
    }
  }

  /** readyLatency draws how long the host takes over rd: a fsync's latency, or (slowReady
   * runs) the store's transaction for anything it writes or applies. */
  private readyLatency(rd: Ready, mustSync: boolean): number {
    const slow = this.slowReadyMax
    if (slow > 0 && (mustSync || rd.hardState !== undefined || rd.committedEntries.length > 0)) {
      return this.rng.range(1, slow)
    }
    const max = this.options.diskLatencyMax
    return mustSync && max > 0 ? this.rng.int(max + 1) : 0
  }

  /** checkConf checks the core's configuration against the one the state machine stored,
   * when no Ready is outstanding and the core has nothing for one (or after a restart). */
  private checkConf(when: string): void {
    if (!this.confDirty) return
    this.confDirty = false
    this.host.checkers.checkConf(
      this.id,
      this.raft.status().conf,
      this.sm.conf,
      this.sm.applied,
      when,
    )
  }

  /** persist writes the Ready's hard state, snapshot and entries in one record (not yet
   * synced) and updates the in-memory storage and state machine the core reads. */
  private persist(rd: Ready): void {
    const checkers = this.host.checkers
    const hs = rd.hardState
    if (hs) {
      const prev = this.lastHardState
      if (hs.term < prev.term || hs.commit < prev.commit) {
        fail(
          Invariant.hostContract,
          `${this.id}'s hard state goes back: ${JSON.stringify(prev)} → ${JSON.stringify(hs)}`,
        )
      }
      this.lastHardState = hs
    }
    const snapshot = rd.snapshot ? this.installSnapshot(rd.snapshot) : undefined
    if (rd.entries.length > 0)
      checkers.onStable(this.id, this.storage, rd.entries, this.persistedCommit)
    if (hs || snapshot || rd.entries.length > 0) {
      this.disk.write({ kind: 'raft', hardState: hs, snapshot, entries: rd.entries })
    }
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries)
      checkers.onStableDone(this.id, this.storage, rd.entries)
    }
    if (hs && rd.softState.role === 'leader') {
      checkers.onLeaderCommit(this.id, rd.softState.term, hs.commit, this.storage)
    }
    if (hs && hs.commit > this.persistedCommit) this.persistedCommit = hs.commit
  }

  /** installSnapshot installs a snapshot from the leader in memory; it returns the disk part. */
  private installSnapshot(meta: SnapshotMeta): {
    meta: SnapshotMeta
    data: Uint8Array
    kv: Map<string, string>
  } {
    const key = `${meta.index}/${meta.term}`
    const data = this.receivedSnaps.get(key)
    if (data === undefined) {
      fail(
        Invariant.hostContract,
        `${this.id}'s Ready holds snapshot ${key}, whose data never arrived`,
      )
    }
    if (meta.index <= this.sm.applied) {
      fail(
        Invariant.hostContract,
        `${this.id}'s Ready installs snapshot ${key} at or below its applied index ${this.sm.applied}`,
      )
    }
    const kv = decodeKv(data)
    this.host.checkers.onSnapshotInstalled(this.id, meta, kv)
    this.storage.applySnapshot(meta)
    this.sm = new KvStateMachine(new Map(kv), meta.index, meta.conf)
    this.rememberSnapshot(meta, data)
    for (const k of [...this.receivedSnaps.keys()]) {
      if (Number(k.split('/')[0]) <= meta.index) this.receivedSnaps.delete(k)
    }
    this.stats.snapshotsInstalled++
    this.host.trace.event(
      this.host.now(),
      `${this.id} installs snapshot ${meta.index}@${meta.term}`,
    )
    // Proposals this node made below the snapshot will never be seen applied here.
    for (const [index, w] of [...this.waiters]) {
      if (index <= meta.index) {
        this.waiters.delete(index)
        w.settle(undefined, index)
      }
    }
    return { meta, data, kv }
  }

  /** complete finishes a Ready once its writes are durable: send, apply, advance. */
  private complete(rd: Ready, mustSync: boolean): void {
    if (mustSync) this.disk.sync()
    const snapReports: [NodeId, boolean][] = []
    const unreachable = new Set<NodeId>()
    const checkers = this.host.checkers
    // The hard state is durable now: its vote binds the node for its term (§5.2).
    if (rd.hardState)
      checkers.onVote(this.id, rd.hardState.term, rd.hardState.vote, 'its durable hard state')
    const durable = this.disk.durable()
    for (const m of rd.messages) {
      checkers.checkDurable(this.id, m, durable)
      checkers.onSend(m)
      if (m.type === 'snap') {
        const sent = this.sendSnapshot(m)
        if (sent === false) snapReports.push([m.to, false])
        else if (this.options.reportSnapshotOnSend) snapReports.push([m.to, true])
        continue
      }
      if (
        !this.host.send(this.id, m.to, { kind: 'msg', msg: m }) &&
        this.host.isBlocked(this.id, m.to)
      ) {
        if (m.type === 'app') unreachable.add(m.to)
      }
    }
    this.apply(rd.committedEntries, rd.softState.term)
    for (const rs of rd.readStates) {
      const rec = this.pendingReads.get(rs.ctx)
      if (rec === undefined) continue
      this.pendingReads.delete(rs.ctx)
      checkers.onReadState(rec, rs, this.id)
      this.waitingReads.push({ rec, rs })
    }
    this.raft.advance(rd)
    this.inflight = undefined
    this.confDirty = true
    for (const [to, ok] of snapReports) this.raft.reportSnapshot(to, ok)
    for (const to of unreachable) this.raft.reportUnreachable(to)
    this.serveReads()
    this.maybeCompact()
  }

  private rememberSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.snapHistory.set(`${meta.index}/${meta.term}`, data)
    if (this.snapHistory.size > 3) {
      const oldest = this.snapHistory.keys().next().value
      if (oldest !== undefined) this.snapHistory.delete(oldest)
    }
  }

  private apply(entries: readonly Entry[], term: number): void {
    if (entries.length === 0) return
    const checkers = this.host.checkers
    const puts: [string, string][] = []
    const last = entries[entries.length - 1]
    if (last) checkers.checkDurableApply(this.id, last, this.disk.durable())
    for (const e of entries) {
      if (e.index !== this.sm.applied + 1) {
        fail(
          Invariant.hostContract,
          `${this.id} is handed entry ${e.index} to apply after applied index ${this.sm.applied}`,
        )
      }
      let result: PutResult | undefined
      if (e.type === 'conf') {
        const cc = decodeConfChange(e.data)
        const before = this.raft.status().conf
        const stored = this.sm.conf
        this.sm.conf = this.raft.applyConfChange(cc, e.index)
        // The core returns its configuration object unchanged when it ignores the change (a
        // snapshot restored while this Ready was outstanding covers it): the interleaving the
        // slow-Ready and conf-churn runs aim at.
        const ignored = this.sm.conf === before
        if (ignored) checkers.counts.confIgnored++
        checkers.onApply(this.id, term, e, undefined, undefined)
        this.host.trace.event(
          this.host.now(),
          `${this.id} applies ${e.index}@${e.term} conf ${cc.type} ${cc.node} → ${describeConf(this.sm.conf)}` +
            (ignored
              ? ` (ignored by the core: a restored snapshot covers it; on the stored ${describeConf(stored)} it would give ${describeConf(applyConfChangeTo(stored, cc))})`
              : ''),
        )
      } else if (e.data.byteLength === 0) {
        checkers.onApply(this.id, term, e, undefined, undefined)
      } else {
        const cmd = decodePut(e.data)
        result = this.sm.put(cmd.key, cmd.value)
        if (result === 'created') puts.push([cmd.key, cmd.value])
        checkers.onApply(this.id, term, e, cmd, result)
      }
      this.sm.applied = e.index
      const w = this.waiters.get(e.index)
      if (w !== undefined) {
        this.waiters.delete(e.index)
        w.settle(w.term === e.term ? (result ?? 'created') : undefined, e.index)
      }
    }
    this.disk.write({ kind: 'apply', puts, applied: this.sm.applied, conf: this.sm.conf })
  }

  private serveReads(): void {
    if (this.waitingReads.length === 0) return
    const applied = this.sm.applied
    const still: { rec: ReadRecord; rs: ReadState }[] = []
    for (const w of this.waitingReads) {
      if (w.rs.index > applied) {
        still.push(w)
        continue
      }
      this.host.checkers.onReadServed(w.rec, this.sm.get(w.rec.key), applied, w.rs)
    }
    this.waitingReads = still
  }

  /** maybeCompact snapshots the state machine every compactEvery applied entries. */
  private maybeCompact(): void {
    const snapIndex = this.storage.snapshot().index
    const applied = this.sm.applied
    if (applied - snapIndex < this.options.compactEvery) return
    const term = this.storage.term(applied)
    if (term === undefined) {
      fail(
        Invariant.hostContract,
        `${this.id} applied ${applied} but its stable log has no term there`,
      )
    }
    // The state machine first (its apply records), then the snapshot record: both synced.
    this.disk.sync()
    const meta: SnapshotMeta = { index: applied, term, conf: this.sm.conf }
    const data = encodeKv(this.sm.kv)
    this.disk.write({ kind: 'compact', meta, data })
    this.disk.sync()
    this.storage.compact(applied, this.sm.conf)
    this.rememberSnapshot(meta, data)
    this.stats.compactions++
  }

  // ------------------------------------------------------------------ snapshots on the wire

  /** sendSnapshot streams the snapshot m names as chunks. It returns false if the transfer
   * failed at once (the link is cut), undefined if it is under way: the receiving host's
   * snapAck reports it finished. */
  private sendSnapshot(m: SnapshotMessage): false | undefined {
    const own = m.snapshot
    const data = this.snapHistory.get(`${own.index}/${own.term}`)
    if (data === undefined) {
      const held = this.storage.snapshot()
      fail(
        Invariant.hostContract,
        `${this.id} sends snapshot ${own.index}@${own.term}, which it never took (it holds ${held.index}@${held.term})`,
      )
    }
    if (this.host.isBlocked(this.id, m.to)) return false
    this.stats.snapshotsSent++
    const size = this.options.chunkBytes
    const parts = Math.max(1, Math.ceil(data.byteLength / size))
    const snapId = this.host.nextSnapId()
    if (!this.options.reportSnapshotOnSend) this.outgoingSnaps.set(snapId, m.to)
    if (this.outgoingSnaps.size > 64) {
      const oldest = this.outgoingSnaps.keys().next().value
      if (oldest !== undefined) this.outgoingSnaps.delete(oldest)
    }
    this.host.trace.event(
      this.host.now(),
      `${this.id} streams snapshot ${own.index}@${own.term} to ${m.to} in ${parts} chunks`,
    )
    for (let part = 0; part < parts; part++) {
      const chunk = data.subarray(part * size, Math.min(data.byteLength, (part + 1) * size))
      this.host.send(this.id, m.to, { kind: 'chunk', snapId, part, parts, data: chunk, msg: m })
    }
    return undefined
  }

  private receiveChunk(p: Extract<NetPayload, { kind: 'chunk' }>, at: number): void {
    let a = this.assemblies.get(p.snapId)
    if (a === undefined) {
      a = { parts: new Array<Uint8Array | undefined>(p.parts), got: 0 }
      this.assemblies.set(p.snapId, a)
      if (this.assemblies.size > 16) {
        const oldest = this.assemblies.keys().next().value
        if (oldest !== undefined) this.assemblies.delete(oldest)
      }
    }
    if (a.parts[p.part] !== undefined) return
    a.parts[p.part] = p.data
    a.got++
    if (a.got < p.parts) return
    this.assemblies.delete(p.snapId)
    let size = 0
    for (const c of a.parts) size += c?.byteLength ?? 0
    const data = new Uint8Array(size)
    let off = 0
    for (const c of a.parts) {
      if (c === undefined) continue
      data.set(c, off)
      off += c.byteLength
    }
    const meta = p.msg.snapshot
    this.receivedSnaps.set(`${meta.index}/${meta.term}`, data)
    if (this.receivedSnaps.size > 8) {
      const oldest = this.receivedSnaps.keys().next().value
      if (oldest !== undefined) this.receivedSnaps.delete(oldest)
    }
    this.host.send(this.id, p.msg.from, { kind: 'snapAck', snapId: p.snapId })
    this.host.trace.message(at, p.msg)
    this.raft.step(p.msg)
    this.afterInput()
  }
}
