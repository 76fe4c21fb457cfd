// Progress is the leader's view of one follower: how much of the log matches, what to send
// next, and the flow-control window of appends in flight. A follower is probed one append at
// a time until its log matches, then replicated to optimistically (pipelining), or sent a
// snapshot when what it needs was compacted away.
import { assert } from '../base/index.ts'

/** ProgressState is how the leader is currently sending to a follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/** Inflights is the window of appends sent and not yet acknowledged, by last index sent. */
export class Inflights {
  // Invariant: ascending; length <= size.
  private readonly last: number[] = []

  constructor(readonly size: number) {}

  /** add records an append whose last entry is index. */
  add(index: number): void {
    assert(!this.full(), 'inflights full')
    this.last.push(index)
  }

  /** freeLE frees every append whose last index is <= index (acknowledged together). */
  freeLE(index: number): void {
    let n = 0
    while (n < this.last.length && (this.last[n] as number) <= index) n++
    if (n > 0) this.last.splice(0, n)
  }

  /** freeFirstOne frees the oldest append in flight. */
  freeFirstOne(): void {
    this.last.shift()
  }

  /** full tells whether no more appends may be sent. */
  full(): boolean {
    return this.last.length >= this.size
  }

  /** count is the number of appends in flight. */
  count(): number {
    return this.last.length
  }

  /** reset forgets every append in flight. */
  reset(): void {
    this.last.length = 0
  }
}

/** Progress tracks one follower (or learner) on the leader. */
export class Progress {
  // Invariant: match < next.
  match = 0
  next: number
  state: ProgressState = 'probe'
  // In 'snapshot': the index of the snapshot sent; otherwise 0.
  pendingSnapshot = 0
  // Ticks since the snapshot was sent; a lost transfer is retried after a timeout.
  snapshotElapsedTicks = 0
  // Heard from in the current check-quorum window.
  recentActive = false
  // In 'probe': an append was sent and no answer or heartbeat reply came yet.
  probeSent = false
  // The commit index the follower would take from what was sent to it (appends and
  // heartbeats), if it accepted all of it: an upper bound, never lowered. Lazy commit notices
  // compare it with what the follower holds of the commit index.
  commitSent = 0
  // The index up to which the follower waits to apply (its forwarded proposals, a read index
  // given to it): lazy commit notices tell it at once when that much has committed.
  noticeWanted = 0
  readonly inflights: Inflights

  constructor(
    next: number,
    inflightMax: number,
    public isLearner: boolean,
  ) {
    this.next = next
    this.inflights = new Inflights(inflightMax)
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false
    this.pendingSnapshot = 0
    this.snapshotElapsedTicks = 0
    this.state = state
    this.inflights.reset()
  }

  /** becomeProbe sends one append at a time from just after match (or after a snapshot). */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.resetState('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.resetState('probe')
      this.next = this.match + 1
    }
  }

  /** becomeReplicate pipelines appends optimistically from just after match. */
  becomeReplicate(): void {
    this.resetState('replicate')
    this.next = this.match + 1
  }

  /** becomeSnapshot waits for the follower to install the snapshot at index. */
  becomeSnapshot(index: number): void {
    this.resetState('snapshot')
    this.pendingSnapshot = index
  }

  /** maybeUpdate records an acknowledgement up to index; true if it was news. */
  maybeUpdate(index: number): boolean {
    let updated = false
    if (this.match < index) {
      this.match = index
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /** sentEntries records that an append of n entries ending at last was sent. */
  sentEntries(last: number, n: number): void {
    if (this.state === 'replicate') {
      if (n > 0) {
        this.next = last + 1
        this.inflights.add(last)
      }
    } else if (this.state === 'probe') {
      this.probeSent = true
    }
  }

  /**
   * maybeDecrTo handles a rejection of the append at rejected. matchHint is the largest index
   * that may match. It returns false when the rejection is stale (a reordered or duplicate
   * answer to an append already superseded), which must then be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  /** isPaused tells whether no append should be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.full()
      case 'snapshot':
        return true
    }
  }
}
