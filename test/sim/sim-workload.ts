// The simulated clients. Each client runs one operation at a time: it puts fresh keys to the
// node it believes leads (and retries elsewhere on not_leader), re-puts acknowledged keys with
// the same bytes (expecting 'exists') and with other bytes (expecting 'conflict'), and issues
// linearizable reads through ReadIndex on random nodes: of acknowledged keys, of keys whose put
// is still in flight (or whose outcome the client never learned), and of keys never written.
// A put is acknowledged when its entry is applied, at the (index, term) propose returned, on
// the node it was proposed to; the answer it gets there is checked against what the
// write-once rule allows.
import type { SeededRng } from '../../src/base/index.ts'
import type { NodeId } from '../../src/raft/index.ts'
import { fail, Invariant, type Checkers, type ReadRecord } from './checkers.ts'
import type { SimReplica } from './sim-replica.ts'
import { encodePut, type PutResult } from './sim-state-machine.ts'
import type { Trace } from './sim-trace.ts'

/** WorkloadParams are one run's client settings. */
export interface WorkloadParams {
  readonly clients: number
  /** thinkMax bounds the pause between two operations of a client (virtual ms). */
  readonly thinkMax: number
  /** timeout is how long a client waits for a put's outcome before it gives up. */
  readonly timeout: number
  /** Weights of the operation kinds. */
  readonly fresh: number
  readonly same: number
  readonly different: number
  readonly read: number
}

/** WorkloadHost is what the clients need from the simulation. */
export interface WorkloadHost {
  now(): number
  schedule(at: number, fn: () => void): void
  replica(id: NodeId): SimReplica | undefined
  liveReplicas(): SimReplica[]
  readonly checkers: Checkers
  readonly trace: Trace
}

type PutKind = 'fresh' | 'same' | 'different'

interface PutOp {
  readonly kind: PutKind
  readonly key: string
  readonly value: string
  readonly reqId: number
  attempts: number
}

interface Client {
  readonly id: number
  nextKey: number
  nextReq: number
  leaderGuess: NodeId
  // The operation in progress changes token; stale callbacks compare it.
  token: number
}

const MAX_ATTEMPTS = 6

/** Workload drives the simulated clients. */
export class Workload {
  private readonly clients: Client[] = []
  // Every key a fresh put was attempted for, with its one value.
  private readonly attempted: string[] = []
  // Recent keys whose fresh put is in flight or ended unknown: they may or may not exist.
  private readonly uncertain: string[] = []
  private stopped = false
  private readSeq = 0
  /** stats counts operations for the run summary. */
  readonly stats = { puts: 0, acked: 0, conflicts: 0, reads: 0, readsDropped: 0, gaveUp: 0 }

  constructor(
    private readonly host: WorkloadHost,
    private readonly rng: SeededRng,
    private readonly params: WorkloadParams,
  ) {
    for (let i = 0; i < params.clients; i++) {
      this.clients.push({ id: i, nextKey: 0, nextReq: 0, leaderGuess: '', token: 0 })
    }
  }

  /** start schedules every client's first operation. */
  start(): void {
    for (const c of this.clients) this.later(c, this.rng.range(0, this.params.thinkMax))
  }

  /** stop lets operations in progress finish but starts no new ones. */
  stop(): void {
    this.stopped = true
  }

  private later(c: Client, delay: number): void {
    const token = ++c.token
    this.host.schedule(this.host.now() + delay, () => {
      if (c.token === token) this.nextOp(c)
    })
  }

  private nextOp(c: Client): void {
    if (this.stopped) return
    const p = this.params
    const acked = this.host.checkers.ackedPuts
    let roll = this.rng.int(p.fresh + p.same + p.different + p.read)
    if (roll < p.read) {
      this.doRead(c)
      return
    }
    roll -= p.read
    const reqId = c.nextReq++
    if (acked.length > 0 && roll < p.same + p.different) {
      const target = this.rng.pick(acked)
      const kind: PutKind = roll < p.same ? 'same' : 'different'
      const value = kind === 'same' ? target.value : `${target.value}~${c.id}.${reqId}`
      this.doPut(c, { kind, key: target.key, value, reqId, attempts: 0 })
      return
    }
    const key = `c${c.id}k${c.nextKey++}`
    const value = `v${this.rng.u32().toString(36)}`
    this.attempted.push(key)
    this.uncertain.push(key)
    if (this.uncertain.length > 64) this.uncertain.shift()
    this.doPut(c, { kind: 'fresh', key, value, reqId, attempts: 0 })
  }

  private pickTarget(c: Client): SimReplica | undefined {
    const guess = c.leaderGuess ? this.host.replica(c.leaderGuess) : undefined
    if (guess?.up) return guess
    const live = this.host.liveReplicas()
    return live.length > 0 ? this.rng.pick(live) : undefined
  }

  private doPut(c: Client, op: PutOp): void {
    if (op.attempts++ >= MAX_ATTEMPTS) {
      this.stats.gaveUp++
      this.later(c, this.rng.range(0, this.params.thinkMax))
      return
    }
    const r = this.pickTarget(c)
    if (r === undefined) {
      this.retry(c, op, 10 * this.params.thinkMax + 10)
      return
    }
    this.stats.puts++
    const token = ++c.token
    const data = encodePut({ client: c.id, reqId: op.reqId, key: op.key, value: op.value })
    let settled = false
    const res = r.propose(data, (index, term) => ({
      term,
      settle: (result) => {
        if (settled) return
        settled = true
        // Never act inside the replica's apply loop: continue on a fresh event.
        this.host.schedule(this.host.now(), () =>
          this.onSettled(c, token, op, r.id, index, term, result),
        )
      },
    }))
    if (!res.ok) {
      if (res.reason === 'not_leader') {
        const hint = r.knownLeader
        const live = this.host.liveReplicas()
        c.leaderGuess = hint && hint !== r.id ? hint : live.length > 0 ? this.rng.pick(live).id : ''
        this.retry(c, op, this.rng.range(0, 3))
      } else {
        this.retry(c, op, this.rng.range(1, this.params.thinkMax + 10))
      }
      return
    }
    c.leaderGuess = r.id
    this.host.schedule(this.host.now() + this.params.timeout, () => {
      if (settled || c.token !== token) return
      settled = true
      this.stats.gaveUp++
      // The node may be cut off or deposed without knowing it: fail over to another node.
      c.leaderGuess = ''
      this.host.trace.event(
        this.host.now(),
        `client ${c.id} gives up on ${op.kind} ${op.key} at ${res.index}@${res.term} on ${r.id}`,
      )
      this.later(c, this.rng.range(0, this.params.thinkMax))
    })
  }

  private retry(c: Client, op: PutOp, delay: number): void {
    const token = ++c.token
    this.host.schedule(this.host.now() + delay, () => {
      if (c.token === token && !this.stopped) this.doPut(c, op)
    })
  }

  private onSettled(
    c: Client,
    token: number,
    op: PutOp,
    node: NodeId,
    index: number,
    term: number,
    result: PutResult | undefined,
  ): void {
    if (result === undefined) {
      // Dropped (overwritten by another leader's entry, or the node crashed): the outcome is
      // unknown, and a retry of the same bytes is safe.
      if (c.token === token) this.retry(c, op, this.rng.range(0, 5))
      return
    }
    const expect: Record<PutKind, readonly PutResult[]> = {
      fresh: ['created', 'exists'],
      same: ['exists'],
      different: ['conflict'],
    }
    if (!expect[op.kind].includes(result)) {
      const lost = (op.kind === 'same' || op.kind === 'different') && result === 'created'
      fail(
        lost ? Invariant.ackedReadable : Invariant.writeOnce,
        `${op.kind} put ${op.key} = ${op.value} answered ${result} at ${index}@${term} on ${node}` +
          (lost ? ': the key was acknowledged before, yet it was created again' : ''),
      )
    }
    if (result === 'conflict') this.stats.conflicts++
    else {
      this.stats.acked++
      if (op.kind === 'fresh') {
        const at = this.uncertain.indexOf(op.key)
        if (at >= 0) this.uncertain.splice(at, 1)
      }
      this.host.checkers.onAck({
        key: op.key,
        value: op.value,
        index,
        term,
        node,
        at: this.host.now(),
      })
    }
    if (c.token === token) this.later(c, this.rng.range(0, this.params.thinkMax))
  }

  private doRead(c: Client): void {
    const live = this.host.liveReplicas()
    if (live.length === 0) {
      this.later(c, this.params.thinkMax + 10)
      return
    }
    const r = this.rng.pick(live)
    const checkers = this.host.checkers
    const acked = checkers.ackedPuts
    // Keys that may or may not exist yet (in-flight puts) are where a stale read shows.
    const roll = this.rng.int(100)
    let key: string
    if (roll < 40 && acked.length > 0) key = this.rng.pick(acked).key
    else if (roll < 85 && this.uncertain.length > 0) key = this.rng.pick(this.uncertain)
    else if (roll < 95 && this.attempted.length > 0) key = this.rng.pick(this.attempted)
    else key = 'never-written'
    const rec: ReadRecord = {
      ctx: `r${this.readSeq++}`,
      node: r.id,
      key,
      expect: checkers.ackedOf(key)?.value,
      minIndex: checkers.maxAckedIndex,
      issuedAt: this.host.now(),
      issuedSeq: checkers.nextSeq(),
    }
    this.stats.reads++
    if (!r.readIndex(rec)) this.stats.readsDropped++
    this.later(c, this.rng.range(0, this.params.thinkMax))
  }
}
