// SimNetwork is the simulated network between replicas: every send draws a delivery delay from
// the PRNG and lands in a queue ordered by (delivery time, sequence number), which gives delay
// and reordering; per-run loss and duplication probabilities drop or copy packets; directed
// links can be blocked (one-way partitions) or blocked both ways (two-way partitions), and
// heal() unblocks all. A packet on a link that is blocked when it is sent, or when it is due,
// is lost. It carries opaque payloads: what a packet means is the replicas' business.
import type { SeededRng } from '../../src/base/index.ts'
import { TimedQueue, type Timed } from './sim-queue.ts'

/** NetworkOptions are one run's network fault rates and delays, in virtual milliseconds. */
export interface NetworkOptions {
  /** delayMin and delayMax bound the usual one-way delay. */
  readonly delayMin: number
  readonly delayMax: number
  /** tailRate is the chance a packet is slow: its delay is drawn up to tailMax instead. */
  readonly tailRate: number
  readonly tailMax: number
  /** lossRate is the chance a packet is dropped. */
  readonly lossRate: number
  /** dupRate is the chance a packet is delivered twice (with independent delays). */
  readonly dupRate: number
}

/** Packet is one payload in flight from one node to another. */
export interface Packet<P> extends Timed {
  readonly from: string
  readonly to: string
  readonly payload: P
  readonly sentAt: number
}

/** NetworkStats counts what happened to packets. */
export interface NetworkStats {
  sent: number
  delivered: number
  lost: number
  blocked: number
  duplicated: number
}

/** SimNetwork queues packets between nodes and applies the run's network faults. */
export class SimNetwork<P> {
  private readonly queue = new TimedQueue<Packet<P>>()
  // Directed links that drop everything: `${from}>${to}`.
  private readonly blockedLinks = new Set<string>()
  private seq = 0
  private lossRate: number
  private dupRate: number
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, blocked: 0, duplicated: 0 }

  constructor(
    private readonly rng: SeededRng,
    private readonly options: NetworkOptions,
  ) {
    this.lossRate = options.lossRate
    this.dupRate = options.dupRate
  }

  /** send queues payload from `from` to `to` at virtual time now; false if dropped at once. */
  send(from: string, to: string, payload: P, now: number): boolean {
    this.stats.sent++
    if (this.isBlocked(from, to)) {
      this.stats.blocked++
      return false
    }
    if (this.lossRate > 0 && this.rng.chance(this.lossRate)) {
      this.stats.lost++
      return false
    }
    this.enqueue(from, to, payload, now)
    if (this.dupRate > 0 && this.rng.chance(this.dupRate)) {
      this.stats.duplicated++
      this.enqueue(from, to, payload, now)
    }
    return true
  }

  private enqueue(from: string, to: string, payload: P, now: number): void {
    const o = this.options
    const delay =
      o.tailRate > 0 && this.rng.chance(o.tailRate)
        ? this.rng.range(o.delayMax, Math.max(o.delayMax, o.tailMax))
        : this.rng.range(o.delayMin, o.delayMax)
    this.queue.push({ at: now + delay, seq: this.seq++, from, to, payload, sentAt: now })
  }

  /** nextAt is the delivery time of the earliest packet in flight, if any. */
  nextAt(): number | undefined {
    return this.queue.peek()?.at
  }

  /** popDue removes the earliest packet due at or before now; blocked ones are dropped. */
  popDue(now: number): Packet<P> | undefined {
    while (true) {
      const p = this.queue.peek()
      if (p === undefined || p.at > now) return undefined
      this.queue.pop()
      if (this.isBlocked(p.from, p.to)) {
        this.stats.blocked++
        continue
      }
      this.stats.delivered++
      return p
    }
  }

  /** inFlight is the number of queued packets. */
  get inFlight(): number {
    return this.queue.size
  }

  /** isBlocked tells whether the directed link from → to drops packets. */
  isBlocked(from: string, to: string): boolean {
    return this.blockedLinks.size > 0 && this.blockedLinks.has(`${from}>${to}`)
  }

  /** blockLink cuts the directed link from → to (a one-way partition). */
  blockLink(from: string, to: string): void {
    this.blockedLinks.add(`${from}>${to}`)
  }

  /** partition cuts every link between the two groups, both ways. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue
        this.blockLink(x, y)
        this.blockLink(y, x)
      }
    }
  }

  /** isolate cuts every link between node and the others, both ways. */
  isolate(node: string, others: readonly string[]): void {
    this.partition([node], others)
  }

  /** reconnect removes every cut link to or from node. */
  reconnect(node: string): void {
    for (const link of [...this.blockedLinks]) {
      const [from, to] = link.split('>')
      if (from === node || to === node) this.blockedLinks.delete(link)
    }
  }

  /** heal removes every partition. */
  heal(): void {
    this.blockedLinks.clear()
  }

  /** blockedLinkCount is the number of directed links cut. */
  get blockedLinkCount(): number {
    return this.blockedLinks.size
  }

  /** describeBlocked lists the cut links, for traces. */
  describeBlocked(): string {
    return [...this.blockedLinks].sort().join(' ')
  }

  /** setFaultRates changes loss and duplication (healAll sets both to zero). */
  setFaultRates(lossRate: number, dupRate: number): void {
    this.lossRate = lossRate
    this.dupRate = dupRate
  }
}
