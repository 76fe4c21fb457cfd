// ReadOnly tracks ReadIndex requests on the leader (thesis §6.4): each records the commit
// index when it arrived and waits for a heartbeat round acknowledged by a majority. Requests
// are confirmed in arrival order: an acknowledgement for one confirms all before it.
import type { NodeId } from './types.ts'

/** PendingRead is one ReadIndex request waiting for a quorum of heartbeat acknowledgements. */
export interface PendingRead {
  /** ctx identifies the leader's heartbeat round confirming this read. */
  readonly ctx: string
  /** requestCtx is the requester's ctx, returned with the read state. */
  readonly requestCtx: string
  readonly index: number
  readonly from: NodeId
  readonly acks: Set<NodeId>
}

/** ReadOnly is the leader's queue of pending ReadIndex requests. */
export class ReadOnly {
  private readonly queue: PendingRead[] = []
  private readonly byCtx = new Map<string, PendingRead>()

  constructor(readonly pendingMax: number) {}

  /** add queues a request confirmed by the heartbeat round ctx; false when ctx is a
   * duplicate or the queue is full. */
  add(index: number, ctx: string, requestCtx: string, from: NodeId, self: NodeId): boolean {
    if (this.byCtx.has(ctx) || this.queue.length >= this.pendingMax) return false
    const read: PendingRead = { ctx, requestCtx, index, from, acks: new Set([self]) }
    this.queue.push(read)
    this.byCtx.set(ctx, read)
    return true
  }

  /** ack records that id acknowledged the heartbeat carrying ctx; returns the acks so far. */
  ack(ctx: string, id: NodeId): ReadonlySet<NodeId> | undefined {
    const read = this.byCtx.get(ctx)
    if (!read) return undefined
    read.acks.add(id)
    return read.acks
  }

  /** release removes and returns every request up to and including ctx. */
  release(ctx: string): PendingRead[] {
    const at = this.queue.findIndex((r) => r.ctx === ctx)
    if (at < 0) return []
    const done = this.queue.splice(0, at + 1)
    for (const r of done) this.byCtx.delete(r.ctx)
    return done
  }

  /** lastCtx is the ctx of the newest pending request, or '' when none. */
  lastCtx(): string {
    return this.queue[this.queue.length - 1]?.ctx ?? ''
  }

  /** size is the number of pending requests. */
  size(): number {
    return this.queue.length
  }

  /** reset drops every pending request (leadership changed; requesters time out and retry). */
  reset(): void {
    this.queue.length = 0
    this.byCtx.clear()
  }
}
