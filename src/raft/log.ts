// RaftLog is a member's whole log as the core sees it: the stable part the host has made
// durable (LogStorage) followed by the unstable part not yet handed out or not yet persisted,
// plus the commit and apply cursors. It decides how appends from a leader merge (§5.3).
import { assert } from '../base/index.ts'
import type { LogStorage } from './storage.ts'
import type { Entry, SnapshotMeta } from './types.ts'
import { entryBytes } from './types.ts'

/** RaftLog merges stable storage with unstable entries and tracks commit and apply. */
export class RaftLog {
  // Unstable: a snapshot received but not yet persisted, and entries not yet persisted.
  // Invariant: unstableEntries[i].index === unstableOffset + i.
  // Invariant: when pendingSnapshot is set, unstableOffset === pendingSnapshot.index + 1.
  pendingSnapshot: SnapshotMeta | undefined
  // Whether pendingSnapshot was handed to the host in an outstanding Ready.
  snapshotInProgress = false
  unstableEntries: Entry[] = []
  unstableOffset: number
  // Invariant: applied <= committed <= lastIndex().
  committed: number
  applied: number
  // How far entries have been handed to the host for persisting (in an outstanding Ready).
  // Invariant: unstableOffset - 1 <= inProgress <= lastIndex().
  inProgress: number

  constructor(
    readonly storage: LogStorage,
    committed: number,
    applied: number,
  ) {
    this.unstableOffset = storage.lastIndex() + 1
    this.inProgress = storage.lastIndex()
    this.committed = committed
    this.applied = applied
    assert(applied <= committed, () => `applied ${applied} > committed ${committed}`)
    assert(committed <= this.lastIndex(), () => `committed ${committed} > last ${this.lastIndex()}`)
  }

  /** firstIndex is the first index whose entry may still be read. */
  firstIndex(): number {
    if (this.pendingSnapshot) return this.pendingSnapshot.index + 1
    return this.storage.firstIndex()
  }

  /** lastIndex is the index of the last entry, stable or not. */
  lastIndex(): number {
    if (this.unstableEntries.length > 0)
      return this.unstableOffset + this.unstableEntries.length - 1
    if (this.pendingSnapshot) return this.pendingSnapshot.index
    return this.storage.lastIndex()
  }

  /** lastTerm is the term of the last entry. */
  lastTerm(): number {
    const t = this.term(this.lastIndex())
    assert(t !== undefined, 'no term for the last index')
    return t
  }

  /** term is the term at index, or undefined when compacted away or past the end. */
  term(index: number): number | undefined {
    if (index >= this.unstableOffset) {
      return this.unstableEntries[index - this.unstableOffset]?.term
    }
    if (this.pendingSnapshot) {
      return index === this.pendingSnapshot.index ? this.pendingSnapshot.term : undefined
    }
    if (index < this.storage.firstIndex() - 1) return undefined
    return this.storage.term(index)
  }

  /** matchTerm tells whether the entry at index has the given term. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /** isUpToDate tells whether a log ending at (index, term) is at least as up to date as ours
   * (§5.4.1: a higher last term wins; equal terms compare length). */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm()
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex())
  }

  /**
   * maybeAppend merges a leader's append of entries after (index, logTerm). It returns the
   * index of the last new entry, or undefined when our log has no match at index (reject).
   * A prefix we already hold is skipped; only a real conflict truncates (never a stale,
   * duplicated or reordered append), and never at or below the commit index.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNew = index + entries.length
    const conflict = this.findConflict(entries)
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed ${this.committed}`,
      )
      const first = entries[0]
      assert(first !== undefined, 'conflict without entries')
      this.append(entries.slice(conflict - first.index))
    }
    this.commitTo(Math.min(commit, lastNew))
    return lastNew
  }

  /** findConflict returns the index of the first entry that is new or conflicts, or 0. */
  private findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * findConflictByTerm returns the largest index <= index whose term is <= term, and that
   * term: the point from which a leader or follower can skip a whole term of mismatch.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex())
    for (;;) {
      const t = this.term(i)
      if (t === undefined) return { index: i, term: 0 }
      if (t <= term) return { index: i, term: t }
      i--
    }
  }

  /** append adds entries at the end, truncating any unstable or stable suffix they replace. */
  append(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    const after = first.index - 1
    assert(
      after >= this.committed,
      () => `append after ${after} would overwrite committed ${this.committed}`,
    )
    if (after + 1 === this.unstableOffset + this.unstableEntries.length) {
      this.unstableEntries.push(...entries)
    } else if (after + 1 <= this.unstableOffset) {
      // Replaces part of the stable log: the host truncates it when it persists these.
      this.unstableOffset = after + 1
      this.unstableEntries = [...entries]
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, after + 1 - this.unstableOffset)
      this.unstableEntries.push(...entries)
    }
    this.inProgress = Math.min(this.inProgress, after)
  }

  /** entries returns entries from lo on, up to maxBytes (at least one if any exist). */
  entries(lo: number, maxBytes: number): Entry[] {
    const hi = this.lastIndex() + 1
    if (lo >= hi) return []
    return this.slice(lo, hi, maxBytes)
  }

  /** slice returns entries in [lo, hi), at most maxBytes (at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1,
      () => `slice [${lo}, ${hi}) out of [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    )
    let out: Entry[] = []
    if (lo < this.unstableOffset) {
      out = this.storage.entries(lo, Math.min(hi, this.unstableOffset), maxBytes)
      if (out.length < Math.min(hi, this.unstableOffset) - lo) return out
    }
    let bytes = out.reduce((n, e) => n + entryBytes(e), 0)
    for (let i = Math.max(lo, this.unstableOffset); i < hi; i++) {
      const e = this.unstableEntries[i - this.unstableOffset]
      assert(e !== undefined, 'unstable entry missing')
      bytes += entryBytes(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  /** commitTo raises the commit index; it never lowers it. */
  commitTo(index: number): void {
    if (index <= this.committed) return
    assert(index <= this.lastIndex(), () => `commit ${index} past last index ${this.lastIndex()}`)
    this.committed = index
  }

  /** appliedTo records that the host applied everything up to index. */
  appliedTo(index: number): void {
    assert(
      index <= this.committed && index >= this.applied,
      () => `applied ${index} outside [${this.applied}, ${this.committed}]`,
    )
    this.applied = index
  }

  /** hasUnstable tells whether there are entries or a snapshot not yet handed out. */
  hasUnstable(): boolean {
    return (
      this.inProgress < this.lastIndex() ||
      (this.pendingSnapshot !== undefined && !this.snapshotInProgress)
    )
  }

  /** unstableToPersist returns the entries not yet handed to the host. */
  unstableToPersist(): Entry[] {
    const from = Math.max(this.inProgress + 1, this.unstableOffset)
    return this.unstableEntries.slice(from - this.unstableOffset)
  }

  /** stableTo records that the host made entries durable up to (index, term). An entry
   * replaced meanwhile (the term differs) stays unstable. */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return
    const e = this.unstableEntries[index - this.unstableOffset]
    if (e === undefined || e.term !== term) return
    this.unstableEntries = this.unstableEntries.slice(index + 1 - this.unstableOffset)
    this.unstableOffset = index + 1
  }

  /** stableSnapTo records that the host persisted the pending snapshot at index. */
  stableSnapTo(index: number): void {
    if (this.pendingSnapshot?.index === index) {
      this.pendingSnapshot = undefined
      this.snapshotInProgress = false
    }
  }

  /** committedToApply returns committed entries after applied, bounded by maxBytes, that
   * are already handed out for persisting (they are persisted before they are applied). */
  committedToApply(from: number, maxBytes: number): Entry[] {
    const hi = Math.min(this.committed, this.inProgressOrStable()) + 1
    if (from >= hi) return []
    return this.slice(from, hi, maxBytes)
  }

  private inProgressOrStable(): number {
    return Math.max(this.inProgress, this.unstableOffset - 1)
  }

  /** restore replaces the log with a snapshot received from the leader. */
  restore(snapshot: SnapshotMeta): void {
    this.pendingSnapshot = snapshot
    this.unstableEntries = []
    this.unstableOffset = snapshot.index + 1
    this.snapshotInProgress = false
    this.inProgress = snapshot.index
    this.committed = snapshot.index
  }
}
