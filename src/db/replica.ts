// Replica is the only place the Raft core meets I/O: it paces the core with a tick timer,
// feeds it peer messages, and runs the Ready loop (persist with one fsync for many proposals,
// send, apply, advance). On top it offers the database operations the HTTP layer needs:
// put through Raft, a linearizable read barrier, membership changes and leadership transfer.
// It does not speak HTTP and does not forward to the leader; the server does that.
//
// A full disk. When the store refuses a Ready for want of space (DiskUnavailableError; the
// store is unchanged), the Replica holds that Ready and writes it again every second until it
// succeeds. Holding it is what a very slow disk looks like to Raft: nothing that depends on
// it (acknowledgements, votes, appends of a new leader, applied results) goes out, so this
// member stops acknowledging and, as a leader, stops heartbeating; the others elect a leader
// without it. Meanwhile its writes and reads that need Raft fail at once with
// StorageUnavailableError, values it holds are still served, and it recovers by itself.
// While it holds a Ready its core stands still: no ticks, and peer messages are dropped (but
// a new leader's first, so that it follows and forwards writes to it).
import { randomBytes } from 'node:crypto'
import { pack, unpack } from 'msgpackr'
import type { Logger } from 'pino'
import { SeededRng } from '../base/index.ts'
import {
  decodeConfChange,
  NONE,
  Raft,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SoftState,
  type Status,
} from '../raft/index.ts'
import {
  DiskFailedError,
  DiskUnavailableError,
  type ApplyTxn,
  type LmdbStore,
  type MemberAddress,
} from '../storage/index.ts'
import type { IncomingSnapshot, SnapshotSource, Transport } from '../transport/transport.ts'
import {
  BadRequestError,
  NoLeaderError,
  OutcomeUnknownError,
  RemovedError,
  StorageUnavailableError,
  UnavailableError,
} from '../protocol/index.ts'
import { decodePut, encodePut } from './command.ts'

/** PutResult is what applying a put did: created it, found identical bytes, or other bytes. */
export type PutResult = 'created' | 'exists' | 'conflict'

/** ReplicaOptions configures a Replica. */
export interface ReplicaOptions {
  readonly id: NodeId
  readonly store: LmdbStore
  readonly transport: Transport
  readonly logger: Logger
  /** tickMs is the length of one Raft tick. */
  readonly tickMs?: number
  /** electionTicks is the minimum election timeout in ticks. */
  readonly electionTicks?: number
  /** snapshotEntries is how many applied entries trigger a log compaction. */
  readonly snapshotEntries?: number
  /** commitTimeoutMs bounds how long a put waits for its entry to apply. */
  readonly commitTimeoutMs?: number
  /** maxUncommittedBytes bounds proposed but uncommitted bytes on the leader. */
  readonly maxUncommittedBytes?: number
  /** seed seeds election jitter; random by default. */
  readonly seed?: number
  /** batchWaitMs is how long the leader waits, after answering some writes, for their
   * writers to send the next ones, so that those go to disk in one transaction (see
   * Replica.put; 0: never; BATCH_WAIT_MS_DEFAULT). */
  readonly batchWaitMs?: number
}

/** PutWaiter settles a put's promise. */
interface PutWaiter {
  readonly resolve: (r: PutResult) => void
  readonly reject: (e: Error) => void
}

interface PendingPut extends PutWaiter {
  readonly term: number
}

/** QueuedPut is a put the leader holds before proposing it (see Replica.put). */
interface QueuedPut extends PutWaiter {
  readonly data: Uint8Array
  /** at is when it arrived (ms epoch): its commit timeout counts from then. */
  readonly at: number
}

/** BatchWindow is the leader's wait for the writers it answered to write again. */
interface BatchWindow {
  /** expect is how many writes it answered (Replica.returned counts those that came back). */
  readonly expect: number
  readonly timer: NodeJS.Timeout
}

/** PendingForward is a put this member passed to the leader (Replica.forwardPut). */
interface PendingForward extends PutWaiter {
  /** leader is the member it went to. */
  readonly leader: NodeId
  /** deadline is when it is given up if its entry has not applied here (ms epoch). */
  readonly deadline: number
}

interface PendingRead {
  readonly resolve: () => void
  readonly reject: (e: Error) => void
}

/** NO_LEADER_WAIT_MIN_MS is the least time a member without a leader waits for one before it
 * answers no_leader. */
const NO_LEADER_WAIT_MIN_MS = 2_000

function commitTimeoutError(): UnavailableError {
  return new UnavailableError(
    'the write did not commit in time; it may still apply, and retrying is safe',
  )
}

/** ProposalLostError means the entry was replaced before it committed: retrying is safe. */
export class ProposalLostError extends Error {}

/** NotLeaderError means this member cannot propose; leader is the member that can, if known. */
export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(leader === NONE ? 'no leader known' : `not the leader; ${leader} is`)
  }
}

/** PROMOTE_RETRY_MS is the pause after a failed promotion of a learner. */
const PROMOTE_RETRY_MS = 1_000

/** DISK_RETRY_MS is the pause between attempts to write a Ready the disk had no room for. */
const DISK_RETRY_MS = 1_000

/** APPLY_FLUSH_MS is how long what was applied in memory may wait for a Ready's transaction
 * to write it before a transaction of its own does. */
const APPLY_FLUSH_MS = 100

/** BATCH_WAIT_MS_DEFAULT is the default of ReplicaOptions.batchWaitMs (`oncekv db
 * --batch-wait-ms`). Here writers answered under load (16 at a time, on loopback) took about
 * 2.4 ms to send their next writes; with 1 ms most windows ran out, with 2 to 8 ms most
 * filled, and 4 to 8 ms gave the most writes per transaction. */
export const BATCH_WAIT_MS_DEFAULT = 4

/** HOLD_MAX_MS bounds how long the leader holds a put before proposing it (see put), for
 * when its group does not commit (a lost quorum, a disk that hangs: the leader steps down or
 * the puts time out meanwhile). Slow commits alone (a loaded machine, a slow disk) are no
 * reason to stop grouping, which saves the most there: with a bound of 10 ms, and of 100,
 * a loaded 2-core machine's commits crossed it often enough to keep grouping off. */
const HOLD_MAX_MS = 1_000

/** FORWARD_TIMEOUT_MS is how long a put passed to the leader may take to apply here before
 * it is given up (ProposalLostError: retrying is safe). */
const FORWARD_TIMEOUT_MS = 5_000

/** DISK_LOG_EVERY_MS is how often a disk that stays full is logged again. */
const DISK_LOG_EVERY_MS = 60_000

/** Replica runs one member of the database cluster. */
export class Replica {
  readonly id: NodeId
  readonly raft: Raft
  private readonly store: LmdbStore
  private readonly transport: Transport
  private readonly log: Logger
  private readonly tickMs: number
  private readonly electionTicks: number
  private readonly snapshotEntries: number
  private readonly commitTimeoutMs: number

  private members: Record<NodeId, MemberAddress>
  private tickTimer: NodeJS.Timeout | undefined
  private loopScheduled = false
  private inLoop = false
  private stopped = false
  private fatalError: Error | undefined
  // Invariant: every key of pendingPuts is an index proposed by this member as leader and
  // not yet applied.
  private readonly pendingPuts = new Map<number, PendingPut>()
  // Group commit (see put): whether the leader holds puts, the puts it holds (in arrival
  // order), the window open after answering some, and the bound on the oldest held put.
  private grouping = false
  private queuedPuts: QueuedPut[] = []
  private batchWindow: BatchWindow | undefined
  private holdTimer: NodeJS.Timeout | undefined
  private readonly batchWaitMs: number
  // Local puts settled since the last window opened, and puts that came since the first of
  // them was settled (see maybeGroup).
  private answeredInLoop = 0
  private returned = 0
  private readonly pendingReads = new Map<string, PendingRead>()
  // Reads waiting for the next ReadIndex round (readBarrier), and whether rounds are running.
  private readsWaiting: (PendingRead & { deadline: number })[] = []
  private readRoundsRunning = false
  // Puts passed to the leader, by their origin (forwardTag/sequence), until they apply here.
  private readonly forwarded = new Map<string, PendingForward>()
  private readonly forwardTag = randomBytes(12).toString('base64url')
  private forwardSeq = 0
  /** leaderChangedAt is when this member last saw its leader change (ms epoch). */
  private leaderChangedAt = Date.now()
  // Read states released by the core, waiting for the applied index to reach them.
  private readonly readsWaitingApply: { index: number; ctx: string }[] = []
  private readonly appliedWaiters: { index: number; resolve: () => void }[] = []
  private readonly leaderWaiters = new Set<() => void>()
  private readonly leaderWatchers = new Set<() => void>()
  private readonly snapshotsInFlight = new Set<NodeId>()
  private readonly snapshotFailures = new Map<NodeId, number>()
  private readSeq = 0
  // Distinguishes this process's ReadIndex ctx values from those of earlier runs.
  private readonly incarnation = randomBytes(6).toString('base64url')
  private lastLeaderContactMs = 0
  // Raft messages dropped because their sender is not a member, and when that was last logged.
  private droppedFromStrangers = 0
  private strangerLoggedAt = 0
  // Whether this member knows it was removed from the cluster (see isRemoved), and when it
  // last heard from a leader or started (for removalSuspected).
  private removed = false
  private readonly startedAt = Date.now()
  /** soft is the role, leader and term this member last reported (logged on change). */
  private soft: SoftState
  /** leaderLostAtMs is when this member last stopped knowing a leader (or started). */
  private leaderLostAtMs = Date.now()
  private lastCompactedIndex: number
  private promotionInFlight = false
  /** promoteNotBefore delays the next promotion attempt after a failed one (ms epoch). */
  private promoteNotBefore = 0
  private appliedIndex: number
  // The Raft loop's fsynced transactions since start, the log entries they held and the
  // seconds they took (diskStats).
  private readonly diskWrites = { writes: 0, entries: 0, seconds: 0 }
  // Snapshots installed since start, and how many chunks the latest one came in.
  private snapshotsInstalled = 0
  private lastSnapshotChunks = 0
  /** durableHardState is the last hard state made durable (term and vote matter here). */
  private durableHardState: HardState
  private onFatal: (e: Error) => void = () => {}
  // The Ready the disk had no room for (written again from DISK_RETRY_MS on), the refusal,
  // when it began, when the next attempt is due, and when it was last logged.
  private heldReady: Ready | undefined
  private diskError: DiskUnavailableError | undefined
  private diskErrorSince = 0
  private diskRetryAt = 0
  private diskLoggedAt = 0
  private diskRefusals = 0
  private diskProbeAt = 0
  private flushTimer: NodeJS.Timeout | undefined
  private flushDueAt = 0

  constructor(opts: ReplicaOptions) {
    this.id = opts.id
    this.store = opts.store
    this.transport = opts.transport
    this.log = opts.logger
    this.tickMs = opts.tickMs ?? 50
    this.electionTicks = opts.electionTicks ?? 10
    this.snapshotEntries = opts.snapshotEntries ?? 10_000
    this.commitTimeoutMs = opts.commitTimeoutMs ?? 10_000
    this.batchWaitMs = opts.batchWaitMs ?? BATCH_WAIT_MS_DEFAULT
    const initial = this.store.initialState()
    this.appliedIndex = initial.applied
    this.durableHardState = initial.hardState
    this.lastCompactedIndex = this.store.snapshot().index
    this.members = { ...this.store.members() }
    this.soft = { role: 'follower', leader: NONE, term: initial.hardState.term }
    this.raft = new Raft(
      {
        id: opts.id,
        electionTicks: this.electionTicks,
        // Five heartbeats per minimum election timeout (every 100 ms with the defaults, as
        // etcd): enough to keep followers from campaigning, and an idle cluster costs half
        // what one heartbeat per tick did. A commit or a read barrier does not wait for one.
        heartbeatTicks: Math.max(1, Math.floor(this.electionTicks / 5)),
        preVote: true,
        checkQuorum: true,
        maxSizePerMsg: 4 * 1024 * 1024,
        maxInflightMsgs: 64,
        maxUncommittedBytes: opts.maxUncommittedBytes ?? 256 * 1024 * 1024,
        // A new commit index rides on the next group's append (or goes out at the next tick):
        // under load a follower gets one message and makes one write per group, not two.
        lazyCommitNotice: true,
        initial,
      },
      this.store,
      new SeededRng(opts.seed ?? (Math.random() * 2 ** 32) >>> 0),
    )
  }

  /** start listens for peers and starts the tick timer. onFatal is called if the member
   * must stop (a failed write or sync, a broken invariant). */
  async start(onFatal: (e: Error) => void): Promise<void> {
    this.onFatal = onFatal
    this.updatePeers()
    await this.transport.start({
      onMessages: (from, msgs) => this.onMessages(from, msgs),
      onSnapshot: (incoming) => this.onSnapshot(incoming),
    })
    this.tickTimer = setInterval(() => this.onTick(), this.tickMs)
    // Restarted from the data directory of a member whose removal it had applied.
    if (this.confExcludesSelf()) this.becomeRemoved('its data directory records its removal')
    // The only voter has no one to wait for: it campaigns now rather than after an election
    // timeout (a new cluster's first member, a one-member cluster restarted), so it serves
    // writes half a second sooner. The core's own checks still apply (hup).
    else if (this.soleVoter()) this.raft.campaign()
    this.kick()
  }

  /** stop stops ticking, fails waiting operations and closes the transport. The store is
   * the caller's to close. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.tickTimer)
    const err = new UnavailableError('the node is shutting down')
    this.rejectQueued(err)
    for (const p of this.pendingPuts.values()) p.reject(err)
    this.pendingPuts.clear()
    this.rejectForwarded(err)
    for (const r of this.pendingReads.values()) r.reject(err)
    this.pendingReads.clear()
    for (const w of this.leaderWaiters) w()
    // Let a Ready in progress finish its write before the store closes, then write what was
    // applied in memory (not needed for safety: it saves applying it again on restart).
    await this.waitFor(() => !this.inLoop, 5_000).catch(() => {})
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    if (!this.inLoop && !this.heldReady && !this.fatalError) {
      try {
        this.store.flushApplied()
      } catch (e) {
        this.log.warn(
          { event: 'flush_failed', err: e },
          'could not write the applied state on stop',
        )
      }
    }
    await this.transport.close()
  }

  // ------------------------------------------------------------------ operations

  /**
   * forwardPut passes a put to the leader through Raft (a 'prop' message, batched with the
   * others of this Ready) and resolves with the result once this member applies the entry:
   * no HTTP request per write between members. It rejects with NotLeaderError when this
   * member leads or knows no leader, and with ProposalLostError when the entry has not
   * applied here FORWARD_TIMEOUT_MS later, or an election timeout after the leader changed
   * (the leader may have dropped it: retrying is safe, a re-put of the same bytes succeeds).
   */
  forwardPut(key: Uint8Array, value: Uint8Array): Promise<PutResult> {
    this.checkRunning()
    if (this.diskError) return Promise.reject(this.storageUnavailable())
    const token = `${this.forwardTag}/${++this.forwardSeq}`
    const leader = this.raft.status().leader
    if (!this.raft.forward(encodePut({ key, value, origin: Buffer.from(token, 'latin1') })))
      return Promise.reject(new NotLeaderError(leader))
    this.kick()
    return new Promise<PutResult>((resolve, reject) => {
      this.forwarded.set(token, {
        leader,
        deadline: Date.now() + FORWARD_TIMEOUT_MS,
        resolve,
        reject,
      })
    })
  }

  /** sweepForwarded gives up the forwarded puts past their deadline, and those sent to a
   * leader that changed more than an election timeout ago. */
  private sweepForwarded(): void {
    if (this.forwarded.size === 0) return
    const now = Date.now()
    const leader = this.raft.status().leader
    const settled = now - this.leaderChangedAt > this.electionTimeoutMs()
    for (const [token, p] of this.forwarded) {
      if (now < p.deadline && (p.leader === leader || !settled)) continue
      this.forwarded.delete(token)
      p.reject(
        new ProposalLostError(
          `the write passed to leader ${p.leader} did not apply here in time; retrying is safe`,
        ),
      )
    }
  }

  private rejectForwarded(err: Error): void {
    for (const p of this.forwarded.values()) p.reject(err)
    this.forwarded.clear()
  }

  /** put proposes a put on this member, which must lead. It resolves with the apply result
   * once the entry is applied here.
   *
   * Group commit. The leader writes one Ready at a time and answers the writes it commits
   * when a follower has them too. Writers that write again then arrive while the next
   * transaction (with the writes that came meanwhile) is on disk, and wait for it and one
   * more: n writers settle into groups that take turns, each transaction holding a part of
   * them, and every transaction costs about the same whatever it holds. So once it has seen
   * the writers it answered come back (see maybeGroup), the leader holds new puts while a
   * group of its own is in flight: from its proposal until all of it is answered and as many
   * new puts have come (or batchWaitMs has passed). Then it proposes all it holds together,
   * in arrival order. When writers do not come back (a window ran out with fewer than half
   * back), it proposes each put at once, until it sees them come back again. */
  put(key: Uint8Array, value: Uint8Array): Promise<PutResult> {
    this.checkRunning()
    if (this.diskError && this.raft.status().role === 'leader')
      return Promise.reject(this.storageUnavailable())
    const data = encodePut({ key, value })
    if (this.answeredInLoop > 0 || this.batchWindow !== undefined) this.returned++
    const w = this.batchWindow
    if (
      this.grouping &&
      (this.queuedPuts.length > 0 ||
        w !== undefined ||
        this.pendingPuts.size > 0 ||
        this.answeredInLoop > 0) &&
      this.heldReady === undefined &&
      // The role as of the last Ready (status() builds a snapshot per call): a leader that
      // stepped down since proposes what it holds after its next Ready (maybeGroup).
      this.soft.role === 'leader'
    ) {
      const held = new Promise<PutResult>((resolve, reject) => {
        this.queuedPuts.push({ data, at: Date.now(), resolve, reject })
      })
      this.holdTimer ??= setTimeout(() => this.holdExpired(), HOLD_MAX_MS)
      if (w !== undefined && this.returned >= w.expect) this.closeWindow(true)
      return held
    }
    if (w !== undefined && this.returned >= w.expect) this.closeWindow(true)
    return this.propose(data, this.commitTimeoutMs)
  }

  private propose(data: Uint8Array, timeoutMs: number): Promise<PutResult> {
    const r = this.raft.propose(data)
    if (!r.ok) {
      if (r.reason === 'not_leader')
        return Promise.reject(new NotLeaderError(this.raft.status().leader))
      if (r.reason === 'transferring')
        return Promise.reject(new UnavailableError('leadership is moving; retry'))
      return Promise.reject(new UnavailableError('too many writes in flight; retry', 1))
    }
    this.kick()
    return this.awaitApply(r.index, r.term, timeoutMs)
  }

  /** maybeGroup runs after each Ready and when the loop goes idle. Having answered k puts
   * since the last window, it opens a window of batchWaitMs for k returns (puts that came
   * since the first of them was answered): while grouping, once none of this member's puts
   * waits to commit (a group may commit in parts), holding what comes; otherwise at once,
   * counting only (closeWindow learns from it whether writers come back). Else it proposes
   * what it holds, unless its group is still in flight. A member that no longer leads
   * proposes what it holds: each put learns so (NotLeaderError) and goes to the leader. */
  private maybeGroup(): void {
    if (this.stopped) return
    if (this.soft.role !== 'leader') {
      this.answeredInLoop = 0
      this.returned = 0
      if (this.batchWindow !== undefined) clearTimeout(this.batchWindow.timer)
      this.batchWindow = undefined
      this.flushQueued()
      return
    }
    if (this.batchWindow !== undefined) return
    if (this.grouping && this.pendingPuts.size > 0) return
    const answered = this.answeredInLoop
    this.answeredInLoop = 0
    if (answered > 0 && this.batchWaitMs > 0) {
      this.batchWindow = {
        expect: answered,
        timer: setTimeout(() => this.closeWindow(false), this.batchWaitMs),
      }
      if (this.returned >= answered) this.closeWindow(true)
    } else {
      this.returned = 0
      this.flushQueued()
    }
  }

  /** holdExpired proposes puts held HOLD_MAX_MS: a commit of this member's did not come. */
  private holdExpired(): void {
    this.holdTimer = undefined
    this.log.warn(
      { event: 'writes_held_long', writes: this.queuedPuts.length, ms: HOLD_MAX_MS },
      'writes held for group commit waited too long for a commit; proposing them',
    )
    this.flushQueued()
  }

  /** closeWindow ends the open window: full (as many puts came back as it waited for) or
   * not. Writers that came back (at least half of them) make the leader group their writes;
   * a window that ran out with fewer, not. */
  private closeWindow(full: boolean): void {
    const w = this.batchWindow
    if (w === undefined) return
    clearTimeout(w.timer)
    this.batchWindow = undefined
    this.grouping = full || 2 * this.returned >= w.expect
    this.returned = 0
    this.flushQueued()
  }

  /** flushQueued proposes the held puts, oldest first. */
  private flushQueued(): void {
    if (this.holdTimer !== undefined) {
      clearTimeout(this.holdTimer)
      this.holdTimer = undefined
    }
    const queued = this.queuedPuts
    if (queued.length === 0) return
    this.queuedPuts = []
    const now = Date.now()
    for (const q of queued) {
      const left = this.commitTimeoutMs - (now - q.at)
      if (left <= 0) q.reject(commitTimeoutError())
      else this.propose(q.data, left).then(q.resolve, q.reject)
    }
  }

  /** rejectQueued fails every held put with err (none of them was proposed). */
  private rejectQueued(err: Error): void {
    if (this.batchWindow !== undefined) clearTimeout(this.batchWindow.timer)
    this.batchWindow = undefined
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer)
    this.holdTimer = undefined
    this.returned = 0
    const queued = this.queuedPuts
    this.queuedPuts = []
    for (const q of queued) q.reject(err)
  }

  private awaitApply<T extends PutResult>(
    index: number,
    term: number,
    timeoutMs: number,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingPuts.delete(index)
        reject(commitTimeoutError())
      }, timeoutMs)
      this.pendingPuts.set(index, {
        term,
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
    })
  }

  /** readBarrier resolves once this member has applied everything committed when it was
   * called (ReadIndex, thesis §6.4). It rejects when no leader answers in time. Reads share
   * rounds: one ReadIndex round is in flight at a time, and every read that arrives meanwhile
   * waits for the next one, which starts after all of them arrived (so it confirms a commit
   * index at least as new as any of theirs). */
  async readBarrier(timeoutMs = 3_000): Promise<void> {
    this.checkRunning()
    // Its ReadIndex request would wait behind the held Ready.
    if (this.heldReady) throw this.storageUnavailable()
    const deadline = Date.now() + timeoutMs
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new UnavailableError('no quorum confirmed the read in time')),
        timeoutMs,
      )
      this.readsWaiting.push({
        deadline,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      if (!this.readRoundsRunning) void this.runReadRounds()
    })
  }

  /** runReadRounds runs one ReadIndex round after another for the reads waiting, until none
   * is left. */
  private async runReadRounds(): Promise<void> {
    this.readRoundsRunning = true
    try {
      while (this.readsWaiting.length > 0) {
        const batch = this.readsWaiting
        this.readsWaiting = []
        // A read that timed out meanwhile was rejected already; settling it again is a no-op.
        let deadline = 0
        for (const r of batch) deadline = Math.max(deadline, r.deadline)
        try {
          await this.readIndexRound(deadline)
          for (const r of batch) r.resolve()
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e))
          for (const r of batch) r.reject(err)
        }
      }
    } finally {
      this.readRoundsRunning = false
    }
  }

  /** readIndexRound resolves once this member has applied everything committed when it was
   * called (a ReadIndex request). It rejects when no leader answers by the deadline. A
   * request left unanswered for half an election timeout is made again under a new ctx: a
   * leader that steps down, or a lost message, drops it without an answer, and the reads
   * waiting for the next round must not wait out the whole deadline behind it. */
  private async readIndexRound(deadline: number): Promise<void> {
    const retryMs = Math.max(100, this.electionTimeoutMs() / 2)
    for (;;) {
      this.checkRunning()
      if (this.heldReady) throw this.storageUnavailable()
      const ctx = `${this.id}:${this.incarnation}:${++this.readSeq}`
      if (!this.raft.readIndex(ctx)) {
        await this.waitForLeader(Math.min(deadline, this.noLeaderDeadline()))
        continue
      }
      this.kick()
      const answered = await new Promise<boolean>((resolve, reject) => {
        const last = deadline - Date.now() <= retryMs
        const timer = setTimeout(
          () => {
            this.pendingReads.delete(ctx)
            if (last) reject(new UnavailableError('no quorum confirmed the read in time'))
            else resolve(false)
          },
          Math.max(1, Math.min(retryMs, deadline - Date.now())),
        )
        this.pendingReads.set(ctx, {
          resolve: () => {
            clearTimeout(timer)
            resolve(true)
          },
          reject: (e) => {
            clearTimeout(timer)
            reject(e)
          },
        })
      })
      if (answered) return
    }
  }

  /** waitForLeader resolves when a leader is known, or rejects at the deadline. */
  async waitForLeader(deadline: number): Promise<NodeId> {
    for (;;) {
      this.checkRunning()
      const leader = this.raft.status().leader
      if (leader !== NONE) return leader
      const left = deadline - Date.now()
      if (left <= 0) throw new NoLeaderError()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 250))
        function done(): void {
          clearTimeout(timer)
          resolve()
        }
        this.leaderWaiters.add(done)
      })
      this.leaderWaiters.clear()
    }
  }

  /** electionTimeoutMs is the shortest election timeout. */
  electionTimeoutMs(): number {
    return this.electionTicks * this.tickMs
  }

  /** noLeaderDeadline is when this member, if it still knows no leader, stops waiting for
   * one: two election timeouts (the longest randomized one) after it lost its leader, and at
   * least NO_LEADER_WAIT_MIN_MS (an election on a busy machine, where a process waits for a
   * core, takes longer than the timeouts say). Past it, no quorum is reachable from here,
   * and waiting longer only delays the answer. */
  noLeaderDeadline(): number {
    return this.leaderLostAtMs + Math.max(2 * this.electionTimeoutMs(), NO_LEADER_WAIT_MIN_MS)
  }

  /** watchLeader calls onChange once when the leader this member knows changes (to another
   * member or to none); it returns the function that stops watching. */
  watchLeader(onChange: () => void): () => void {
    const w = (): void => {
      this.leaderWatchers.delete(w)
      onChange()
    }
    this.leaderWatchers.add(w)
    return () => this.leaderWatchers.delete(w)
  }

  /** changeMembership proposes a configuration change on this member (the leader) and
   * resolves once it is applied. */
  async changeMembership(cc: ConfChange): Promise<void> {
    this.checkRunning()
    if (this.diskError && this.raft.status().role === 'leader') throw this.storageUnavailable()
    const r = this.raft.proposeConfChange(cc)
    if (!r.ok) {
      if (r.reason === 'not_leader') throw new NotLeaderError(this.raft.status().leader)
      if (r.reason === 'invalid_conf_change') {
        throw new BadRequestError('that change would leave the cluster without a voter')
      }
      throw new UnavailableError(
        r.reason === 'conf_change_pending'
          ? 'another membership change is in progress; retry'
          : 'leadership is moving; retry',
      )
    }
    this.kick()
    await this.awaitApply(r.index, r.term, this.commitTimeoutMs)
  }

  /** transferLeadership asks the leader to hand over to `to` and waits until a leader other
   * than this member is known, or the timeout. */
  async transferLeadership(to: NodeId, timeoutMs = 3_000): Promise<boolean> {
    const started = Date.now()
    this.log.info(
      { event: 'transfer_leader', to, term: this.raft.status().term },
      `transferring leadership to ${to}`,
    )
    this.raft.transferLeader(to)
    this.kick()
    try {
      await this.waitFor(() => {
        const s = this.raft.status()
        return s.leader !== NONE && s.leader !== this.id && s.role !== 'leader'
      }, timeoutMs)
      const s = this.raft.status()
      this.log.info(
        {
          event: 'transfer_leader_done',
          to,
          leader: s.leader,
          term: s.term,
          ms: Date.now() - started,
        },
        `leadership transferred to ${s.leader}`,
      )
      return true
    } catch {
      this.log.warn(
        { event: 'transfer_leader_failed', to, ms: Date.now() - started },
        `leadership transfer to ${to} did not finish in time`,
      )
      return false
    }
  }

  /** get reads a key from the local store. */
  get(key: Uint8Array): Uint8Array | undefined {
    return this.store.get(key)
  }

  /** leader is the member this one takes as the leader (itself when it leads), or NONE. */
  leader(): NodeId {
    return this.raft.leader()
  }

  /** status is the core's status. */
  status(): Status {
    return this.raft.status()
  }

  /** memberAddresses is the address book of the current configuration. */
  memberAddresses(): Readonly<Record<NodeId, MemberAddress>> {
    return this.members
  }

  /** lastContactMs is how long ago this member heard from its leader (0 on the leader). */
  lastContactMs(): number {
    if (this.raft.status().role === 'leader') return 0
    return this.lastLeaderContactMs === 0 ? -1 : Date.now() - this.lastLeaderContactMs
  }

  /** isRemoved tells whether this member knows it was removed from the cluster: it applied
   * its own removal, or a peer that applied at least as much showed a configuration without
   * it (markRemoved). A removed member is removed for good: it stops ticking, so it never
   * campaigns again, and fails every operation with RemovedError. */
  isRemoved(): boolean {
    return this.removed
  }

  /** confExcludesSelf: this member had a configuration that no longer includes it (a member
   * still joining has none yet). */
  private confExcludesSelf(): boolean {
    const conf = this.raft.status().conf
    if (conf.voters.length === 0 && conf.learners.length === 0) return false
    return !conf.voters.includes(this.id) && !conf.learners.includes(this.id)
  }

  /** soleVoter: this member is the only voter of its configuration. */
  private soleVoter(): boolean {
    const { voters } = this.raft.status().conf
    return voters.length === 1 && voters[0] === this.id
  }

  /** removalSuspected: a member of its own configuration that has heard no leader for
   * `silentMs` (since it started, or since the leader's last message), and so may have been
   * removed without hearing of it (the leader stops talking to a member once its removal
   * applies). The host then asks peers (markRemoved). */
  removalSuspected(silentMs: number): boolean {
    if (this.removed || this.stopped || this.confExcludesSelf()) return false
    const conf = this.raft.status().conf
    if (conf.voters.length === 0 && conf.learners.length === 0) return false
    if (this.raft.status().role === 'leader') return false
    return Date.now() - Math.max(this.lastLeaderContactMs, this.startedAt) >= silentMs
  }

  /** markRemoved records that a peer which applied up to peerApplied has a configuration
   * without this member. That is proof of removal only if the peer applied at least as far
   * as this member: it then holds every change this member's configuration comes from, and
   * a later one removed it (a change, once applied, is never undone). It returns whether
   * the member is now removed. */
  markRemoved(peer: NodeId, peerApplied: number): boolean {
    if (this.removed) return true
    if (peerApplied < this.appliedIndex) return false
    this.becomeRemoved(`member ${peer}, at applied index ${peerApplied}, has it no more`)
    return true
  }

  private becomeRemoved(how: string): void {
    if (this.removed) return
    this.removed = true
    clearInterval(this.tickTimer)
    this.log.error(
      { event: 'removed', how, applied: this.appliedIndex },
      `this member has been permanently removed from the cluster (${how}); it answers requests with 503 "removed". Stop it; to serve from this machine again, join it as a new member with an empty data directory`,
    )
    const err = new RemovedError()
    this.rejectQueued(err)
    for (const p of this.pendingPuts.values()) p.reject(err)
    this.pendingPuts.clear()
    this.rejectForwarded(err)
    for (const r of this.pendingReads.values()) r.reject(err)
    this.pendingReads.clear()
    for (const w of this.leaderWaiters) w()
  }

  /** storeStats reports the store's figures for /stats. */
  storeStats(): {
    lastLogTerm: number
    snapshotIndex: number
    snapshotTerm: number
    keys: number
    bytes: number
    snapshotsInstalled: number
    lastSnapshotChunks: number
  } {
    const snap = this.store.snapshot()
    return {
      lastLogTerm: this.store.term(this.store.lastIndex()) ?? snap.term,
      snapshotIndex: snap.index,
      snapshotTerm: snap.term,
      keys: this.store.count(),
      bytes: this.store.sizeBytes(),
      snapshotsInstalled: this.snapshotsInstalled,
      lastSnapshotChunks: this.lastSnapshotChunks,
    }
  }

  /** storageError says why this member's disk refuses writes (full, read-only), if it does. */
  storageError(): string | undefined {
    return this.diskError?.message
  }

  /** storageUnavailable is the error of a request this member's disk cannot serve. */
  storageUnavailable(): StorageUnavailableError {
    const problem = this.diskError?.message ?? 'the data directory cannot take writes'
    return new StorageUnavailableError(
      `this member cannot write: ${problem}; it retries every second and recovers by itself ` +
        'once space returns. Retrying with the same value (here later, or on another member) ' +
        'is safe; a write this member had already taken into its log may still apply',
    )
  }

  /** noteDiskError records that the store refused a write for want of space (or because
   * the directory is read-only): logged at error once, then once a minute while it lasts. */
  private noteDiskError(e: DiskUnavailableError): void {
    const now = Date.now()
    this.diskRefusals++
    if (!this.diskError) {
      this.diskErrorSince = now
      this.diskLoggedAt = now
      this.log.error(
        { event: 'storage_unavailable', dir: e.dir, problem: e.problem, detail: e.detail },
        `cannot write: ${e.message}; writes answer 503 storage_unavailable until space ` +
          'returns (retrying every second)',
      )
    } else if (now - this.diskLoggedAt >= DISK_LOG_EVERY_MS) {
      this.diskLoggedAt = now
      this.log.error(
        {
          event: 'storage_unavailable',
          dir: e.dir,
          problem: e.problem,
          detail: e.detail,
          sinceMs: now - this.diskErrorSince,
          refusals: this.diskRefusals,
        },
        `still cannot write: ${e.message}`,
      )
    }
    this.diskError = e
  }

  /** diskWritten notes a successful write: a disk problem, if any, is over. */
  private diskWritten(): void {
    if (!this.diskError) return
    this.log.info(
      {
        event: 'storage_recovered',
        ms: Date.now() - this.diskErrorSince,
        refusals: this.diskRefusals,
      },
      'the disk takes writes again; serving writes',
    )
    this.diskError = undefined
    this.diskRefusals = 0
  }

  /** probeDisk checks the disk's free space once a second, so that a member with nothing
   * to write says so too (/readyz, /stats) and a leader refuses writes before proposing. A
   * problem found here ends when the probe passes; one met by a held Ready, when it is
   * written. */
  private probeDisk(): void {
    const now = Date.now()
    if (now < this.diskProbeAt) return
    this.diskProbeAt = now + DISK_RETRY_MS
    const problem = this.store.spaceProblem()
    if (problem) {
      this.noteDiskError(problem)
      this.handOverForDisk()
    } else if (!this.heldReady) this.diskWritten()
  }

  /** handOverForDisk: a leader whose disk refuses writes hands leadership to the most
   * caught-up voter, so that the others write while it cannot. (A leader idle when its disk
   * filled would otherwise go on heartbeating, refusing every write. One whose Ready is
   * held sends nothing, so the others elect a leader anyway.) */
  private handOverForDisk(): void {
    const s = this.raft.status()
    if (s.role !== 'leader' || this.heldReady) return
    let best = NONE
    let bestMatch = -1
    for (const [id, pr] of s.progress) {
      if (id !== this.id && !pr.isLearner && pr.recentActive && pr.match > bestMatch) {
        best = id
        bestMatch = pr.match
      }
    }
    if (best === NONE) return
    this.log.warn(
      { event: 'transfer_leader', to: best, reason: 'storage_unavailable', term: s.term },
      `handing leadership to ${best}: this member's disk refuses writes`,
    )
    this.raft.transferLeader(best)
    this.kick()
  }

  /** holdReady keeps rd, which the disk had no room for, to write again later, and fails
   * the writes and reads waiting on this member: they would wait behind it. */
  private holdReady(rd: Ready, e: DiskUnavailableError): void {
    this.heldReady = rd
    this.diskRetryAt = Date.now() + DISK_RETRY_MS
    this.noteDiskError(e)
    if (this.queuedPuts.length > 0) this.rejectQueued(this.storageUnavailable())
    if (this.pendingPuts.size > 0 || this.pendingReads.size > 0 || this.forwarded.size > 0) {
      const err = new StorageUnavailableError(
        `this member cannot write (${e.message}): the outcome of the write is unknown (it ` +
          'may still commit through other members), and retrying with the same value is safe',
      )
      for (const p of this.pendingPuts.values()) p.reject(err)
      this.pendingPuts.clear()
      this.rejectForwarded(err)
      for (const r of this.pendingReads.values()) r.reject(this.storageUnavailable())
      this.pendingReads.clear()
    }
  }

  /** diskStats is what the Raft loop wrote since start: fsynced transactions, the log entries
   * they held and the seconds they took (/stats disk_writes, log_entries_written,
   * disk_write_seconds). */
  diskStats(): { readonly writes: number; readonly entries: number; readonly seconds: number } {
    return { ...this.diskWrites }
  }

  /** pendingWrites is the number of puts waiting to apply. */
  pendingWrites(): number {
    return this.queuedPuts.length + this.pendingPuts.size + this.forwarded.size
  }

  // ------------------------------------------------------------------ loop

  private checkRunning(): void {
    if (this.stopped) throw new UnavailableError('the node is shutting down')
    if (this.fatalError) throw new UnavailableError('the node stopped after a fatal error')
    if (this.removed) throw new RemovedError()
  }

  private onTick(): void {
    if (this.stopped || this.removed) return
    this.probeDisk()
    // While a Ready is held the core stands still, as in a paused process: ticking it (and
    // stepping messages) would pile up heartbeats and answers it cannot send for as long as
    // the disk stays full. The kick writes the held Ready again when due.
    if (this.heldReady) {
      this.kick()
      return
    }
    this.raft.tick()
    this.sweepForwarded()
    for (const id of this.transport.unreachable()) this.raft.reportUnreachable(id)
    this.maybePromoteLearner()
    this.kick()
  }

  private onMessages(from: NodeId, msgs: readonly Message[]): void {
    if (this.stopped || this.removed) return
    if (msgs.some((m) => m.type === 'prop')) msgs = msgs.map(checkedProposals)
    // While a Ready is held (see onTick) messages are dropped (Raft takes lost messages),
    // but for a new leader's: stepping one makes this member a follower that knows the new
    // leader (and forwards writes to it), at the cost of a message or two.
    if (this.heldReady) {
      const s = this.raft.status()
      const fromNewLeader = (m: Message): boolean =>
        (m.type === 'app' || m.type === 'heartbeat') &&
        (m.term > s.term || (m.term === s.term && s.leader === NONE))
      const first = msgs.find(fromNewLeader)
      if (first === undefined) return
      msgs = [first]
    }
    // A stranger or a removed member: its messages must not move our term or commit index
    // (the transport checked that every message is from `from`). A leader that joined after
    // the configuration this member applied is heard (Raft.admits).
    const admitted = msgs.filter((m) => this.raft.admits(m))
    if (admitted.length < msgs.length) {
      this.droppedFromStrangers += msgs.length - admitted.length
      const now = Date.now()
      if (now - this.strangerLoggedAt >= 10_000) {
        this.strangerLoggedAt = now
        this.log.warn(
          { event: 'raft_from_non_member', from, dropped: this.droppedFromStrangers },
          'dropping Raft messages from a member not in the configuration',
        )
      }
    }
    try {
      for (const m of admitted) {
        if (m.type === 'app' || m.type === 'heartbeat') this.lastLeaderContactMs = Date.now()
        this.raft.step(m)
      }
    } catch (e) {
      // Messages are validated by the codec; a broken invariant here means this member's
      // durable state disagrees with the cluster's (a data directory lost or replaced while
      // the member stayed in the configuration). Stop rather than serve from it.
      this.fail(
        new Error(
          `this member's Raft state contradicts the leader's (${(e as Error).message}); ` +
            'was its data directory lost or replaced? Remove the member (POST /remove) and join it again with an empty data directory',
          { cause: e },
        ),
      )
      return
    }
    this.kick()
  }

  private async onSnapshot(incoming: IncomingSnapshot): Promise<void> {
    // The sender tries again later.
    if (this.heldReady) throw this.storageUnavailable()
    const { term, members } = unpack(incoming.extra) as { term: number; members: Uint8Array }
    if (!this.raft.admits({ from: incoming.from, type: 'snap', term })) {
      throw new Error(`snapshot from ${incoming.from}, which is not a member or leader here`)
    }
    if (incoming.meta.index <= this.raft.status().commit) {
      throw new Error(
        `stale snapshot at ${incoming.meta.index}; commit is ${this.raft.status().commit}`,
      )
    }
    this.log.info(
      { event: 'snapshot_receive', from: incoming.from, index: incoming.meta.index },
      'receiving snapshot',
    )
    let installed: { chunks: number; pairs: number }
    try {
      installed = await this.store.installSnapshot({
        from: incoming.from,
        meta: incoming.meta,
        extra: members,
        chunks: () => incoming.chunks(),
      })
    } catch (e) {
      // No room: the sender tries again later. A disk that failed mid-write stops the member.
      if (e instanceof DiskUnavailableError) this.noteDiskError(e)
      else if (e instanceof DiskFailedError) this.fail(e)
      throw e
    }
    const { chunks, pairs } = installed
    this.snapshotsInstalled++
    this.lastSnapshotChunks = chunks
    this.log.info(
      {
        event: 'snapshot_installed',
        from: incoming.from,
        index: incoming.meta.index,
        chunks,
        pairs,
      },
      'snapshot installed',
    )
    this.raft.step({
      type: 'snap',
      from: incoming.from,
      to: this.id,
      term,
      snapshot: incoming.meta,
    })
    this.members = { ...this.store.members() }
    this.updatePeers()
    this.kick()
  }

  /** kick schedules the Ready loop. */
  private kick(): void {
    if (this.loopScheduled || this.inLoop || this.stopped) return
    this.loopScheduled = true
    setImmediate(() => {
      this.loopScheduled = false
      this.runLoop().catch((e: unknown) => this.fail(e))
    })
  }

  private fail(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e))
    if (this.fatalError) return
    this.fatalError = err
    this.rejectQueued(new UnavailableError('the node stopped after a fatal error'))
    if (err instanceof DiskFailedError) {
      this.log.fatal(
        { event: 'fatal', reason: 'disk_failed', dir: err.dir, errno: err.errno, err },
        `stopping: ${err.message}. Nothing unwritten was acknowledged; restart the member ` +
          'once the disk is fixed: it reopens its data and catches up',
      )
    } else {
      this.log.fatal({ event: 'fatal', err }, 'stopping: fatal error in the Ready loop')
    }
    this.onFatal(err)
  }

  private async runLoop(): Promise<void> {
    if (this.inLoop || this.stopped || this.fatalError) return
    this.inLoop = true
    try {
      for (;;) {
        // A held Ready is written again once its pause is over (the tick kicks the loop).
        if (this.heldReady && Date.now() < this.diskRetryAt) break
        const rd = this.heldReady ?? this.raft.ready()
        if (!rd) break
        if (!(await this.handleReady(rd))) break
        if (this.stopped) break
        this.maybeGroup()
      }
    } finally {
      this.inLoop = false
    }
    if (this.raft.hasReady()) this.kick()
    else this.maybeGroup()
  }

  /** handleReady carries out rd; it returns false when the disk had no room for it (rd is
   * held, to be handled again). */
  private async handleReady(rd: Ready): Promise<boolean> {
    const retry = this.heldReady === rd
    // 1. Messages that need nothing of this Ready durable go before its fsync: proposals
    //    passed to the leader, and the appends and heartbeats of a leader whose term and vote
    //    are durable already, so that it and its followers write in parallel (Raft thesis
    //    10.2.1: the core counts the leader's own copy toward a commit only from advance()
    //    on). Everything else (acknowledgements, votes, a new leader's first appends) waits
    //    for the fsync. A held Ready sent these the first time.
    let rest = rd.messages
    if (rd.mustSync) {
      const leaderEarly = rd.softState.role === 'leader' && !this.termOrVoteChanged(rd)
      const isEarly = (m: Message): boolean =>
        m.type === 'prop' || (leaderEarly && (m.type === 'app' || m.type === 'heartbeat'))
      const early = rd.messages.filter(isEarly)
      if (early.length > 0) {
        rest = rd.messages.filter((m) => !isEarly(m))
        if (!retry) this.transport.send(early)
      }
    }
    // 2. Apply the committed entries in memory and answer the writes they settle, before this
    //    member's own write: they are durable on a majority already. The store writes what
    //    was applied with the next LMDB transaction (a checkpoint), which also holds the log
    //    entries it covers (those the write-ahead file took since the last one included)
    //    (the core hands out only entries persisted or in this Ready), or flushApplied does
    //    it shortly after. A crash before that loses nothing: the member applies them again
    //    from its log. A held Ready (the disk had no room) applied its entries already.
    //    After a received snapshot, entries apply on top of it, so after the write.
    if (!retry && rd.snapshot === undefined) this.applyCommitted(rd, true)
    // 3. Persist what must be durable before the messages go out: entries, a received
    //    snapshot, a new term or vote, in one write (one record of the write-ahead file, or
    //    a checkpoint's LMDB transaction: one fsync'd write for every proposal in
    //    this Ready). A hard state whose only news is the commit index waits for the next
    //    transaction: a commit index can be learnt again from the leader.
    //    LMDB commits and syncs on its own thread meanwhile: this member takes requests and
    //    messages (and the answers above leave) while its disk syncs.
    if (rd.mustSync) {
      try {
        const started = performance.now()
        await this.store.writeReadyAsync({
          hardState: rd.hardState,
          entries: rd.entries,
          snapshot: rd.snapshot,
        })
        this.diskWrites.writes++
        this.diskWrites.entries += rd.entries.length
        this.diskWrites.seconds += (performance.now() - started) / 1000
        // Stopped meanwhile: the store may be closing; nothing more goes out.
        if (this.stopped) return false
      } catch (e) {
        // The store refused before writing anything: hold rd and write it again later.
        if (!(e instanceof DiskUnavailableError)) throw e
        this.holdReady(rd, e)
        return false
      }
      this.diskWritten()
      if (rd.snapshot) {
        this.appliedIndex = rd.snapshot.index
        this.applyCommitted(rd, false)
      }
    } else if (rd.hardState) {
      this.store.noteHardState(rd.hardState)
    }
    this.heldReady = undefined
    // 4. Send the rest once this Ready is durable.
    if (rd.mustSync) await this.store.sync()
    if (rd.hardState) this.durableHardState = rd.hardState
    if (rd.snapshot) this.lastCompactedIndex = rd.snapshot.index
    const plain: Message[] = []
    for (const m of rest) {
      if (m.type === 'snap') this.sendSnapshot(m.to, m.term)
      else plain.push(m)
    }
    if (plain.length > 0) this.transport.send(plain)
    // 5. Reads.
    for (const rs of rd.readStates) this.readsWaitingApply.push(rs)
    // 6. Advance.
    this.raft.advance(rd)
    this.noteSoftState(rd)
    this.settle([], [])
    if (
      (rd.snapshot || rd.committedEntries.some((e) => e.type === 'conf')) &&
      this.confExcludesSelf()
    ) {
      // A removed member never applies again: its waiting writes fail now (retrying them on
      // another member is safe) instead of timing out.
      this.becomeRemoved('it applied its own removal')
    }
    this.maybeCompact()
    // What is left to write (applied in memory after this Ready's transaction, a commit
    // index, a compaction, log keys below the snapshot) goes with the next Ready's
    // transaction, on lmdb-js's thread; flushApplied writes it on this thread only once no
    // Ready has written for APPLY_FLUSH_MS, so a busy member never stalls on a commit of its
    // own. A membership change is written at once (a member restarted before the write
    // would come back with the older configuration until a leader tells it the commit index).
    if (rd.mustSync) this.cancelFlush()
    if (this.store.hasPending() || this.store.hasLogToTrim())
      this.scheduleFlush(rd.committedEntries.some((e) => e.type === 'conf') ? 0 : APPLY_FLUSH_MS)
    return true
  }

  /** applyCommitted applies rd's committed entries in memory (store.applyInMemory) and
   * settles what waits on them; it returns whether there were any. beforeWrite: rd's entries
   * are not written yet. */
  private applyCommitted(rd: Ready, beforeWrite: boolean): boolean {
    if (rd.committedEntries.length === 0) return false
    const apply = this.applier(rd.committedEntries)
    const first = rd.entries[0]
    const last = rd.entries.at(-1)
    this.store.applyInMemory(
      apply.run,
      first && last && beforeWrite ? { first: first.index, last: last.index } : undefined,
    )
    this.settle(rd.committedEntries, apply.done())
    return true
  }

  private cancelFlush(): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
  }

  /** scheduleFlush has the store write what was applied in memory within APPLY_FLUSH_MS,
   * unless a Ready's transaction does it first. */
  private scheduleFlush(delayMs = APPLY_FLUSH_MS): void {
    if (this.stopped) return
    const due = Date.now() + delayMs
    if (this.flushTimer !== undefined) {
      if (this.flushDueAt <= due) return
      clearTimeout(this.flushTimer)
    }
    this.flushDueAt = due
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flushApplied()
    }, delayMs)
  }

  /** flushApplied writes what was applied in memory, outside the Ready loop: within it, a
   * Ready may have applied entries its transaction has not written yet. */
  private flushApplied(): void {
    if (this.fatalError || (!this.store.hasPending() && !this.store.hasLogToTrim())) return
    if (this.inLoop || this.heldReady) {
      this.scheduleFlush(this.heldReady ? DISK_RETRY_MS : 5)
      return
    }
    try {
      this.store.flushApplied()
      // One batch of leftover log keys per firing (a short commit), until none is left.
      this.store.trimLog()
      if (this.store.hasLogToTrim()) this.scheduleFlush()
    } catch (e) {
      if (e instanceof DiskUnavailableError) {
        this.noteDiskError(e)
        this.scheduleFlush(DISK_RETRY_MS)
        return
      }
      this.fail(e)
    }
  }

  /** termOrVoteChanged: does this Ready make a new term or vote durable? */
  private termOrVoteChanged(rd: Ready): boolean {
    const hs = rd.hardState
    if (hs === undefined) return false
    return hs.term !== this.durableHardState.term || hs.vote !== this.durableHardState.vote
  }

  /** applier applies entries inside the store's transaction (run), then publishes what
   * changed and returns the put results (done). */
  private applier(entries: readonly Entry[]): {
    run: (txn: ApplyTxn) => void
    done: () => (PutResult | undefined)[]
  } {
    const results: (PutResult | undefined)[] = []
    const confChanges: { cc: ConfChange; index: number; conf: ConfState; wasLearner: boolean }[] =
      []
    const forwardedResults: [string, PutResult][] = []
    const run = (txn: ApplyTxn): void => {
      for (const e of entries) {
        if (e.type === 'conf') {
          const cc = decodeConfChange(e.data)
          const wasLearner = this.raft.status().conf.learners.includes(cc.node)
          const conf: ConfState = this.raft.applyConfChange(cc, e.index)
          txn.setConf(conf)
          this.applyMemberAddress(cc, conf)
          txn.setMembers(this.members)
          confChanges.push({ cc, index: e.index, conf, wasLearner })
          results.push('created')
        } else if (e.data.byteLength === 0) {
          results.push(undefined)
        } else {
          const put = decodePut(e.data)
          const result = txn.putIfAbsent(put.key, put.value, e.index)
          results.push(result)
          if (put.origin !== undefined && this.forwarded.size > 0) {
            const o = put.origin
            forwardedResults.push([
              Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('latin1'),
              result,
            ])
          }
        }
      }
      const last = entries[entries.length - 1]
      if (last) txn.setApplied(last.index)
    }
    const done = (): (PutResult | undefined)[] => {
      const last = entries[entries.length - 1]
      if (last) this.appliedIndex = last.index
      for (const [token, result] of forwardedResults) {
        const p = this.forwarded.get(token)
        if (p === undefined) continue
        this.forwarded.delete(token)
        p.resolve(result)
      }
      if (confChanges.length > 0) this.updatePeers()
      for (const { cc, index, conf, wasLearner } of confChanges) {
        const what =
          cc.type === 'addLearner'
            ? 'learner_added'
            : cc.type === 'addVoter'
              ? wasLearner
                ? 'learner_promoted'
                : 'voter_added'
              : 'member_removed'
        this.log.info(
          {
            event: 'conf_change_applied',
            change: what,
            member: cc.node,
            index,
            voters: conf.voters,
            learners: conf.learners,
          },
          `membership change applied: ${what.replace(/_/g, ' ')} (${cc.node})`,
        )
      }
      return results
    }
    return { run, done }
  }

  private applyMemberAddress(cc: ConfChange, conf: ConfState): void {
    const members: Record<NodeId, MemberAddress> = {}
    for (const id of [...conf.voters, ...conf.learners]) {
      const known = this.members[id]
      if (known) members[id] = known
    }
    if (cc.type !== 'remove' && cc.context) {
      try {
        const addr = JSON.parse(cc.context) as Partial<MemberAddress>
        if (typeof addr.http === 'string' && typeof addr.raft === 'string')
          members[cc.node] = { http: addr.http, raft: addr.raft }
      } catch {
        // A context that is not an address leaves the book as it was.
      }
    }
    this.members = members
  }

  /** settle resolves puts, reads and waiters that the applied entries completed. */
  private settle(entries: readonly Entry[], results: readonly (PutResult | undefined)[]): void {
    for (const [i, e] of entries.entries()) {
      const p = this.pendingPuts.get(e.index)
      if (!p) continue
      this.pendingPuts.delete(e.index)
      if (p.term === e.term) {
        this.answeredInLoop++
        p.resolve(results[i] ?? 'created')
      } else
        p.reject(
          new ProposalLostError('leadership changed before the write committed; retrying is safe'),
        )
    }
    for (let i = this.readsWaitingApply.length - 1; i >= 0; i--) {
      const rs = this.readsWaitingApply[i]
      if (rs && rs.index <= this.appliedIndex) {
        this.readsWaitingApply.splice(i, 1)
        const r = this.pendingReads.get(rs.ctx)
        this.pendingReads.delete(rs.ctx)
        r?.resolve()
      }
    }
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i]
      if (w && w.index <= this.appliedIndex) {
        this.appliedWaiters.splice(i, 1)
        w.resolve()
      }
    }
  }

  private noteSoftState(rd: Ready): void {
    const prev = this.soft
    const s = rd.softState
    if (s.role !== prev.role || s.leader !== prev.leader || s.term !== prev.term) {
      this.soft = s
      if (s.leader === NONE && prev.leader !== NONE) this.leaderLostAtMs = Date.now()
      if (s.leader !== prev.leader) this.leaderChangedAt = Date.now()
      if (s.leader !== prev.leader) for (const w of [...this.leaderWatchers]) w()
      this.logSoftState(prev, s)
      // Check-quorum: the leader stepped down in its own term, with no successor known. (A
      // newer term means a successor is being elected: its writes may still commit there.)
      if (
        prev.role === 'leader' &&
        s.role !== 'leader' &&
        s.leader === NONE &&
        s.term === prev.term &&
        !this.isRemoved()
      ) {
        this.failPendingOnStepDown()
      }
    }
    if (rd.softState.leader !== NONE && this.leaderWaiters.size > 0) {
      for (const w of this.leaderWaiters) w()
      this.leaderWaiters.clear()
    }
  }

  /** logSoftState logs an election's outcome as this member sees it: one line per change of
   * role or leader (pre-candidacy, which repeats while no quorum answers, at debug). */
  private logSoftState(prev: SoftState, s: SoftState): void {
    const fields = { term: s.term, leader: s.leader === NONE ? null : s.leader }
    if (s.role === 'leader' && prev.role !== 'leader') {
      this.log.info({ event: 'became_leader', ...fields }, `became leader in term ${s.term}`)
    } else if (prev.role === 'leader' && s.role !== 'leader') {
      const reason = this.isRemoved()
        ? 'removed'
        : s.term === prev.term && s.leader === NONE
          ? 'no_quorum'
          : 'newer_term'
      // Handing over to a newer term (a transfer, an election elsewhere) is routine.
      this.log[reason === 'newer_term' ? 'info' : 'warn'](
        { event: 'stepped_down', reason, role: s.role, ...fields },
        `stepped down as leader (${reason.replace(/_/g, ' ')})`,
      )
    } else if (s.role === 'candidate' && prev.role !== 'candidate') {
      this.log.info({ event: 'became_candidate', ...fields }, `became candidate in term ${s.term}`)
    } else if (s.role === 'follower' && s.leader !== NONE && s.leader !== prev.leader) {
      this.log.info(
        { event: 'became_follower', ...fields },
        `following leader ${s.leader} in term ${s.term}`,
      )
    } else if (s.leader === NONE && prev.leader !== NONE) {
      this.log.warn(
        { event: 'leader_lost', role: s.role, previousLeader: prev.leader, ...fields },
        `lost contact with leader ${prev.leader}; electing`,
      )
    } else {
      this.log.debug({ event: 'role', role: s.role, ...fields }, `role ${s.role}`)
    }
  }

  /** failPendingOnStepDown fails the writes and membership changes waiting on a leader that
   * stepped down without a successor (it lost its quorum): they may still commit under a
   * later leader or never, so the answer is "unknown, retry": a retry with the same value is
   * safe (it answers "created" or "exists"). */
  private failPendingOnStepDown(): void {
    if (this.pendingPuts.size === 0) return
    const err = new OutcomeUnknownError(
      'this member lost its leadership (no quorum reachable) before the write committed; ' +
        'the outcome is unknown, and retrying with the same value is safe',
    )
    this.log.warn(
      { event: 'pending_failed', writes: this.pendingPuts.size },
      'failing writes in flight: leadership lost',
    )
    for (const p of this.pendingPuts.values()) p.reject(err)
    this.pendingPuts.clear()
  }

  private sendSnapshot(to: NodeId, term: number): void {
    if (this.snapshotsInFlight.has(to)) return
    // A snapshot describes what the file holds: write what was applied in memory first, or
    // a member just added could get a configuration without itself. (Called after the
    // Ready's write, so nothing pending is ahead of the log on disk.)
    try {
      this.store.flushApplied()
    } catch (e) {
      if (!(e instanceof DiskUnavailableError)) throw e
      this.noteDiskError(e)
      this.raft.reportSnapshot(to, false)
      return
    }
    this.snapshotsInFlight.add(to)
    const source = this.store.snapshotSource()
    const wrapped: SnapshotSource = {
      meta: source.meta,
      extra: pack({ term, members: source.extra }),
      chunks: (n) => source.chunks(n),
      close: () => source.close(),
    }
    this.log.info({ event: 'snapshot_send', to, index: source.meta.index }, 'sending snapshot')
    this.transport.sendSnapshot(to, wrapped).then(
      () => {
        this.snapshotsInFlight.delete(to)
        this.snapshotFailures.delete(to)
        this.raft.reportSnapshot(to, true)
        this.kick()
      },
      (e: unknown) => {
        // Back off before the core may try again: a peer that fails a transfer now will
        // likely fail the next one too.
        const failures = (this.snapshotFailures.get(to) ?? 0) + 1
        this.snapshotFailures.set(to, failures)
        const delayMs = Math.min(5_000, 250 * 2 ** (failures - 1))
        this.log.warn(
          { event: 'snapshot_send_failed', to, err: e, retryInMs: delayMs },
          'snapshot transfer failed',
        )
        setTimeout(() => {
          this.snapshotsInFlight.delete(to)
          this.raft.reportSnapshot(to, false)
          this.kick()
        }, delayMs).unref()
      },
    )
  }

  private maybeCompact(): void {
    if (this.appliedIndex - this.lastCompactedIndex < this.snapshotEntries) return
    const index = this.appliedIndex
    // Written with the next Ready's transaction (or flushApplied), not in one of its own.
    this.store.compactLater(index, this.raft.status().conf)
    this.lastCompactedIndex = index
    this.log.info({ event: 'compact', index }, 'log compacted (written with the next transaction)')
  }

  /** maybePromoteLearner promotes one caught-up learner to voter (leader only). */
  private maybePromoteLearner(): void {
    if (this.promotionInFlight || Date.now() < this.promoteNotBefore || this.diskError) return
    const s = this.raft.status()
    if (s.role !== 'leader') return
    for (const [id, pr] of s.progress) {
      if (!pr.isLearner || !pr.recentActive) continue
      // Caught up: its log matches ours (replicating) and it is within a small window of the
      // commit index, so as a voter it will not hold commits back.
      if (pr.state !== 'replicate' || pr.match === 0 || pr.match + 16 < s.commit) continue
      this.promotionInFlight = true
      this.log.info(
        { event: 'promote', member: id, match: pr.match, commit: s.commit },
        'promoting learner to voter',
      )
      this.changeMembership({
        type: 'addVoter',
        node: id,
        context: JSON.stringify(this.members[id] ?? {}),
      })
        .catch((e: unknown) => {
          // Usually another change is still being committed: try again in a second, not on
          // every tick.
          this.promoteNotBefore = Date.now() + PROMOTE_RETRY_MS
          this.log.warn(
            { event: 'promote_failed', member: id, err: e },
            'promotion failed; will retry',
          )
        })
        .finally(() => {
          this.promotionInFlight = false
        })
      return
    }
  }

  private updatePeers(): void {
    const peers = new Map<NodeId, string>()
    for (const [id, addr] of Object.entries(this.members))
      if (id !== this.id) peers.set(id, addr.raft)
    this.transport.setPeers(peers)
  }

  /** learnMembers adds addresses this member does not know yet (a joining member learns the
   * cluster's from the join answer, before any snapshot reaches it). Known ones are kept. */
  learnMembers(book: Readonly<Record<NodeId, MemberAddress>>): void {
    this.members = { ...book, ...this.members }
    this.updatePeers()
  }

  /** waitApplied resolves once the applied index reaches index. */
  waitApplied(index: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve()
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }))
  }

  private async waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('timed out')
      await new Promise((r) => setTimeout(r, Math.min(this.tickMs, 20)))
    }
  }
}

/** PROPOSAL_KEY_BYTES_MAX and PROPOSAL_VALUE_BYTES_MAX bound what a proposal passed on by
 * another member may carry (oncekv's own limits: keys of 1024 bytes, values of 16 MiB). */
const PROPOSAL_KEY_BYTES_MAX = 1024
const PROPOSAL_VALUE_BYTES_MAX = 16 * 1024 * 1024

/** checkedProposals drops the proposals of a 'prop' message that are not a well-formed put
 * with an origin within the limits: a committed entry that cannot apply would stop every
 * member, on every restart. */
function checkedProposals(m: Message): Message {
  if (m.type !== 'prop') return m
  const ok = m.data.filter((d) => {
    try {
      const put = decodePut(d)
      return (
        put.origin !== undefined &&
        put.key.byteLength >= 1 &&
        put.key.byteLength <= PROPOSAL_KEY_BYTES_MAX &&
        put.value.byteLength <= PROPOSAL_VALUE_BYTES_MAX
      )
    } catch {
      return false
    }
  })
  return ok.length === m.data.length ? m : { ...m, data: ok }
}
