// The core's read-only view of what the host has made durable: the stable log and the latest
// snapshot's metadata. The host writes (after each Ready); the core only reads. MemoryStorage
// is the in-memory implementation used by unit tests and the simulator, whose simulated disk
// decides what survives a crash.
import { assert } from '../base/index.ts'
import type { ConfState, Entry, HardState, SnapshotMeta } from './types.ts'
import { entryBytes, NONE } from './types.ts'

/** LogStorage is the stable log as the core reads it. */
export interface LogStorage {
  /** firstIndex is the index of the first entry still held: snapshot().index + 1. */
  firstIndex(): number
  /** lastIndex is the index of the last stable entry, or snapshot().index if none. */
  lastIndex(): number
  /** term is the term of the entry at index, snapshot().term at the snapshot's index,
   * undefined below it (compacted) or past lastIndex. */
  term(index: number): number | undefined
  /** entries returns entries in [lo, hi), at least one when lo < hi, and then no more than
   * maxBytes in all. Callers keep firstIndex() <= lo and hi <= lastIndex() + 1. */
  entries(lo: number, hi: number, maxBytes: number): Entry[]
  /** snapshot is the metadata of the latest snapshot. */
  snapshot(): SnapshotMeta
}

/** InitialState is what a member restarts from: its hard state and what it had applied. */
export interface InitialState {
  readonly hardState: HardState
  /** applied is the index the application has durably applied; >= snapshot().index. */
  readonly applied: number
  /** conf is the configuration as of applied. */
  readonly conf: ConfState
}

/** EMPTY_CONF is the configuration with no members (a node waiting to be added). */
export const EMPTY_CONF: ConfState = { voters: [], learners: [] }

/** EMPTY_HARD_STATE is a fresh member's hard state. */
export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 }

/** bootstrapSnapshot is the snapshot a new cluster starts from: index 1, term 1, voters given.
 * Starting every cluster from a snapshot means a joining member always learns the
 * configuration from a snapshot or from the conf entries after it. */
export function bootstrapSnapshot(voters: readonly string[]): SnapshotMeta {
  return { index: 1, term: 1, conf: { voters: [...voters].sort(), learners: [] } }
}

/** MemoryStorage keeps the stable log in memory. */
export class MemoryStorage implements LogStorage {
  private snap: SnapshotMeta
  // Invariant: log[i].index === snap.index + 1 + i.
  private log: Entry[] = []

  constructor(snapshot: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF }) {
    this.snap = snapshot
  }

  firstIndex(): number {
    return this.snap.index + 1
  }

  lastIndex(): number {
    return this.snap.index + this.log.length
  }

  term(index: number): number | undefined {
    if (index === this.snap.index) return this.snap.term
    if (index < this.snap.index) return undefined
    return this.log[index - this.snap.index - 1]?.term
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1,
      () => `entries [${lo}, ${hi}) out of bounds [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    )
    const out: Entry[] = []
    let bytes = 0
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - this.snap.index - 1]
      assert(e !== undefined, 'entry missing')
      bytes += entryBytes(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  snapshot(): SnapshotMeta {
    return this.snap
  }

  /** append stores entries, replacing any stable suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    assert(first.index > this.snap.index, 'append below the snapshot')
    assert(
      first.index <= this.lastIndex() + 1,
      () => `append leaves a gap: ${first.index} after ${this.lastIndex()}`,
    )
    this.log.length = first.index - this.snap.index - 1
    for (const e of entries) this.log.push(e)
  }

  /** applySnapshot replaces the whole log with a received snapshot. */
  applySnapshot(snapshot: SnapshotMeta): void {
    this.snap = snapshot
    this.log = []
  }

  /** compact records a snapshot the application took at index and drops the log up to it. */
  compact(index: number, conf: ConfState): void {
    if (index <= this.snap.index) return
    assert(index <= this.lastIndex(), 'compact past the last index')
    const term = this.term(index)
    assert(term !== undefined, 'compact: no term')
    this.log = this.log.slice(index - this.snap.index)
    this.snap = { index, term, conf }
  }
}
