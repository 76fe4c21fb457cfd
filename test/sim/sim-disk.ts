// SimDisk is one replica's simulated disk. Writes are ordered records appended to a buffer of
// unsynced writes; sync() makes them durable by folding them, in order, into the synced state.
// crash() drops the unsynced buffer, optionally keeping a random prefix of it first (legal for a
// disk that writes in order: what was written earlier may survive what was written later, never
// the other way round). A restarted replica is rebuilt from the synced state alone.
//
// Durable contents: hard state, stable log with its snapshot metadata (enough to rebuild a
// MemoryStorage), snapshot data, and the state machine (key/value map, applied index, conf),
// whose three parts are always written in one record, so they are atomic.
import type { SeededRng } from '../../src/base/index.ts'
import type { ConfState, Entry, HardState, SnapshotMeta } from '../../src/raft/index.ts'

/** DurableState is everything a replica can restart from. */
export interface DurableState {
  hardState: HardState
  snapMeta: SnapshotMeta
  /** log holds the entries after snapMeta.index. Invariant: log[i].index === snapMeta.index + 1 + i. */
  log: Entry[]
  /** snapData is the serialized state machine at snapMeta.index. */
  snapData: Uint8Array
  kv: Map<string, string>
  /** applied is the state machine's applied index. Invariant: applied >= snapMeta.index. */
  applied: number
  conf: ConfState
}

/** DiskWrite is one ordered write record. */
export type DiskWrite =
  /** raft is one Ready's write, atomic as the core's contract asks: the hard state, a snapshot
   * from the leader (replacing log, snapshot data and state machine), then entries (replacing
   * any suffix from the first one's index). */
  | {
      readonly kind: 'raft'
      readonly hardState: HardState | undefined
      readonly snapshot:
        | {
            readonly meta: SnapshotMeta
            readonly data: Uint8Array
            readonly kv: ReadonlyMap<string, string>
          }
        | undefined
      readonly entries: readonly Entry[]
    }
  /** apply records the puts of applied entries with the new applied index and conf. */
  | {
      readonly kind: 'apply'
      readonly puts: readonly (readonly [string, string])[]
      readonly applied: number
      readonly conf: ConfState
    }
  /** compact records a snapshot the replica took and drops the log up to it. */
  | { readonly kind: 'compact'; readonly meta: SnapshotMeta; readonly data: Uint8Array }

/** SimDisk keeps written apart from synced data. */
export class SimDisk {
  private synced: DurableState
  private pending: DiskWrite[] = []
  /** syncs counts sync() calls that had something to make durable. */
  syncs = 0

  constructor(initial: DurableState) {
    this.synced = initial
  }

  /** write buffers one record; it is durable only after the next sync(). */
  write(w: DiskWrite): void {
    this.pending.push(w)
  }

  /** unsyncedCount is the number of buffered records. */
  get unsyncedCount(): number {
    return this.pending.length
  }

  /** sync makes every buffered record durable, in order. */
  sync(): void {
    if (this.pending.length === 0) return
    this.syncs++
    for (const w of this.pending) applyWrite(this.synced, w)
    this.pending = []
  }

  /** crash drops the unsynced records; with keepPrefix a random prefix of them survives.
   * It returns how many records survived and how many were lost. */
  crash(rng: SeededRng, keepPrefix: boolean): { kept: number; lost: number } {
    const n = this.pending.length
    const kept = keepPrefix ? rng.int(n + 1) : 0
    for (let i = 0; i < kept; i++) applyWrite(this.synced, this.pending[i] as DiskWrite)
    this.pending = []
    return { kept, lost: n - kept }
  }

  /** durable returns the synced state. The caller must not mutate it: a restart copies out. */
  durable(): Readonly<DurableState> {
    return this.synced
  }

  /** restartCopy returns a copy of the synced state a restarted replica may own. */
  restartCopy(): DurableState {
    const s = this.synced
    return {
      hardState: s.hardState,
      snapMeta: s.snapMeta,
      log: s.log.slice(),
      snapData: s.snapData,
      kv: new Map(s.kv),
      applied: s.applied,
      conf: s.conf,
    }
  }
}

function applyWrite(s: DurableState, w: DiskWrite): void {
  switch (w.kind) {
    case 'raft': {
      if (w.hardState) s.hardState = w.hardState
      if (w.snapshot) {
        s.snapMeta = w.snapshot.meta
        s.log = []
        s.snapData = w.snapshot.data
        s.kv = new Map(w.snapshot.kv)
        s.applied = w.snapshot.meta.index
        s.conf = w.snapshot.meta.conf
      }
      const first = w.entries[0]
      if (first === undefined) return
      const keep = first.index - s.snapMeta.index - 1
      if (keep < 0 || keep > s.log.length) {
        throw new Error(
          `sim-disk: append at ${first.index} does not fit a log after ${s.snapMeta.index} of ${s.log.length}`,
        )
      }
      s.log.length = keep
      for (const e of w.entries) s.log.push(e)
      return
    }
    case 'apply':
      for (const [k, v] of w.puts) if (!s.kv.has(k)) s.kv.set(k, v)
      s.applied = w.applied
      s.conf = w.conf
      return
    case 'compact': {
      const drop = w.meta.index - s.snapMeta.index
      if (drop <= 0) return
      if (drop > s.log.length) {
        throw new Error(
          `sim-disk: compact to ${w.meta.index} past the durable log's end ${s.snapMeta.index + s.log.length}`,
        )
      }
      s.log = s.log.slice(drop)
      s.snapMeta = w.meta
      s.snapData = w.data
      return
    }
  }
}
