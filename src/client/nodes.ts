// What the client knows about the nodes of one tier (cache nodes or database members): a
// moving average of each node's latency and, after a failure, a pause that doubles with each
// failure in a row. Calls try the healthy nodes fastest first, then the paused ones.

/** NodeInfo is one node as the client sees it. */
export interface NodeInfo {
  readonly url: string
  /** ewmaMs is the moving average of its answer times (undefined: not used yet). */
  readonly ewmaMs: number | undefined
  /** down is true while the node is paused after failures. */
  readonly down: boolean
  /** failures counts the failures in a row (0 after a success). */
  readonly failures: number
  /** requests and errors count attempts sent to it and those that failed. */
  readonly requests: number
  readonly errors: number
}

interface NodeState {
  url: string
  ewmaMs: number | undefined
  failures: number
  downUntil: number
  requests: number
  errors: number
}

/** EWMA_WEIGHT is the weight of a new sample in the moving average. */
const EWMA_WEIGHT = 0.3
/** Pauses after failures: 250 ms, doubling per failure in a row, at most 10 s. */
const PAUSE_BASE_MS = 250
const PAUSE_MAX_MS = 10_000

/** NodeTier tracks the nodes of one tier. The list is bounded by what it is given. */
export class NodeTier {
  private states = new Map<string, NodeState>()

  /** urls are the nodes, in the order given. */
  get urls(): string[] {
    return [...this.states.keys()]
  }

  get size(): number {
    return this.states.size
  }

  /** set replaces the list; a node already known keeps its history. */
  set(urls: readonly string[]): void {
    const next = new Map<string, NodeState>()
    for (const url of urls) {
      if (next.has(url)) continue
      next.set(url, this.states.get(url) ?? newState(url))
    }
    this.states = next
  }

  /** up is the healthy nodes, fastest first (nodes never used come first, to learn their
   * speed); down is the paused ones, the soonest back first. */
  order(now: number): { up: string[]; down: string[] } {
    const up: NodeState[] = []
    const down: NodeState[] = []
    for (const s of this.states.values()) (s.downUntil > now ? down : up).push(s)
    up.sort((a, b) => (a.ewmaMs ?? -1) - (b.ewmaMs ?? -1))
    down.sort((a, b) => a.downUntil - b.downUntil)
    return { up: up.map((s) => s.url), down: down.map((s) => s.url) }
  }

  /** has is true when url is in the list. */
  has(url: string): boolean {
    return this.states.has(url)
  }

  /** success records an answer that took ms. */
  success(url: string, ms: number): void {
    const s = this.states.get(url)
    if (!s) return
    s.requests++
    s.failures = 0
    s.downUntil = 0
    s.ewmaMs = s.ewmaMs === undefined ? ms : s.ewmaMs + EWMA_WEIGHT * (ms - s.ewmaMs)
  }

  /** failure records a failed attempt (no answer, a timeout, a 5xx) at now. */
  failure(url: string, now: number): void {
    const s = this.states.get(url)
    if (!s) return
    s.requests++
    s.errors++
    s.failures++
    s.downUntil = now + Math.min(PAUSE_MAX_MS, PAUSE_BASE_MS * 2 ** Math.min(s.failures - 1, 10))
  }

  /** info is a snapshot of every node. */
  info(now: number): NodeInfo[] {
    return [...this.states.values()].map((s) => ({
      url: s.url,
      ewmaMs: s.ewmaMs === undefined ? undefined : Math.round(s.ewmaMs * 100) / 100,
      down: s.downUntil > now,
      failures: s.failures,
      requests: s.requests,
      errors: s.errors,
    }))
  }
}

function newState(url: string): NodeState {
  return { url, ewmaMs: undefined, failures: 0, downUntil: 0, requests: 0, errors: 0 }
}
