// Simulation is one deterministic run of a whole oncekv database cluster: replicas (Raft core,
// Ready loop, state machine, disk) on a simulated network, driven by a virtual clock, with a
// fault schedule and a client workload, all drawn from one root seed. The root seed gives each
// component a child seed and draws the run's fault rates (swarm testing: some runs lose no
// packets, some lose many; some crash often, some never), so one seed names one whole run.
// Some runs make every Ready take virtual time (messages are stepped meanwhile); conf-churn
// runs change membership every few dozen ms over small pipelines and frequent compactions.
//
// The clock jumps from event to event: node ticks (every TICK_MS, each node with its own phase
// and, in some runs, its own drift), packet deliveries, fsync completions, client operations and
// faults; ties break on scheduling order. Checkers run inside every
// event (see checkers.ts). After the fault phase, healAll() stops losing packets and, in most
// runs, restarts every node and heals the network; checkLiveness() then requires, within a
// bound, a leader, a fresh committed proposal, and every acknowledged put applied on every
// member. In the other runs ('majority' liveness) healAll() brings back only a majority of the
// current voters (the others stay crashed, or running but cut off), and checkLiveness()
// requires the same of that majority alone.
import { SeededRng } from '../../src/base/index.ts'
import {
  applyConfChangeTo,
  decodeConfChange,
  type ConfChange,
  type NodeId,
} from '../../src/raft/index.ts'
import { Checkers, fail, Invariant, type CheckerOptions } from './checkers.ts'
import { SimNetwork, type NetworkOptions } from './sim-network.ts'
import { TimedQueue, type Timed } from './sim-queue.ts'
import {
  initialDurable,
  SimReplica,
  type NetPayload,
  type RaftKnobs,
  type ReplicaHost,
  type ReplicaOptions,
} from './sim-replica.ts'
import { encodePut } from './sim-state-machine.ts'
import { CheckFailed, SimFailure, Trace } from './sim-trace.ts'
import { Workload, type WorkloadParams } from './sim-workload.ts'

/** TICK_MS is the virtual time between two Raft ticks of a node. */
export const TICK_MS = 10
/** DEFAULT_TICKS is the length of the fault phase, in ticks. */
export const DEFAULT_TICKS = 1500
/** DEFAULT_LIVENESS_TICKS bounds the liveness phase, in ticks. */
export const DEFAULT_LIVENESS_TICKS = 600

/** BugName names a deliberate bug the core can be built with (RaftConfig.testOnlyBugs). */
export type BugName = 'voteTwice' | 'commitOldTermByCounting'

/** Profile selects how faults are drawn: 'swarm' varies them per seed; 'aggressive' keeps
 * crashes, partitions and leader changes frequent (to show deliberate bugs are caught). */
export type Profile = 'swarm' | 'aggressive'

/** SimulationOptions name one run. Everything not given is drawn from the seed. */
export interface SimulationOptions {
  readonly seed: number
  readonly nodes?: 3 | 5
  /** ticks is the length of the fault phase in Raft ticks. */
  readonly ticks?: number
  readonly bug?: BugName
  readonly profile?: Profile
  readonly checks?: CheckerOptions
  readonly traceSize?: number
}

/** FaultParams are one run's fault rates; a mean of 0 turns that fault off. */
export interface FaultParams {
  readonly crashMean: number
  /** leaderCrashChance is the chance a crash picks the leader rather than any node. */
  readonly leaderCrashChance: number
  readonly restartMin: number
  readonly restartMax: number
  readonly keepPrefixChance: number
  readonly majorityDownChance: number
  readonly partitionMean: number
  readonly partitionMin: number
  readonly partitionMax: number
  /** isolateLeaderOnly makes every partition cut the leader off alone, for a while, and then
   * reconnect just that node: overlapping cuts leave old leaders with divergent log tails
   * (the Figure 8 situation of §5.4.2). */
  readonly isolateLeaderOnly: boolean
  /** newLeaderIsolateChance is the chance a node that just became leader is cut off alone
   * within newLeaderIsolateDelayMax ms, before it can replicate much of what it appends. */
  readonly newLeaderIsolateChance: number
  readonly newLeaderIsolateDelayMax: number
  readonly membershipMean: number
  readonly transferMean: number
  readonly maxExtraNodes: number
  /** flapChance is the chance a membership change toggles the node the last one changed
   * (demote ↔ promote), so that changes to one node follow each other closely. */
  readonly flapChance: number
}

/** LivenessMode tells what healAll brings back: every node and link, or only a majority of
 * the current voters (the rest stay crashed or cut off). */
export type LivenessMode = 'all' | 'majority'

/** RunParams is everything drawn for one run. */
export interface RunParams {
  readonly nodes: 3 | 5
  readonly ticks: number
  readonly raft: RaftKnobs
  /** tickSkewMax bounds each node's clock drift: its tick period is TICK_MS ± up to this. */
  readonly tickSkewMax: number
  readonly network: NetworkOptions
  readonly replica: Omit<ReplicaOptions, 'raft'>
  readonly faults: FaultParams
  readonly workload: WorkloadParams
  readonly liveness: LivenessMode
  /** confChurn marks a conf-churn run (see drawParams). */
  readonly confChurn: boolean
}

/** RunSummary describes a run that passed. */
export interface RunSummary {
  readonly seed: number
  readonly nodes: number
  readonly events: number
  readonly virtualMs: number
  readonly acked: number
  readonly reads: number
  readonly leaders: number
  readonly crashes: number
  readonly snapshotsInstalled: number
  readonly liveness: LivenessMode
  /** confIgnored counts committed conf changes the core ignored when applied (a snapshot
   * restored while their Ready was outstanding already covered them). */
  readonly confIgnored: number
}

/** drawParams draws one run's parameters from the seed (swarm testing). */
export function drawParams(rng: SeededRng, options: SimulationOptions): RunParams {
  const drawnNodes: 3 | 5 = rng.chance(0.5) ? 3 : 5
  const nodes = options.nodes ?? drawnNodes
  const ticks = options.ticks ?? DEFAULT_TICKS
  const aggressive = options.profile === 'aggressive'
  const electionTicks = rng.pick([10, 10, 10, 15, 20])
  const heartbeatTicks = rng.pick([1, 1, 2, 3])
  const raft: RaftKnobs = {
    electionTicks,
    heartbeatTicks,
    preVote: true,
    // Without check-quorum a deposed leader may serve for longer; the checkers must still hold.
    checkQuorum: aggressive ? true : rng.chance(0.85),
    maxSizePerMsg: aggressive ? 1 : rng.pick([1024 * 1024, 1024 * 1024, 600, 1]),
    maxInflightMsgs: aggressive ? 1 : rng.pick([256, 256, 16, 2]),
    maxUncommittedBytes: rng.pick([0, 0, 0, 4096]),
    testOnlyBugs: options.bug ? { [options.bug]: true } : undefined,
  }
  const delayMin = aggressive ? rng.pick([2, 5]) : rng.pick([0, 1, 1, 2])
  const delayMax = delayMin + rng.pick([1, 2, 5, 10, 30])
  const network: NetworkOptions = {
    delayMin,
    delayMax,
    tailRate: rng.pick([0, 0, 0.01, 0.05]),
    tailMax: delayMax * rng.pick([3, 10, 30]),
    lossRate: aggressive ? 0 : rng.pick([0, 0, 0, 0.01, 0.05, 0.2]),
    dupRate: rng.pick([0, 0, 0.01, 0.05]),
  }
  const replicaDrawn = {
    compactEvery: rng.range(20, 200),
    diskLatencyMax: rng.pick([0, 0, 1, 3, 10]),
    chunkBytes: rng.pick([1024, 4096, 16384]),
    reportSnapshotOnSend: rng.chance(0.3),
  }
  const never = 0
  const faults: FaultParams = aggressive
    ? {
        crashMean: rng.pick([never, 500, 1500]),
        leaderCrashChance: 0.8,
        restartMin: 20,
        restartMax: rng.pick([200, 600]),
        keepPrefixChance: 1,
        majorityDownChance: 0.3,
        partitionMean: electionTicks * TICK_MS * rng.pick([1, 2]),
        partitionMin: electionTicks * TICK_MS,
        partitionMax: electionTicks * TICK_MS * rng.pick([3, 5]),
        isolateLeaderOnly: true,
        newLeaderIsolateChance: rng.pick([0.5, 0.8]),
        newLeaderIsolateDelayMax: rng.pick([1, 3, 10]),
        membershipMean: never,
        transferMean: rng.pick([never, 1000]),
        maxExtraNodes: 2,
        flapChance: 0,
      }
    : {
        crashMean: rng.pick([never, never, 4000, 1500, 600]),
        leaderCrashChance: rng.pick([0.2, 0.4]),
        restartMin: 20,
        restartMax: rng.pick([300, 1500, 4000]),
        keepPrefixChance: rng.pick([0, 0.5, 1]),
        majorityDownChance: rng.pick([0, 0.1, 0.3]),
        partitionMean: rng.pick([never, never, 4000, 1500, 600]),
        partitionMin: 50,
        partitionMax: rng.pick([500, 2000, 5000]),
        isolateLeaderOnly: false,
        newLeaderIsolateChance: rng.pick([0, 0, 0, 0.1]),
        newLeaderIsolateDelayMax: rng.pick([5, 20, 50]),
        membershipMean: rng.pick([never, never, 3000, 1200]),
        transferMean: rng.pick([never, never, 3000, 1000]),
        maxExtraNodes: rng.pick([1, 2, 3]),
        flapChance: 0,
      }
  const workload: WorkloadParams = {
    clients: aggressive ? rng.range(3, 5) : rng.range(1, 4),
    thinkMax: aggressive ? rng.pick([2, 5]) : rng.pick([20, 50, 100]),
    timeout: rng.pick([300, 1000, 3000]),
    fresh: 55,
    same: 15,
    different: 10,
    read: 20,
  }
  const tickSkewMax = rng.pick([0, 0, 1, 2])
  // Drawn last, so the draws above keep their meaning per seed.
  // Half the runs make the host take virtual time over every Ready that writes or applies,
  // stepping messages meanwhile (a snapshot may then be restored while a Ready applying a
  // conf change is outstanding).
  const slowReadyMax = rng.pick([0, 0, 0, 3, 10, 30])
  // Conf-churn runs change membership all the time (demote, promote, add, remove) while
  // followers lag behind small pipelines and leaders compact often: a follower catching up
  // then gets a snapshot while a Ready applying a conf change is outstanding.
  const churn = !aggressive && rng.chance(0.3)
  const liveness: LivenessMode = rng.chance(0.35) ? 'majority' : 'all'
  const replica = churn
    ? { ...replicaDrawn, compactEvery: rng.range(3, 20), slowReadyMax: rng.pick([30, 100]) }
    : { ...replicaDrawn, slowReadyMax }
  // Most runs tell followers of commits lazily, as the database member does; the others as
  // etcd-io/raft does. Drawn after everything else, so the draws above keep their meaning.
  if (churn) {
    const maxInflightMsgs = rng.pick([1, 2])
    const membershipMean = rng.pick([30, 60])
    const maxExtraNodes = rng.pick([2, 3])
    const thinkMax = rng.pick([50, 100, 200])
    const lazyCommitNotice = rng.chance(0.75)
    return {
      nodes,
      ticks,
      raft: { ...raft, maxInflightMsgs, maxSizePerMsg: 1, lazyCommitNotice },
      tickSkewMax,
      network,
      replica,
      faults: { ...faults, membershipMean, maxExtraNodes, flapChance: 0.9 },
      workload: { ...workload, thinkMax },
      liveness,
      confChurn: true,
    }
  }
  const lazyCommitNotice = rng.chance(0.75)
  return {
    nodes,
    ticks,
    raft: { ...raft, lazyCommitNotice },
    tickSkewMax,
    network,
    replica,
    faults,
    workload,
    liveness,
    confChurn: false,
  }
}

interface Timer extends Timed {
  readonly fn: () => void
}

/** Simulation is one seeded run of a cluster. */
export class Simulation {
  readonly seed: number
  readonly params: RunParams
  readonly checkers: Checkers
  readonly trace: Trace
  private readonly options: SimulationOptions
  private readonly network: SimNetwork<NetPayload>
  private readonly timers = new TimedQueue<Timer>()
  private timerSeq = 0
  private clock = 0
  private readonly replicas = new Map<NodeId, SimReplica>()
  // Creation order: every iteration over nodes follows it, for determinism.
  private readonly order: SimReplica[] = []
  private readonly faultRng: SeededRng
  private readonly nodeRng: SeededRng
  private readonly workload: Workload
  private faultsOn = true
  private extraNodes = 0
  // The node the last membership change proposed was about.
  private lastChanged: NodeId | undefined
  private snapSeq = 0
  // 'majority' liveness: the voters healAll brought back; undefined: every node.
  private liveSet: ReadonlySet<NodeId> | undefined
  private readonly replicaHost: ReplicaHost
  private readonly replicaOptions: ReplicaOptions
  /** events counts the events processed. */
  events = 0

  constructor(options: SimulationOptions) {
    this.options = options
    this.seed = options.seed >>> 0
    const root = new SeededRng(this.seed)
    this.params = drawParams(root.child(), options)
    this.checkers = new Checkers(options.checks)
    this.trace = new Trace(options.traceSize ?? 100)
    this.network = new SimNetwork<NetPayload>(root.child(), this.params.network)
    this.faultRng = root.child()
    this.nodeRng = root.child()
    const workloadRng = root.child()
    this.replicaOptions = { raft: this.params.raft, ...this.params.replica }
    this.replicaHost = {
      now: () => this.clock,
      send: (from, to, payload) => this.network.send(from, to, payload, this.clock),
      isBlocked: (from, to) => this.network.isBlocked(from, to),
      schedule: (at, fn) => this.schedule(at, fn),
      nextSnapId: () => this.snapSeq++,
      checkers: this.checkers,
      trace: this.trace,
      onRole: (node, role) => {
        if (role === 'leader') this.onNewLeader(node)
      },
    }
    this.workload = new Workload(
      {
        now: () => this.clock,
        schedule: (at, fn) => this.schedule(at, fn),
        replica: (id) => this.replicas.get(id),
        liveReplicas: () => this.order.filter((r) => r.up),
        checkers: this.checkers,
        trace: this.trace,
      },
      workloadRng,
      this.params.workload,
    )
    this.guard(() => {
      const voters = Array.from({ length: this.params.nodes }, (_, i) => `n${i + 1}`)
      this.checkers.onBootstrap({ voters, learners: [] })
      for (const id of voters) this.addReplica(id, voters)
    })
  }

  /** now is the virtual time in ms. */
  get now(): number {
    return this.clock
  }

  /** replay is the command line that reruns this seed with these options. */
  get replay(): string {
    const o = this.options
    let cmd = `npm run sim -- --seed ${this.seed}`
    if (o.nodes !== undefined) cmd += ` --nodes ${o.nodes}`
    if (o.ticks !== undefined) cmd += ` --ticks ${o.ticks}`
    if (o.bug !== undefined) cmd += ` --bug ${o.bug}`
    if (o.profile !== undefined && o.profile !== 'swarm') cmd += ` --profile ${o.profile}`
    return cmd
  }

  // ------------------------------------------------------------------ phases

  /** run plays the fault phase: workload and faults for params.ticks ticks. */
  run(): void {
    this.guard(() => {
      this.workload.start()
      const f = this.params.faults
      this.every(f.crashMean, () => this.crashOne())
      this.every(f.partitionMean, () => this.partition())
      this.every(f.membershipMean, () => this.changeMembership())
      this.every(f.transferMean, () => this.transferLeadership())
      this.runUntil(this.params.ticks * TICK_MS, undefined)
    })
  }

  /** healAll ends the faults and stops losing packets. In 'all' runs every node restarts and
   * the network heals; in 'majority' runs only a majority of the current voters does. */
  healAll(): void {
    this.guard(() => {
      this.faultsOn = false
      this.workload.stop()
      this.network.setFaultRates(0, 0)
      this.network.heal()
      const live = this.params.liveness === 'majority' ? this.chooseMajority() : undefined
      if (live === undefined) {
        this.trace.event(this.clock, 'heal all: restart every node, heal the network, stop loss')
        for (const r of this.order) if (!r.up) r.start()
        return
      }
      this.liveSet = live
      const ids = this.order.map((r) => r.id)
      const away: string[] = []
      for (const r of this.order) {
        if (live.has(r.id)) {
          if (!r.up) r.start()
        } else if (!r.up) {
          away.push(`${r.id} stays down`)
        } else if (this.faultRng.chance(0.5)) {
          r.crash(this.faultRng.chance(0.5))
          away.push(`${r.id} crashed`)
        } else {
          this.network.isolate(r.id, ids)
          away.push(`${r.id} cut off`)
        }
      }
      this.trace.event(
        this.clock,
        `heal a majority: ${[...live].join(',')} up and connected, stop loss; ${away.join(', ') || 'no other node'}`,
      )
    })
  }

  /**
   * chooseMajority picks a smallest set of voters that is a majority of every configuration
   * the cluster may be in, and made of voters of each: the configuration as of the highest
   * index applied anywhere, the one before its last change (a change takes effect when
   * applied, and the survivors may not know it committed: a majority of the new
   * configuration alone may then never elect), and each configuration one pending conf change
   * (stable somewhere above that index) may still make current. A voter of them all can
   * campaign whichever of them it knows.
   */
  private chooseMajority(): Set<NodeId> | undefined {
    const confs = this.checkers.latestConfs()
    const conf = confs[confs.length - 1]
    if (conf === undefined) return undefined
    for (const e of this.checkers.pendingConfChanges()) {
      confs.push(applyConfChangeTo(conf, decodeConfChange(e.data)))
    }
    const voters = conf.voters.filter((v) => confs.every((c) => c.voters.includes(v)))
    let best: NodeId[][] = []
    for (let mask = 1; mask < 1 << voters.length; mask++) {
      const set = voters.filter((_, i) => (mask & (1 << i)) !== 0)
      const ok = confs.every((c) => set.length >= Math.floor(c.voters.length / 2) + 1)
      if (!ok) continue
      if (best.length === 0 || set.length < (best[0] as NodeId[]).length) best = [set]
      else if (set.length === (best[0] as NodeId[]).length) best.push(set)
    }
    if (best.length === 0) return undefined
    return new Set(this.faultRng.pick(best))
  }

  /** checkLiveness requires, within ticksMax ticks: a leader, a fresh proposal committed and
   * acknowledged, and every acknowledged put applied on every member of the configuration
   * (in 'majority' runs: on every node of the healed majority, which must elect the leader). */
  checkLiveness(ticksMax = DEFAULT_LIVENESS_TICKS): void {
    this.guard(() => {
      const start = this.clock
      const deadline = start + ticksMax * TICK_MS
      let stage = 'no leader'
      let probe: 'none' | 'proposed' | 'acked' = 'none'
      let proposedAt = 0
      let generation = 0
      // A proposal may vanish without a trace (its leader lost the entry and nothing was
      // appended at its index since): propose again after a few election timeouts.
      const reproposeAfter = 3 * (this.params.raft.electionTicks ?? 10) * TICK_MS
      let done = false
      const key = 'liveness-probe'
      const value = `p${this.seed}`
      const check = (): void => {
        if (done) return
        const leader = this.currentLeader()
        if (leader === undefined) {
          stage = 'no leader'
          return
        }
        if (probe !== 'acked') {
          stage = `leader ${leader.id}, but the fresh proposal is not acknowledged`
          if (probe === 'proposed' && this.clock - proposedAt < reproposeAfter) return
          const mine = ++generation
          const res = leader.propose(
            encodePut({ client: -1, reqId: 0, key, value }),
            (index, term) => ({
              term,
              settle: (result) => {
                if (result === undefined) {
                  if (mine === generation && probe === 'proposed') probe = 'none'
                  return
                }
                probe = 'acked'
                this.checkers.onAck({ key, value, index, term, node: leader.id, at: this.clock })
              },
            }),
          )
          if (res.ok) {
            probe = 'proposed'
            proposedAt = this.clock
          } else stage = `leader ${leader.id} refuses the fresh proposal: ${res.reason}`
          return
        }
        const conf = leader.status().conf
        const need = this.checkers.maxAckedIndex
        const members =
          this.liveSet !== undefined ? [...this.liveSet] : [...conf.voters, ...conf.learners]
        for (const id of members) {
          const r = this.replicas.get(id)
          if (r === undefined || !r.up) {
            stage = `member ${id} is not running`
            return
          }
          if (r.applied < need) {
            stage = `member ${id} applied ${r.applied} < ${need}, the last acknowledged put`
            return
          }
        }
        for (const id of members) {
          const r = this.replicas.get(id) as SimReplica
          for (const p of this.checkers.ackedPuts) {
            if (r.read(p.key) !== p.value) {
              fail(
                Invariant.ackedReadable,
                `${id} applied ${r.applied} but lacks acknowledged ${p.key} = ${p.value} (index ${p.index})`,
              )
            }
          }
        }
        done = true
      }
      const loop = (): void => {
        check()
        if (!done) this.schedule(this.clock + TICK_MS, loop)
      }
      this.schedule(this.clock, loop)
      this.runUntil(deadline, () => done)
      if (!done) {
        fail(
          Invariant.liveness,
          `after healAll (${this.liveSet ? `majority ${[...this.liveSet].join(',')}` : 'every node'}), ${ticksMax} ticks (${start}..${deadline} ms) passed with ${stage}\n${this.describeNodes()}`,
        )
      }
    })
  }

  /** summary describes the finished run. */
  summary(): RunSummary {
    let crashes = 0
    for (const r of this.order) crashes += r.stats.crashes
    return {
      seed: this.seed,
      nodes: this.params.nodes,
      events: this.events,
      virtualMs: this.clock,
      acked: this.checkers.ackedPuts.length,
      reads: this.checkers.counts.readsServed,
      leaders: this.checkers.counts.leaders,
      crashes,
      snapshotsInstalled: this.checkers.counts.snapshotsInstalled,
      liveness: this.params.liveness,
      confIgnored: this.checkers.counts.confIgnored,
    }
  }

  /** describeNodes renders every node's state, for failure messages. */
  describeNodes(): string {
    const lines: string[] = []
    for (const r of this.order) {
      if (!r.up) {
        lines.push(`  ${r.id}: down`)
        continue
      }
      const s = r.status()
      lines.push(
        `  ${r.id}: ${s.role} term=${s.term} vote=${s.vote || '-'} leader=${s.leader || '-'} commit=${s.commit} ` +
          `applied=${r.applied} log=[${s.firstIndex}..${s.lastIndex}] voters=${s.conf.voters.join(',')} learners=${s.conf.learners.join(',')}`,
      )
      if (s.role === 'leader') {
        const prs = [...s.progress].map(
          ([id, p]) => `${id}:${p.state} match=${p.match} next=${p.next}`,
        )
        lines.push(`      progress ${prs.join('; ')}`)
      }
    }
    lines.push(
      `  network: ${this.network.inFlight} in flight; cut links: ${this.network.describeBlocked() || 'none'}`,
    )
    return lines.join('\n')
  }

  // ------------------------------------------------------------------ the event loop

  private schedule(at: number, fn: () => void): void {
    this.timers.push({ at, seq: this.timerSeq++, fn })
  }

  /** runUntil processes events up to virtual time end, or until stop() holds. */
  private runUntil(end: number, stop: (() => boolean) | undefined): void {
    while (true) {
      if (stop?.()) return
      const tNet = this.network.nextAt()
      const tTimer = this.timers.peek()?.at
      const t = tNet === undefined ? tTimer : tTimer === undefined ? tNet : Math.min(tNet, tTimer)
      if (t === undefined || t > end) {
        this.clock = Math.max(this.clock, end)
        return
      }
      this.clock = t
      if (tNet !== undefined && tNet === t) {
        const p = this.network.popDue(t)
        if (p !== undefined) this.replicas.get(p.to)?.receive(p.payload, t)
      } else {
        const timer = this.timers.pop() as Timer
        timer.fn()
      }
      if ((++this.events & 4095) === 0) this.periodicChecks()
    }
  }

  private periodicChecks(): void {
    for (const r of this.order) {
      if (r.up) this.checkers.checkReadable(r.id, r.applied, r.kv(), 'periodic check')
    }
  }

  /** every runs fn at random intervals around mean (virtual ms) while faults are on. */
  private every(mean: number, fn: () => void): void {
    if (mean <= 0) return
    const next = (): void => {
      this.schedule(
        this.clock + this.faultRng.range(Math.ceil(mean / 4), Math.ceil((mean * 7) / 4)),
        () => {
          if (!this.faultsOn) return
          fn()
          next()
        },
      )
    }
    next()
  }

  /** guard turns a failed check or an exception into a SimFailure with seed and trace. */
  private guard<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (err instanceof SimFailure) throw err
      if (err instanceof CheckFailed) {
        throw new SimFailure(
          this.seed,
          err.invariant,
          `${err.details}\n  at virtual time ${this.clock} ms`,
          this.replay,
          this.trace.dump(),
        )
      }
      const e = err instanceof Error ? err : new Error(String(err))
      const stack = (e.stack ?? '').split('\n').slice(0, 8).join('\n')
      throw new SimFailure(
        this.seed,
        Invariant.exception,
        `${e.name}: ${e.message} at virtual time ${this.clock} ms\n${stack}`,
        this.replay,
        this.trace.dump(),
      )
    }
  }

  // ------------------------------------------------------------------ nodes

  private addReplica(id: NodeId, voters: readonly NodeId[] | undefined): SimReplica {
    const r = new SimReplica(
      id,
      this.replicaHost,
      this.replicaOptions,
      this.nodeRng.child(),
      initialDurable(voters),
    )
    this.replicas.set(id, r)
    this.order.push(r)
    const phase = this.nodeRng.int(TICK_MS)
    const skew = this.params.tickSkewMax
    const period = TICK_MS + (skew > 0 ? this.nodeRng.range(-skew, skew) : 0)
    const tick = (): void => {
      r.tick()
      this.schedule(this.clock + period, tick)
    }
    this.schedule(this.clock + phase, tick)
    r.start()
    return r
  }

  /** currentLeader is the running leader of the highest term, if any (in 'majority' runs
   * after healAll: among the healed majority). */
  private currentLeader(): SimReplica | undefined {
    let best: SimReplica | undefined
    let bestTerm = -1
    for (const r of this.order) {
      if (this.liveSet !== undefined && !this.liveSet.has(r.id)) continue
      const s = r.roleNow()
      if (s && s.role === 'leader' && s.term > bestTerm) {
        best = r
        bestTerm = s.term
      }
    }
    return best
  }

  private liveCount(): number {
    let n = 0
    for (const r of this.order) if (r.up) n++
    return n
  }

  // ------------------------------------------------------------------ faults

  private crashOne(): void {
    const f = this.params.faults
    const rng = this.faultRng
    const live = this.order.filter((r) => r.up)
    if (live.length === 0) return
    const down = this.order.length - live.length
    const minority = Math.floor((this.order.length - 1) / 2)
    if (down >= minority && !rng.chance(f.majorityDownChance)) return
    const leader = this.currentLeader()
    const target = leader && rng.chance(f.leaderCrashChance) ? leader : rng.pick(live)
    const keep = rng.chance(f.keepPrefixChance)
    const { kept, lost } = target.crash(keep)
    this.trace.event(
      this.clock,
      `CRASH ${target.id} (unsynced writes: kept ${kept}, lost ${lost}); ${this.liveCount()} up`,
    )
    this.schedule(this.clock + rng.range(f.restartMin, f.restartMax), () => {
      // After the fault phase, healAll decides who runs.
      if (target.up || !this.faultsOn) return
      this.trace.event(this.clock, `RESTART ${target.id}`)
      target.start()
    })
  }

  private partition(): void {
    const f = this.params.faults
    const rng = this.faultRng
    const ids = this.order.map((r) => r.id)
    const leader = this.currentLeader()
    if (f.isolateLeaderOnly) {
      if (leader === undefined) return
      this.network.isolate(leader.id, ids)
      this.trace.event(this.clock, `PARTITION isolate leader ${leader.id}`)
      this.schedule(this.clock + rng.range(f.partitionMin, f.partitionMax), () => {
        if (!this.faultsOn) return
        this.network.reconnect(leader.id)
        this.trace.event(this.clock, `HEAL reconnect ${leader.id}`)
      })
      return
    }
    const roll = rng.int(100)
    if (roll < 15) {
      this.network.heal()
      this.trace.event(this.clock, 'HEAL network')
      return
    }
    if (roll < 40 && leader) {
      this.network.isolate(leader.id, ids)
      this.trace.event(this.clock, `PARTITION isolate leader ${leader.id}`)
    } else if (roll < 70) {
      const n = rng.range(1, 3)
      const cut: string[] = []
      for (let i = 0; i < n; i++) {
        const from = rng.pick(ids)
        const to = rng.pick(ids.filter((id) => id !== from))
        this.network.blockLink(from, to)
        cut.push(`${from}>${to}`)
      }
      this.trace.event(this.clock, `PARTITION one-way ${cut.join(' ')}`)
    } else {
      const shuffled = ids.slice()
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = rng.int(i + 1)
        const t = shuffled[i] as string
        shuffled[i] = shuffled[j] as string
        shuffled[j] = t
      }
      const k = rng.range(1, Math.max(1, Math.floor(ids.length / 2)))
      const a = shuffled.slice(0, k)
      const b = shuffled.slice(k)
      this.network.partition(a, b)
      this.trace.event(this.clock, `PARTITION ${a.join(',')} | ${b.join(',')}`)
    }
    this.schedule(this.clock + rng.range(f.partitionMin, f.partitionMax), () => {
      if (!this.faultsOn || this.network.blockedLinkCount === 0) return
      this.network.heal()
      this.trace.event(this.clock, 'HEAL network')
    })
  }

  /** onNewLeader may cut a fresh leader off before it replicates much (see FaultParams). */
  private onNewLeader(id: NodeId): void {
    const f = this.params.faults
    if (!this.faultsOn || f.newLeaderIsolateChance === 0) return
    const rng = this.faultRng
    if (!rng.chance(f.newLeaderIsolateChance)) return
    this.schedule(this.clock + rng.range(0, f.newLeaderIsolateDelayMax), () => {
      if (!this.faultsOn) return
      const ids = this.order.map((r) => r.id)
      this.network.isolate(id, ids)
      this.trace.event(this.clock, `PARTITION isolate new leader ${id}`)
      this.schedule(this.clock + rng.range(f.partitionMin, f.partitionMax), () => {
        if (!this.faultsOn) return
        this.network.reconnect(id)
        this.trace.event(this.clock, `HEAL reconnect ${id}`)
      })
    })
  }

  private changeMembership(): void {
    const leader = this.currentLeader()
    if (leader === undefined) return
    const rng = this.faultRng
    const s = leader.status()
    const choices: (() => void)[] = []
    if (this.extraNodes < this.params.faults.maxExtraNodes) {
      choices.push(() => {
        const id = `n${this.order.length + 1}`
        const cc: ConfChange = { type: 'addLearner', node: id }
        const res = leader.proposeConfChange(cc)
        this.trace.event(
          this.clock,
          `MEMBERSHIP ${leader.id} proposes addLearner ${id}: ${res.ok ? `index ${res.index}` : res.reason}`,
        )
        if (!res.ok) return
        this.lastChanged = id
        this.extraNodes++
        this.addReplica(id, undefined)
      })
    }
    const promotable = s.conf.learners.filter((l) => (s.progress.get(l)?.match ?? 0) >= s.commit)
    const flap = this.lastChanged
    if (flap !== undefined && rng.chance(this.params.faults.flapChance)) {
      if (promotable.includes(flap)) {
        this.proposeChange(leader, { type: 'addVoter', node: flap })
        return
      }
      if (s.conf.voters.includes(flap) && s.conf.voters.length > 3) {
        this.proposeChange(leader, { type: 'addLearner', node: flap })
        return
      }
    }
    if (promotable.length > 0) {
      choices.push(() =>
        this.proposeChange(leader, { type: 'addVoter', node: rng.pick(promotable) }),
      )
    }
    const removable =
      s.conf.voters.length > 3 ? [...s.conf.voters, ...s.conf.learners] : [...s.conf.learners]
    if (removable.length > 0) {
      choices.push(() => {
        const node = s.conf.voters.length > 3 && rng.chance(0.3) ? leader.id : rng.pick(removable)
        this.proposeChange(leader, { type: 'remove', node })
      })
    }
    if (s.conf.voters.length > 3) {
      // Demote a voter (the leader too, sometimes): it stays a member and may be promoted
      // again, so changes keep coming to the same few nodes.
      choices.push(() => {
        const node = rng.chance(0.2) ? leader.id : rng.pick(s.conf.voters)
        this.proposeChange(leader, { type: 'addLearner', node })
      })
    }
    if (choices.length > 0) rng.pick(choices)()
  }

  private proposeChange(leader: SimReplica, cc: ConfChange): void {
    const res = leader.proposeConfChange(cc)
    if (res.ok) this.lastChanged = cc.node
    this.trace.event(
      this.clock,
      `MEMBERSHIP ${leader.id} proposes ${cc.type} ${cc.node}: ${res.ok ? `index ${res.index}` : res.reason}`,
    )
  }

  private transferLeadership(): void {
    const leader = this.currentLeader()
    if (leader === undefined) return
    const voters = leader.status().conf.voters.filter((v) => v !== leader.id)
    if (voters.length === 0) return
    const to = this.faultRng.pick(voters)
    this.trace.event(this.clock, `TRANSFER leadership ${leader.id} → ${to}`)
    leader.transferLeader(to)
  }
}

/** runSeed plays one whole run: fault phase, healAll, liveness. It throws SimFailure. */
export function runSeed(options: SimulationOptions): RunSummary {
  const sim = new Simulation(options)
  sim.run()
  sim.healAll()
  sim.checkLiveness()
  return sim.summary()
}
