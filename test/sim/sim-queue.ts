// A binary min-heap of timed items ordered by (at, seq): the simulator's one notion of "what
// happens next". seq is a global insertion counter, so two items due at the same virtual time
// always come out in the order they were scheduled, on every machine. It knows nothing of
// packets or nodes; SimNetwork and Simulation each keep one.

/** Timed is an item with a virtual time and a tie-breaking sequence number. */
export interface Timed {
  readonly at: number
  readonly seq: number
}

/** TimedQueue is a min-heap of Timed items; ties on `at` break on `seq`. */
export class TimedQueue<T extends Timed> {
  private readonly heap: T[] = []

  /** size is the number of queued items. */
  get size(): number {
    return this.heap.length
  }

  /** push queues an item. */
  push(item: T): void {
    const h = this.heap
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent] as T
      if (!before(item, p)) break
      h[i] = p
      i = parent
    }
    h[i] = item
  }

  /** peek returns the earliest item without removing it. */
  peek(): T | undefined {
    return this.heap[0]
  }

  /** pop removes and returns the earliest item. */
  pop(): T | undefined {
    const h = this.heap
    const top = h[0]
    const last = h.pop()
    if (top === undefined || last === undefined || h.length === 0) return top
    let i = 0
    const n = h.length
    while (true) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let c = l
      if (r < n && before(h[r] as T, h[l] as T)) c = r
      const child = h[c] as T
      if (!before(child, last)) break
      h[i] = child
      i = c
    }
    h[i] = last
    return top
  }

  /** clear drops every item. */
  clear(): void {
    this.heap.length = 0
  }

  /** items returns the queued items in no particular order (for inspection only). */
  items(): readonly T[] {
    return this.heap
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
