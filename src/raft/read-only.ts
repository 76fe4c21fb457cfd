// ReadOnly tracks ReadIndex requests on the leader (thesis §6.4): each records the commit
// index when it arrived and waits for a heartbeat round acknowledged by a majority. Requests
// that arrive before a round's heartbeat goes out share that round (the heartbeat leaves
// after all of them arrived, so its acknowledgements confirm each). Rounds are confirmed in
// order: an acknowledgement for one confirms all before it.
import { assert } from '../base/index.ts'
import type { NodeId } from './types.ts'

/** PendingRead is one ReadIndex request waiting for its round. */
export interface PendingRead {
  /** requestCtx is the requester's ctx, returned with the read state. */
  readonly requestCtx: string
  readonly index: number
  readonly from: NodeId
}

/** ReadRound is one heartbeat round of the leader and the requests it confirms. */
interface ReadRound {
  /** ctx identifies the round (the leader's own id, carried by its heartbeats). */
  readonly ctx: string
  readonly reads: PendingRead[]
  readonly acks: Set<NodeId>
}

/** ReadOnly is the leader's queue of pending ReadIndex requests, by round. */
export class ReadOnly {
  private readonly rounds: ReadRound[] = []
  private readonly byCtx = new Map<string, ReadRound>()
  private pending = 0

  constructor(readonly pendingMax: number) {}

  /** add queues a request confirmed by the heartbeat round ctx: the newest round (one whose
   * heartbeat has not gone out: the caller's to know), or a new one. False when the queue is
   * full. */
  add(index: number, ctx: string, requestCtx: string, from: NodeId, self: NodeId): boolean {
    if (this.pending >= this.pendingMax) return false
    let round = this.byCtx.get(ctx)
    if (round === undefined) {
      round = { ctx, reads: [], acks: new Set([self]) }
      this.rounds.push(round)
      this.byCtx.set(ctx, round)
    } else
      assert(round === this.rounds[this.rounds.length - 1], 'a read joins only the newest round')
    round.reads.push({ requestCtx, index, from })
    this.pending++
    return true
  }

  /** ack records that id acknowledged the heartbeat carrying ctx; returns the acks so far. */
  ack(ctx: string, id: NodeId): ReadonlySet<NodeId> | undefined {
    const round = this.byCtx.get(ctx)
    if (!round) return undefined
    round.acks.add(id)
    return round.acks
  }

  /** release removes and returns every request of the rounds up to and including ctx. */
  release(ctx: string): PendingRead[] {
    const at = this.rounds.findIndex((r) => r.ctx === ctx)
    if (at < 0) return []
    const done: PendingRead[] = []
    for (const r of this.rounds.splice(0, at + 1)) {
      this.byCtx.delete(r.ctx)
      done.push(...r.reads)
    }
    this.pending -= done.length
    return done
  }

  /** lastCtx is the ctx of the newest round, or '' when none. */
  lastCtx(): string {
    return this.rounds[this.rounds.length - 1]?.ctx ?? ''
  }

  /** size is the number of pending requests. */
  size(): number {
    return this.pending
  }

  /** reset drops every pending request (leadership changed; requesters time out and retry). */
  reset(): void {
    this.rounds.length = 0
    this.byCtx.clear()
    this.pending = 0
  }
}
