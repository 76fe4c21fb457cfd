// LmdbStore is a database member's one embedded, transactional store (LMDB, through lmdb-js):
// the Raft log, the hard state, the snapshot metadata, the applied index, the configuration,
// the member address book and the key/value data, in one file, so that one transaction can
// cover the data and the applied index that describes it; in front of it, the write-ahead
// file (wal.ts), which takes most Readies with one flush until a checkpoint folds them in;
// beside it, the value file (value-file.ts), which holds the bytes of values over
// INLINE_VALUE_MAX, synced before the transaction that refers to them commits.
//
// It implements the core's LogStorage (synchronous reads, served from memory or from LMDB's
// map), the host's writes for each Ready (writeReady, then sync), the state machine's apply
// transaction, log compaction, and snapshot streaming in both directions. It leaves to others:
// what to write and when (the Replica, following the persistence contract in raft.ts), what a
// log entry means (the state machine), and moving snapshot bytes between members (transport).
//
// Write-ahead file. writeReadyAsync appends a Ready's hard state and log records to wal.log
// with one flush (an LMDB commit costs two) and keeps the records in memory (walTail);
// a checkpoint is an LMDB write transaction through writePending, which also writes the
// tail, the hard state and the last record's sequence number ('walSeq'), after which the
// next append writes from the start of the file again, over the records LMDB now holds
// (the file is recycled, never cut: wal.ts says why and how it is read). Checkpoints come
// with the first Ready after CHECKPOINT_MS, a compaction or a received snapshot,
// and with every other write transaction that writes the pending state (flushApplied,
// compact, apply, writeReady).
// open() replays the records past 'walSeq' and checkpoints them. The log is LMDB's keys up
// to the first tail index, then walTail; LMDB keys past last may linger until a checkpoint.
//
// Durability. lmdb-js 3.5's transactionSync commits synchronously. Measured with strace on
// this machine, with the default overlappingSync, the commit itself does the data fdatasync
// and the O_DSYNC meta page write before transactionSync returns; sync() awaits root.flushed
// as well, so the contract holds even if a later lmdb-js defers that flush. The asynchronous
// root.transaction() hangs in this lmdb version and is never used. A Ready is written with
// lmdb-js's asynchronous puts instead (writeReadyAsync): all queued in one event turn, which
// lmdb-js commits as one transaction on its own thread (eventTurnBatching), then awaited
// with root.flushed. No transactionSync may run while such a batch is queued or committing
// (it would split the batch): every synchronous writer waits for it or asserts (inflight).
//
// Disk space. Before every write transaction the store checks the free space of the file
// system holding it (statfs) against an estimate of what the transaction writes plus a
// reserve (minFreeBytes): short of it, it refuses the write with DiskUnavailableError and
// changes nothing, so the host can hold the write and try again once space returns. The
// check comes first because LMDB must never meet a full disk: lmdb-js 3.5 overruns a heap
// buffer when it reports a failed page write (mdb_page_flush), and the process later aborts.
//
// Failure. A write or sync that throws anyway (a quota, a failing disk, the file system
// turned read-only, a race with another writer) is fail-stop: the store refuses every later
// call and throws DiskFailedError (or the error itself), and the caller stops the node. Anything that looks corrupt (a record failing its CRC, a gap in
// the log, an unreadable metadata record, a data file LMDB cannot use) is a StoreCorruptError.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statfsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { open, type Database, type RootDatabase } from 'lmdb'
import { assert } from '../base/index.ts'
import {
  EMPTY_CONF,
  EMPTY_HARD_STATE,
  entryBytes,
  NONE,
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  type LogStorage,
  type SnapshotMeta,
} from '../raft/index.ts'
import type { IncomingSnapshot, SnapshotSource } from '../transport/transport.ts'
import {
  DiskFailedError,
  DiskUnavailableError,
  diskErrno,
  StoreCorruptError,
  ValueCorruptError,
} from './errors.ts'
import { checkLmdbDataFile } from './lmdb-header.ts'
import {
  decodeLogRecord,
  decodeLogRecordTerm,
  encodeLogRecord,
  isTailRef,
  logRecordIndex,
  tailRefRecord,
} from './log-record.ts'
import { Wal, type WalRecord } from './wal.ts'
import { ValueFile } from './value-file.ts'
import {
  decodeValueRef,
  encodeFileRef,
  encodeInlineRef,
  INLINE_VALUE_MAX,
  VALUE_HEADER_BYTES,
  valueChecksum,
} from './value-record.ts'
import {
  decodeMembers,
  encodeMembers,
  parseMembers,
  plainMembers,
  type Members,
} from './members.ts'
import {
  decodeMetaRecord,
  encodeMetaRecord,
  parseConfState,
  parseHardState,
  parseIdentity,
  parseIndex,
  parseSnapshotMeta,
  plainConf,
  plainHardState,
  plainSnapshotMeta,
  type Identity,
} from './meta-record.ts'
import { LmdbSnapshotSource } from './snapshot-source.ts'

/** KEY_BYTES_MAX is the longest key LMDB takes with its default 4 KiB pages (lmdb-js builds
 * LMDB with a 1978-byte key limit). oncekv keys are at most 1024 bytes. */
export const KEY_BYTES_MAX = 1978

/** FORMAT_VERSION is the layout version written in every store's 'format' record. Version
 * 3 adds the write-ahead file (wal.log); version 4 the value file (values.dat), with the
 * 'keys' database of references in place of 'kv'; version 5 the recycled write-ahead file
 * (a file header, checksums from its salt: wal.ts), which an older oncekv would take for a
 * damaged one; version 6 log records that leave an applied put's value in the value file
 * (log-record.ts), which an older oncekv would take for damaged ones. Version 2 to 5 stores
 * are upgraded in place on open (a version 4 store's write-ahead file gets its header once a
 * checkpoint covers it; a version 5 store needs nothing but the new version recorded). */
export const FORMAT_VERSION = 6

/** VALUES_FILE is the value file's name in the store's directory (value-file.ts). */
export const VALUES_FILE = 'values.dat'

// How many values one transaction of the upgrade from version 2 or 3 moves.
const UPGRADE_BATCH = 10_000

/** WAL_FILE is the write-ahead file's name in the store's directory (wal.ts). */
export const WAL_FILE = 'wal.log'

/** CHECKPOINT_MS is how long Readies may go to the write-ahead file before one folds them
 * into LMDB (a checkpoint); CHECKPOINT_BYTES how much they may write there, and how much
 * applied data may wait in memory, before one does. */
export const CHECKPOINT_MS = 100
export const CHECKPOINT_BYTES = 16 * 1024 * 1024

/** VERIFY_TAIL_ENTRIES is how many of the newest log entries open() checks: each record's
 * CRC, index and term (not the value a record refers to, which entries() checks). */
export const VERIFY_TAIL_ENTRIES = 1000

/** MIN_FREE_BYTES_DEFAULT is the free space a store keeps on its file system by default:
 * writes that would leave less are refused (DiskUnavailableError). */
export const MIN_FREE_BYTES_DEFAULT = 64 * 1024 * 1024

// What the space check assumes one transaction writes besides its payload (B-tree pages
// copied on write, the meta page), and how much it allows per byte of payload (a log entry
// and the value it applies are both written; LMDB rounds values up to pages).
const TXN_OVERHEAD_BYTES = 64 * 1024
const PAYLOAD_FACTOR = 2
// What the space check allows per log key deleted in one transaction (leaf pages copied).
const DELETE_BYTES_PER_KEY = 128

// How many log keys one transaction deletes when compacting or dropping a log. Small: with
// 10,000 a member writing 150,000 keys of 100 B at C=64 died in 4 of 14 runs of an error
// inside lmdb-js 3.5.6's free-list save ("MDB_BAD_TXN: … reserved freelist had a data entry
// with zero-size"; lmdb-js issue #321 reports the like with large delete batches); with 1,000
// in none of 13 (and no slower).
const DELETE_BATCH = 1_000
// How many leftover log keys (below the snapshot) a Ready's transaction deletes besides its
// own writes, at least: compacting 10,000 entries at once in sync transactions stalled every
// member's event loop for ~90 ms at the same moment; spread over the Readies that follow, the
// deletes commit on lmdb-js's thread. Twice the Ready's entries if more, so that the
// leftovers never grow under load; at most DELETE_BATCH.
const TRIM_PER_WRITE = 256
// Bound on the in-memory cache of recent terms (entries, not bytes: 8 bytes each).
const TERM_CACHE_MAX = 4096

// LMDB error codes (lmdb.h) that mean the file itself is damaged.
const LMDB_CORRUPTION_CODES = new Set([
  -30797, // MDB_PAGE_NOTFOUND
  -30796, // MDB_CORRUPTED
  -30795, // MDB_PANIC
  -30794, // MDB_VERSION_MISMATCH
  -30793, // MDB_INVALID
  -30784, // MDB_INCOMPATIBLE
  -30779, // MDB_PROBLEM
  -30778, // MDB_BAD_CHECKSUM
])

type MetaKey =
  | 'format'
  | 'hardState'
  | 'snapshot'
  | 'applied'
  | 'conf'
  | 'members'
  | 'identity'
  | 'walSeq'
  | 'valuesEnd'

/**
 * MAP_SIZE_DEFAULT is the size of LMDB's memory map: address space only (the file grows with
 * the data, and no page is read or kept before LMDB touches it), sized so that the map never
 * has to grow. lmdb-js otherwise starts with a 128 KiB map and doubles it as the file grows,
 * keeping every earlier map of the file's start: a member with 500,000 keys held 10 maps of
 * its 110 MiB file, and the resident set counted its pages once per map (252 MiB for it).
 * Under a limit on the address space (`ulimit -v`), such a map fails (lmdb-js 3.5 then
 * crashes the process), so there the store leaves the map to lmdb-js (defaultMapSize).
 */
export const MAP_SIZE_DEFAULT = 256 * 2 ** 30

/** defaultMapSize is MAP_SIZE_DEFAULT, or undefined (lmdb-js's growing map) when the process's
 * address space is limited (Linux: /proc/self/limits). */
export function defaultMapSize(): number | undefined {
  let limits: string
  try {
    limits = readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return MAP_SIZE_DEFAULT // not Linux
  }
  const soft = /^Max address space\s+(\S+)/m.exec(limits)?.[1]
  return soft === undefined || soft === 'unlimited' ? MAP_SIZE_DEFAULT : undefined
}

/** LmdbStoreOptions tunes LmdbStore.open. */
export interface LmdbStoreOptions {
  /** mapSizeBytes is the size of LMDB's memory map (defaultMapSize()); lmdb-js grows it if
   * the data outgrows it. */
  readonly mapSizeBytes?: number
  /** minFreeBytes is the free space to keep on the file system (MIN_FREE_BYTES_DEFAULT). */
  readonly minFreeBytes?: number
  /** wal: writeReadyAsync appends to the write-ahead file (one flush) and checkpoints into
   * LMDB now and then (default true); false commits every Ready to LMDB. A store opened
   * either way reads what the other wrote. */
  readonly wal?: boolean
  /** checkpointMs is CHECKPOINT_MS for this store (tests set it). */
  readonly checkpointMs?: number
}

/** ReadyWrite is what the host persists from one Ready (see raft.ts, step 1). */
export interface ReadyWrite {
  readonly hardState?: HardState | undefined
  readonly entries: readonly Entry[]
  /** snapshot is a snapshot received from the leader, whose data installSnapshot wrote. */
  readonly snapshot?: SnapshotMeta | undefined
  /** applyBytes is the size of the data the apply callback writes (for the space check). */
  readonly applyBytes?: number
}

// AsyncOp is one write writeReadyAsync queues: a put, or a remove (value undefined).
interface AsyncOp {
  readonly db: Database<Uint8Array, string | number | Uint8Array>
  readonly key: string | number | Uint8Array
  readonly value: Uint8Array | undefined
}

// commitCause is the error behind a failed asynchronous commit: lmdb-js rejects the writes
// with a generic error whose commitError (a promise, rejected too) holds the cause with its
// errno. Awaiting it here also keeps that rejection from going unhandled.
async function commitCause(err: unknown): Promise<unknown> {
  const pending = (err as { commitError?: Promise<unknown> } | undefined)?.commitError
  if (pending === undefined || typeof pending.then !== 'function') return err
  return pending.then(
    () => err,
    (cause: unknown) => cause,
  )
}

// ReadyPlan is what writing one Ready changes (planReady).
interface ReadyPlan {
  readonly snapshot: SnapshotMeta | undefined
  readonly base: SnapshotMeta
  readonly newLast: number
  readonly hard: HardState | undefined
  /** compaction is the compaction (compactLater) this transaction writes, if any. */
  readonly compaction: SnapshotMeta | undefined
  /** trimTo: this transaction deletes the leftover log keys in [trimFrom, trimTo). */
  readonly trimTo: number
  /** entryBytes is the size of the Ready's entries' data. */
  readonly entryBytes: number
}

// TailRefs: for the log entries whose values a transaction puts in the value file, the value
// (the tail of the entry's data) and where it goes.
type TailRefs = Map<number, { readonly value: Uint8Array; readonly offset: number }>

/** PutOutcome is what putIfAbsent did: stored the value, found the same bytes, or found
 * other bytes (and left them). A write-once store never overwrites. */
export type PutOutcome = 'created' | 'exists' | 'conflict'

/** ApplyTxn is the state machine's view of one apply transaction: everything done through it
 * commits together, or not at all. It is valid only inside the apply() callback. */
export interface ApplyTxn {
  /** putIfAbsent stores value under key unless the key is taken, and says which happened.
   * With logIndex, value is the tail of the data of log entry logIndex, the entry being
   * applied: once the value is in the value file, LMDB's copy of that entry's log record
   * may refer to it there instead of holding its bytes twice (log-record.ts). */
  putIfAbsent(key: Uint8Array, value: Uint8Array, logIndex?: number): PutOutcome
  /** setApplied records the index of the last entry this transaction applies. */
  setApplied(index: number): void
  /** setConf records the configuration as of the applied index. */
  setConf(conf: ConfState): void
  /** setMembers records the member address book. */
  setMembers(members: Members): void
}

/** LmdbStore is a member's durable state in one LMDB environment; see the module comment. */
export class LmdbStore implements LogStorage {
  private readonly dir: string
  private readonly root: RootDatabase
  private readonly minFreeBytes: number
  // Log: index -> record (log-record.ts). Keys below snap.index + 1 linger after a compaction
  // until later write transactions delete them (trimFrom), or after a crash until the next
  // open: reads ignore them.
  private readonly logDb: Database<Uint8Array, number>
  // Meta: MetaKey -> record (meta-record.ts).
  private readonly metaDb: Database<Uint8Array, string>
  // Key/value data: the user's key bytes -> a reference to the value (value-record.ts), each
  // written once; the value file holds the values too big to keep in the reference.
  private readonly keysDb: Database<Uint8Array, Uint8Array>
  // Version 2-3 data (key -> value record), moved into keysDb and the value file on open.
  private readonly legacyKvDb: Database<Uint8Array, Uint8Array>
  // Set by load() (open() fails otherwise).
  private values!: ValueFile

  // In-memory copies of what is committed; each changes only after its transaction commits
  // (applied, conf and memberBook also after applyInMemory: see the pending fields).
  private snap: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF }
  // Invariant: last >= snap.index, and the log holds every index in (snap.index, last].
  private last = 0
  private hard: HardState = EMPTY_HARD_STATE
  // Invariant: snap.index <= applied <= last.
  private applied = 0
  private conf: ConfState = EMPTY_CONF
  private memberBook: Members = {}
  // What applyInMemory applied and no transaction has written yet: the values it created
  // (by their key's bytes as a latin1 string), the applied index, configuration and address
  // book, and the newest hard state the host noted (noteHardState: only its commit index is
  // news). The next write transaction (writeReady, compact, flushApplied) writes all of it.
  // Invariant: every pending key is absent from keysDb's committed data or holds the same bytes.
  private readonly pendingKv = new Map<
    string,
    { key: Uint8Array; value: Uint8Array; logIndex: number | undefined }
  >()
  private pendingBytes = 0
  private pendingApplied: number | undefined
  private pendingConf: ConfState | undefined
  private pendingMembers: Members | undefined
  private pendingHard: HardState | undefined
  // The applied index and configuration the data file holds (applied and conf run ahead of
  // them while anything is pending). Invariant: snap.index <= durableApplied <= applied.
  private durableApplied = 0
  private durableConf: ConfState = EMPTY_CONF
  // The applied index before applyInMemory applied entries of a Ready not written yet: that
  // Ready's entries may replace entries above it, never below (writeReady checks).
  private appliedBeforeWrite: number | undefined
  // Set while writeReadyAsync gathers its writes: putRecord collects them here instead.
  private asyncOps: AsyncOp[] | undefined
  // The asynchronous Ready write in progress, if any: every synchronous writer waits for it
  // (or asserts there is none), so that no transactionSync ever meets a queued batch (it
  // would split it) and no later write is overtaken by it.
  private inflight: Promise<void> | undefined
  // Terms of the newest entries: recentTerms[i] is the term of entry recentFrom + i.
  // Invariant: recentFrom > snap.index; if non-empty, recentFrom + recentTerms.length - 1 ===
  // last; recentTerms.length <= TERM_CACHE_MAX + TERM_CACHE_MAX / 4.
  private recentTerms: number[] = []
  private recentFrom = 1
  // A compaction compactLater recorded: its snapshot metadata goes with the next write
  // transaction (with the data it covers). Invariant: if set, snap.index < pendingSnap.index
  // <= applied.
  private pendingSnap: SnapshotMeta | undefined
  // Log keys in [trimFrom, snap.index] may remain after a compaction: the write transactions
  // that follow delete them, a batch each (see TRIM_PER_WRITE). No key below trimFrom remains.
  private trimFrom = 0
  // Snapshot sources still holding a read transaction; close() ends them.
  private readonly sources = new Set<LmdbSnapshotSource>()
  // The write-ahead file (wal.ts), if writeReadyAsync uses one. walSeq is the sequence
  // number of the last record appended, checkpointSeq the last one LMDB covers (its
  // 'walSeq' record); between them, walTail holds the log records of the entries appended
  // since, by index (LMDB holds the rest), and lmdbLast is the last index LMDB's log holds.
  // Invariant: walTail is empty or holds every index from its smallest to last.
  private wal: Wal | undefined
  private walSeq = 0
  private checkpointSeq = 0
  private readonly walTail = new Map<number, Uint8Array>()
  private lmdbLast = 0
  private walTailBytes = 0
  private lastCheckpointAt = performance.now()
  private checkpointMs = CHECKPOINT_MS
  private closed = false
  // The error that made the store fail-stop, if any.
  private failure: unknown = undefined

  private constructor(dir: string, root: RootDatabase, minFreeBytes: number) {
    this.dir = dir
    this.root = root
    this.minFreeBytes = minFreeBytes
    this.logDb = root.openDB<Uint8Array, number>('log', { encoding: 'binary' })
    this.metaDb = root.openDB<Uint8Array, string>('meta', { encoding: 'binary' })
    this.keysDb = root.openDB<Uint8Array, Uint8Array>('keys', {
      keyEncoding: 'binary',
      encoding: 'binary',
    })
    this.legacyKvDb = root.openDB<Uint8Array, Uint8Array>('kv', {
      keyEncoding: 'binary',
      encoding: 'binary',
    })
  }

  /**
   * open opens (creating if needed) the store in dir and checks it: the data file's header,
   * every metadata record, that the log is contiguous from the snapshot on, and the CRC of
   * the newest VERIFY_TAIL_ENTRIES entries. It throws StoreCorruptError if any check fails,
   * and DiskUnavailableError if the directory cannot be written (read-only, not writable).
   */
  static open(dir: string, opts: LmdbStoreOptions = {}): LmdbStore {
    checkWritable(dir)
    mkdirSync(dir, { recursive: true })
    const minFreeBytes = opts.minFreeBytes ?? MIN_FREE_BYTES_DEFAULT
    // LMDB creates its files through a memory map: on a full disk a new one would kill the
    // process (SIGBUS). Files that exist already hold their pages.
    if (!existsSync(join(dir, 'data.mdb')) || !existsSync(join(dir, 'lock.mdb'))) {
      const problem = spaceShortfall(dir, TXN_OVERHEAD_BYTES, minFreeBytes)
      if (problem !== undefined) throw new DiskUnavailableError(dir, 'full', problem)
    }
    const problem = checkLmdbDataFile(join(dir, 'data.mdb'))
    if (problem !== undefined) throw new StoreCorruptError(dir, problem)
    let root: RootDatabase
    const mapSize = opts.mapSizeBytes ?? defaultMapSize()
    try {
      root = open(dir, {
        noSubdir: false, // a directory, even when its name has a dot in it
        maxDbs: 8,
        ...(mapSize === undefined ? {} : { mapSize }),
      })
    } catch (err) {
      throw wrapLmdbError(dir, err, 'LMDB cannot open the data file')
    }
    let store: LmdbStore | undefined
    let wal: Wal | undefined
    try {
      store = new LmdbStore(dir, root, minFreeBytes)
      store.checkpointMs = opts.checkpointMs ?? CHECKPOINT_MS
      let records: WalRecord[] = []
      let created = false
      if (opts.wal !== false || existsSync(join(dir, WAL_FILE))) {
        // The last record a checkpoint covers (read first: an unreadable record is named as
        // LMDB's, not the file's).
        const covered = store.readMeta('walSeq', parseIndex) ?? 0
        try {
          const opened = Wal.open(join(dir, WAL_FILE), covered)
          wal = opened.wal
          records = opened.records
          created = opened.created
        } catch (err) {
          const errno = diskErrno(err)
          if (errno !== undefined) throw err
          throw new StoreCorruptError(dir, (err as Error).message)
        }
      }
      store.load(wal, records, created || wal === undefined)
      if (opts.wal === false && wal !== undefined) {
        // Everything in it is in LMDB now (load checkpointed): the file is not used.
        wal.close()
        store.wal = undefined
      }
      return store
    } catch (err) {
      // The store is abandoned; the open error is what the caller needs. Closing releases
      // the environment so the directory can be reopened or removed in this process.
      wal?.close()
      store?.closeValueFile()
      root.close().catch(() => undefined)
      throw wrapLmdbError(dir, err, 'LMDB failed while the store was being checked')
    }
  }

  // openValueFile opens the value file as the data file describes it (see ValueFile.open);
  // load() calls it once the layout version is known to be one this store reads.
  private openValueFile(): void {
    try {
      this.values = ValueFile.open(
        join(this.dir, VALUES_FILE),
        this.readMeta('valuesEnd', parseIndex) ?? 0,
      )
    } catch (err) {
      if (diskErrno(err) !== undefined) throw err
      throw this.corrupt((err as Error).message)
    }
  }

  // closeValueFile closes the value file if open() got as far as opening it.
  private closeValueFile(): void {
    ;(this.values as ValueFile | undefined)?.close()
  }

  // ------------------------------------------------------------------ LogStorage

  /** firstIndex is the index of the first entry held: snapshot().index + 1. */
  firstIndex(): number {
    return this.snap.index + 1
  }

  /** lastIndex is the index of the last stable entry, or snapshot().index if none. */
  lastIndex(): number {
    return this.last
  }

  /** term is the term of the entry at index (snapshot().term at the snapshot's index),
   * undefined below the snapshot or past lastIndex. */
  term(index: number): number | undefined {
    if (index === this.snap.index) return this.snap.term
    if (index < this.snap.index || index > this.last) return undefined
    const cached = this.recentTerms[index - this.recentFrom]
    if (cached !== undefined) return cached
    this.checkUsable()
    const bytes = this.readLog(index)
    if (bytes === undefined) throw this.corrupt(`log entry ${index} is missing`)
    const term = decodeLogRecordTerm(bytes, index)
    if (!term.ok) throw this.corrupt(term.problem)
    return term.value
  }

  /** entries returns entries in [lo, hi): at least one when lo < hi, then no more than
   * maxBytes in all (entryBytes). Each entry's data is a fresh copy. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.last + 1,
      () => `entries [${lo}, ${hi}) out of bounds [${this.firstIndex()}, ${this.last + 1})`,
    )
    this.checkUsable()
    const out: Entry[] = []
    let bytes = 0
    for (let i = lo; i < hi; i++) {
      const record = this.readLog(i)
      if (record === undefined) throw this.corrupt(`log entry ${i} is missing`)
      const e = decodeLogRecord(record, i, this.readTail)
      if (!e.ok) throw this.corrupt(e.problem)
      bytes += entryBytes(e.value)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e.value)
    }
    return out
  }

  /** snapshot is the metadata of the latest snapshot (bootstrap, compaction or received). */
  snapshot(): SnapshotMeta {
    return this.snap
  }

  // ------------------------------------------------------------------ restart state

  /** initialState is what the member restarts from: hard state, applied index, conf. */
  initialState(): InitialState {
    return { hardState: this.hard, applied: this.applied, conf: this.conf }
  }

  /** members is a copy of the member address book. */
  members(): Record<string, { http: string; raft: string }> {
    return plainMembers(this.memberBook)
  }

  /** isBootstrapped tells whether the store holds Raft state to restart from: bootstrap()
   * ran, or a snapshot from a leader was installed. A fresh store (a member waiting to be
   * added) is not bootstrapped. */
  isBootstrapped(): boolean {
    return this.snap.index > 0
  }

  /** identity is the member id and join list recorded in the directory, if any. */
  identity(): Identity | undefined {
    return this.readMeta('identity', parseIdentity)
  }

  /** setIdentity records who this directory belongs to (see Identity), durably. */
  setIdentity(identity: Identity): void {
    this.write(() => this.putMeta('identity', { id: identity.id, joinVia: [...identity.joinVia] }))
  }

  /**
   * bootstrap starts a new cluster's first member from meta (see bootstrapSnapshot): in one
   * transaction it writes the snapshot metadata, the hard state {term: meta.term, vote: none,
   * commit: meta.index}, the applied index meta.index, the configuration and the members.
   */
  bootstrap(meta: SnapshotMeta, members: Members): void {
    assert(!this.isBootstrapped(), () => `bootstrap: ${this.dir} is already bootstrapped`)
    assert(this.last === 0 && meta.index > 0, 'bootstrap: needs an empty log and index > 0')
    assert(this.walSeq === this.checkpointSeq, 'bootstrap: the write-ahead file holds records')
    const snap = plainSnapshotMeta(meta)
    const hard: HardState = { term: meta.term, vote: NONE, commit: meta.index }
    const book = plainMembers(members)
    this.write(() => {
      this.putMeta('snapshot', snap)
      this.putMeta('hardState', hard)
      this.putMeta('applied', snap.index)
      this.putMeta('conf', snap.conf)
      this.putMeta('members', book)
    })
    this.snap = snap
    this.last = snap.index
    this.hard = hard
    this.applied = snap.index
    this.conf = snap.conf
    this.memberBook = book
    this.pendingWritten()
    this.recentTerms = []
    this.recentFrom = snap.index + 1
    this.trimFrom = snap.index + 1
  }

  // ------------------------------------------------------------------ Ready

  /**
   * writeReady persists one Ready's hard state, received snapshot and entries in one
   * transaction (then call sync before sending). A snapshot drops the whole log and sets the
   * applied index and configuration to the snapshot's (installSnapshot wrote its data
   * before). Entries replace any stable suffix from entries[0].index on, and entries past the
   * new last index are deleted. Log entries below a snapshot are deleted afterwards in
   * batches; a crash in between leaves entries that open() ignores and deletes. applyFn, if
   * given, applies the Ready's committed entries in the same transaction (as apply() does).
   */
  writeReady(rd: ReadyWrite, applyFn?: (txn: ApplyTxn) => void): void {
    const plan = this.planReady(rd)
    const scope = applyFn ? this.applyScope(plan.newLast) : undefined
    if (scope && plan.snapshot !== undefined) {
      // Applying after a received snapshot starts from the snapshot's index.
      this.applied = Math.max(this.applied, plan.snapshot.index)
    }
    this.write(() => {
      this.readyWrites(rd, plan)
      // The Ready's committed entries are applied in the same transaction: they become
      // durable together with the entries and hard state, at one fsync.
      if (scope) {
        try {
          applyFn?.(scope.txn)
        } finally {
          scope.end()
        }
      }
    }, null)
    this.readyWritten(rd, plan, scope)
  }

  /**
   * writeReadyAsync is writeReady (without applying): as a rule one record of the write-ahead
   * file, else (a checkpoint) a transaction LMDB commits and syncs
   * on its own thread (lmdb-js batches the writes of one event turn into one transaction):
   * the event loop stays free meanwhile, to take requests and messages. It resolves once
   * the Ready is durable. The caller must not start another write before it resolves. A
   * refusal for want of space (DiskUnavailableError) comes before anything is written.
   */
  async writeReadyAsync(rd: ReadyWrite): Promise<void> {
    assert(this.inflight === undefined, 'writeReadyAsync while another is in flight')
    const plan = this.planReady(rd)
    if (this.wal !== undefined && plan.snapshot === undefined && !this.checkpointDue(plan)) {
      await this.appendReady(this.wal, rd, plan)
      return
    }
    // Everything is encoded and checked first; only then queued, in one event turn, where
    // nothing is left to throw: lmdb-js cannot take back what was queued, and a Ready must
    // land whole or not at all. The values it refers to are made durable before that, off
    // the event loop too (nothing else writes meanwhile: see inflight).
    const ops: AsyncOp[] = []
    this.asyncOps = ops
    try {
      this.readyWrites(rd, plan)
      if (this.values.hasStaged) this.putMeta('valuesEnd', this.values.stagedEnd)
    } catch (err) {
      this.values.discard()
      throw err
    } finally {
      this.asyncOps = undefined
    }
    await this.exclusively(async () => {
      try {
        await this.values.flushAsync()
      } catch (err) {
        this.values.discard()
        throw this.failed(err)
      }
      const queued: Promise<boolean>[] = []
      try {
        for (const op of ops)
          queued.push(op.value === undefined ? op.db.remove(op.key) : op.db.put(op.key, op.value))
      } catch (err) {
        // Part of the Ready may commit: the file can no longer be trusted to match memory.
        throw this.failed(err)
      }
      try {
        await Promise.all(queued)
        await this.root.flushed
      } catch (err) {
        throw this.failed(await commitCause(err))
      }
    })
    this.readyWritten(rd, plan, undefined)
  }

  // exclusively runs an asynchronous Ready write as the one in flight (see inflight): those
  // waiting for it resume after the caller's next synchronous steps (same turn).
  private async exclusively(write: () => Promise<void>): Promise<void> {
    let release = (): void => {}
    this.inflight = new Promise<void>((resolve) => (release = resolve))
    try {
      await write()
    } finally {
      this.inflight = undefined
      release()
    }
  }

  // checkpointBytes is what the next LMDB write transaction carries besides its own writes:
  // the applied data in memory and the log records the write-ahead file took.
  private checkpointBytes(): number {
    return this.pendingBytes + this.walTailBytes
  }

  // checkpointDue tells whether a Ready goes to LMDB, with everything the write-ahead file and
  // memory hold, rather than to the file: a compaction waits, the file, the applied data in
  // memory or the Ready itself has reached CHECKPOINT_BYTES, or CHECKPOINT_MS have passed.
  // (Readies of 128 KiB of entries or more went to LMDB at once until layout version 6: their
  // records were written twice otherwise, to the file and then whole into LMDB. Now LMDB
  // keeps an applied put's record as a reference to its value, and a record it takes before
  // its entry is applied stays whole: a 4 KiB value's in two overflow pages, which compaction
  // reads back into the member's resident memory. bench/NOTES.md, "Log records refer to
  // their values".)
  private checkpointDue(plan: ReadyPlan): boolean {
    return (
      plan.entryBytes >= CHECKPOINT_BYTES ||
      this.pendingSnap !== undefined ||
      (this.wal?.bytes ?? 0) >= CHECKPOINT_BYTES ||
      this.pendingBytes >= CHECKPOINT_BYTES ||
      performance.now() - this.lastCheckpointAt >= this.checkpointMs
    )
  }

  // appendReady writes rd as one record of the write-ahead file (one flush); applied
  // data, a commit-only hard state and log keys to trim wait for the next checkpoint.
  private async appendReady(wal: Wal, rd: ReadyWrite, plan: ReadyPlan): Promise<void> {
    const records = rd.entries.map(encodeLogRecord)
    const rec = { seq: this.walSeq + 1, hardState: plan.hard, entries: records }
    await this.exclusively(async () => {
      try {
        // A checkpoint committed with transactionSync is durable on return (module
        // comment); this append writes over the records it covers only once lmdb-js says so
        // too.
        await this.root.flushed
        await wal.append(rec)
      } catch (err) {
        throw this.failed(err)
      }
    })
    this.walSeq++
    this.appliedBeforeWrite = undefined
    this.tailAppended(rd.entries, records, plan.hard)
  }

  // tailAppended updates the in-memory copies once a record of the write-ahead file holding
  // entries (with their log records) and hard (if any) is durable, or read back on open.
  private tailAppended(
    entries: readonly { readonly index: number; readonly term: number }[],
    records: readonly Uint8Array[],
    hard: HardState | undefined,
  ): void {
    if (hard !== undefined) {
      this.hard = hard
      this.pendingHard = undefined
    }
    const first = entries[0]
    if (first === undefined) return
    // A replaced suffix leaves the tail (an index past the new last is never read).
    for (let i = first.index; i <= this.last; i++) {
      this.walTailBytes -= this.walTail.get(i)?.byteLength ?? 0
      this.walTail.delete(i)
    }
    entries.forEach((e, i) => {
      const record = records[i] as Uint8Array
      this.walTail.set(e.index, record)
      this.walTailBytes += record.byteLength
    })
    this.last = first.index + entries.length - 1
    this.rememberTerms(entries)
  }

  // planReady checks rd against the log (see writeReady) and the free space, and works out
  // what writing it changes.
  private planReady(rd: ReadyWrite): ReadyPlan {
    this.checkUsable()
    const snapshot = rd.snapshot === undefined ? undefined : plainSnapshotMeta(rd.snapshot)
    const base = snapshot ?? this.snap
    const lastBefore = snapshot === undefined ? this.last : snapshot.index
    if (snapshot !== undefined) {
      assert(
        snapshot.index > this.snap.index && snapshot.index >= this.applied,
        () =>
          `writeReady: snapshot ${snapshot.index} is not past snapshot ${this.snap.index} ` +
          `and applied ${this.applied}`,
      )
    }
    const first = rd.entries[0]
    if (first !== undefined) {
      assert(first.index > base.index, () => `writeReady: entry ${first.index} is compacted`)
      // Raft never replaces a committed entry, and applied <= commit. (The entries of this
      // Ready may be applied already: applyInMemory runs before their Ready is written.)
      const applied =
        snapshot === undefined ? (this.appliedBeforeWrite ?? this.applied) : snapshot.index
      assert(
        first.index > applied,
        () => `writeReady: entry ${first.index} would replace applied entries (to ${applied})`,
      )
      assert(
        first.index <= lastBefore + 1,
        () => `writeReady: entry ${first.index} leaves a gap after ${lastBefore}`,
      )
      rd.entries.forEach((e, i) =>
        assert(e.index === first.index + i, 'writeReady: entries are not contiguous'),
      )
    }
    const newLast = rd.entries.at(-1)?.index ?? lastBefore
    const hard = rd.hardState === undefined ? undefined : plainHardState(rd.hardState)
    // A received snapshot supersedes a recorded compaction (it is past the applied index),
    // and its transaction leaves the log below it to deleteLogBelow.
    const compaction = snapshot === undefined ? this.pendingSnap : undefined
    // Only keys below the snapshot in memory now: lmdb-js ends its read snapshot once the
    // commit is done, before the sync and readyWritten, and meanwhile the core may still read
    // the entries this transaction's compaction covers (term(), entries() for a follower far
    // behind). Those go with the transactions after it.
    const trimEnd = snapshot === undefined ? this.snap.index + 1 : this.trimFrom
    // A checkpoint carries the entries the write-ahead file took since the last one too.
    const written = rd.entries.length + this.walTail.size
    const trimCount = Math.min(DELETE_BATCH, Math.max(TRIM_PER_WRITE, 2 * written))
    const trimTo = Math.max(this.trimFrom, Math.min(trimEnd, this.trimFrom + trimCount))
    let entryBytes = 0
    for (const e of rd.entries) entryBytes += e.data.byteLength
    const payload = (rd.applyBytes ?? 0) + this.checkpointBytes() + entryBytes
    // Refused for want of space before anything changes, so the caller may retry rd as is.
    this.checkSpace(PAYLOAD_FACTOR * payload + (trimTo - this.trimFrom) * DELETE_BYTES_PER_KEY)
    return { snapshot, base, newLast, hard, compaction, trimTo, entryBytes }
  }

  // readyWrites makes rd's writes (inside a transaction, or queued with asyncOps).
  private readyWrites(rd: ReadyWrite, plan: ReadyPlan): void {
    const { snapshot, base, newLast, hard, compaction, trimTo } = plan
    // What was applied in memory first: a snapshot's metadata below supersedes its
    // applied index and configuration. A recorded compaction's metadata goes with the data
    // it covers (all applied, so written by now or in writePending).
    const tails = this.writePending(hard)
    if (compaction !== undefined) this.putMeta('snapshot', compaction)
    if (snapshot !== undefined) {
      this.putMeta('snapshot', snapshot)
      this.putMeta('applied', snapshot.index)
      this.putMeta('conf', snapshot.conf)
    }
    for (const e of rd.entries) this.putLog(e.index, encodeLogRecord(e), tails)
    // Entries past the new last index: the old suffix, or, with a snapshot, every entry
    // above it. Entries at or below a snapshot's index go after the commit, in batches.
    for (let i = Math.max(newLast, base.index) + 1; i <= this.last; i++) this.removeLog(i)
    // A batch of the keys a compaction left below the snapshot.
    for (let i = this.trimFrom; i < trimTo; i++) this.removeLog(i)
  }

  // removeLog removes one log key: at once inside a transaction, or collected in asyncOps.
  private removeLog(index: number): void {
    if (this.asyncOps) this.asyncOps.push({ db: this.logDb, key: index, value: undefined })
    else this.logDb.removeSync(index)
  }

  // readyWritten updates the in-memory copies once rd's writes committed.
  private readyWritten(
    rd: ReadyWrite,
    plan: ReadyPlan,
    scope: { commit(): void } | undefined,
  ): void {
    const { snapshot, newLast, hard, compaction, trimTo } = plan
    if (compaction !== undefined) this.compacted(compaction)
    this.trimFrom = trimTo
    if (snapshot !== undefined) {
      this.pendingSnap = undefined // at or below the applied index, so below snapshot
      this.snap = snapshot
      this.applied = snapshot.index
      this.conf = snapshot.conf
      this.recentTerms = []
      this.recentFrom = snapshot.index + 1
    }
    scope?.commit()
    this.pendingWritten(hard, newLast)
    this.appliedBeforeWrite = undefined
    this.last = newLast
    if (rd.entries.length > 0) this.rememberTerms(rd.entries)
    // rd is durable now: entries left below the snapshot for want of space are ignored by
    // reads and deleted by later write transactions, trimLog or open().
    if (snapshot !== undefined) this.deleteLogBelowIfSpace(snapshot.index + 1)
  }

  // putRecord puts one record: at once inside a transaction, or collected in asyncOps.
  private putRecord<K extends string | number | Uint8Array>(
    db: Database<Uint8Array, K>,
    key: K,
    value: Uint8Array,
  ): void {
    if (this.asyncOps) this.asyncOps.push({ db: db as AsyncOp['db'], key, value })
    else db.putSync(key, value)
  }

  /** sync resolves once everything written so far is durable. The Replica awaits it after
   * writeReady and before sending messages. */
  async sync(): Promise<void> {
    this.checkUsable()
    try {
      await this.root.flushed
    } catch (err) {
      throw this.failed(err)
    }
  }

  // ------------------------------------------------------------------ applying

  /**
   * apply runs fn inside one transaction and commits everything fn did through its ApplyTxn:
   * the data, the applied index that covers it, and any configuration or address book.
   * If fn throws, nothing is written and the store fails stop.
   */
  apply(fn: (txn: ApplyTxn) => void): void {
    this.checkUsable()
    const scope = this.applyScope(this.last)
    try {
      this.write(() => {
        this.writePending(undefined)
        fn(scope.txn)
      }, PAYLOAD_FACTOR * this.checkpointBytes())
    } finally {
      scope.end()
    }
    scope.commit()
    this.pendingWritten()
  }

  /**
   * applyInMemory runs fn as apply() does, but writes nothing: what fn does is visible at
   * once (get, has, count, the applied index and configuration) and is written by the next
   * write transaction (writeReady, compact, flushApplied). The host calls it only for
   * committed entries, which are durable in a majority's logs: a crash before the write
   * loses nothing, as the member applies them again from its log on restart. The host must
   * not write the pending state (flushApplied) before the log entries it covers (writeReady
   * does both in one transaction). unwritten is the range of the entries of the Ready about
   * to be written, if any: the core may hand out committed entries of that Ready.
   */
  applyInMemory(fn: (txn: ApplyTxn) => void, unwritten?: { first: number; last: number }): void {
    this.checkUsable()
    if (unwritten !== undefined) this.appliedBeforeWrite ??= this.applied
    const scope = this.applyScope(unwritten === undefined ? this.last : unwritten.last, true)
    try {
      fn(scope.txn)
    } finally {
      scope.end()
    }
    scope.commit()
  }

  /** noteHardState records a hard state whose term and vote are already durable (only its
   * commit index is new): it is written with the next write transaction. */
  noteHardState(hs: HardState): void {
    const hard = plainHardState(hs)
    assert(
      hard.term === this.hard.term && hard.vote === this.hard.vote,
      () => `noteHardState: term ${hard.term} vote ${hard.vote} are not durable yet`,
    )
    this.pendingHard = hard
  }

  /** hasPending tells whether applyInMemory, noteHardState or compactLater left anything
   * to write, or the write-ahead file holds what LMDB does not. */
  hasPending(): boolean {
    return (
      this.walSeq > this.checkpointSeq ||
      this.pendingSnap !== undefined ||
      this.pendingApplied !== undefined ||
      this.pendingHard !== undefined ||
      this.pendingConf !== undefined ||
      this.pendingMembers !== undefined ||
      this.pendingKv.size > 0
    )
  }

  /** flushApplied writes what applyInMemory and noteHardState left, in one transaction. It
   * throws DiskUnavailableError, changing nothing, when the disk has no room for it. */
  flushApplied(): void {
    this.checkUsable()
    if (!this.hasPending()) return
    const compaction = this.pendingSnap
    this.write(() => {
      this.writePending(undefined)
      if (compaction !== undefined) this.putMeta('snapshot', compaction)
    }, PAYLOAD_FACTOR * this.checkpointBytes())
    this.pendingWritten()
    if (compaction !== undefined) this.compacted(compaction)
  }

  /** hasLogToTrim tells whether log keys below the snapshot remain (see trimLog). */
  hasLogToTrim(): boolean {
    return this.trimFrom <= this.snap.index
  }

  /** trimLog deletes up to DELETE_BATCH of the log keys left below the snapshot now, in one
   * transaction (the write transactions of later Readies delete them a batch each otherwise).
   * It stops quietly when the disk is too full for it. */
  trimLog(): void {
    this.checkUsable()
    if (this.hasLogToTrim()) this.deleteLogBelowIfSpace(this.snap.index + 1, 1)
  }

  // writePending writes the pending state inside a write transaction, with hard (else the
  // pending hard state) as the hard state. The commit index written is at least the applied
  // index: the core never applies past its commit index.
  // It returns where the value file takes the values of applied entries (TailRefs), for
  // their log records: only of entries the applied index it writes covers.
  private writePending(hard: HardState | undefined): TailRefs | undefined {
    let tails: TailRefs | undefined
    const applied = this.pendingApplied ?? this.durableApplied
    for (const { key, value, logIndex } of this.pendingKv.values()) {
      const ref = this.valueRef(key, value, undefined, (offset) => {
        if (logIndex !== undefined && logIndex <= applied)
          (tails ??= new Map()).set(logIndex, { value, offset })
      })
      this.putRecord(this.keysDb, key, ref)
    }
    if (this.pendingApplied !== undefined) this.putMeta('applied', this.pendingApplied)
    if (this.pendingConf !== undefined) this.putMeta('conf', this.pendingConf)
    if (this.pendingMembers !== undefined) this.putMeta('members', this.pendingMembers)
    const hs = hard ?? this.pendingHard
    if (hs !== undefined) this.putMeta('hardState', hs)
    if (this.walSeq > this.checkpointSeq) {
      // A checkpoint: what the write-ahead file holds goes into LMDB with the rest.
      for (const [index, record] of this.walTail) this.putLog(index, record, tails)
      for (let i = this.last + 1; i <= this.lmdbLast; i++) this.removeLog(i)
      this.putMeta('walSeq', this.walSeq)
      if (hs === undefined) this.putMeta('hardState', this.hard)
    }
    return tails
  }

  // putLog puts the log record of entry index, as a reference to its value when tails says
  // this transaction stores the entry's value in the value file (see log-record.ts).
  private putLog(index: number, record: Uint8Array, tails: TailRefs | undefined): void {
    const tail = tails?.get(index)
    const stored = tail === undefined ? record : tailRefRecord(record, tail.value, tail.offset)
    this.putRecord(this.logDb, index, stored ?? record)
  }

  // pendingWritten notes that a transaction that wrote the pending state (and hard, the hard
  // state it wrote, if any) committed.
  private pendingWritten(hard?: HardState, last = this.last): void {
    // Everything appended to the write-ahead file is in LMDB now (writePending wrote it).
    this.walTail.clear()
    this.walTailBytes = 0
    this.lmdbLast = last
    this.checkpointSeq = this.walSeq
    this.lastCheckpointAt = performance.now()
    this.wal?.checkpointed()
    const hs = hard ?? this.pendingHard
    if (hs !== undefined) this.hard = hs
    this.pendingKv.clear()
    this.pendingBytes = 0
    this.pendingApplied = undefined
    this.pendingConf = undefined
    this.pendingMembers = undefined
    this.pendingHard = undefined
    this.durableApplied = this.applied
    this.durableConf = this.conf
  }

  // applyScope builds the ApplyTxn of one transaction. commit() publishes what it set to the
  // in-memory copies once the transaction committed; end() makes the txn unusable.
  // With inMemory, it records into the pending state instead of writing.
  private applyScope(
    lastIndex: number,
    inMemory = false,
  ): { txn: ApplyTxn; end(): void; commit(): void } {
    let applied: number | undefined
    let conf: ConfState | undefined
    let members: Members | undefined
    let live = true
    const notLive = 'ApplyTxn used outside its apply() callback'
    const txn: ApplyTxn = {
      putIfAbsent: (key, value, logIndex) => {
        assert(live, notLive)
        return this.putIfAbsentInTxn(key, value, inMemory, logIndex)
      },
      setApplied: (index) => {
        assert(live, notLive)
        assert(
          index >= (applied ?? this.applied) && index <= lastIndex,
          () => `setApplied(${index}): applied is ${applied ?? this.applied}, last ${lastIndex}`,
        )
        if (inMemory) this.pendingApplied = index
        else this.putMeta('applied', index)
        applied = index
      },
      setConf: (c) => {
        assert(live, notLive)
        conf = plainConf(c)
        if (inMemory) this.pendingConf = conf
        else this.putMeta('conf', conf)
      },
      setMembers: (m) => {
        assert(live, notLive)
        members = plainMembers(m)
        if (inMemory) this.pendingMembers = members
        else this.putMeta('members', members)
      },
    }
    return {
      txn,
      end: () => {
        live = false
      },
      commit: () => {
        if (applied !== undefined) this.applied = applied
        if (conf !== undefined) this.conf = conf
        if (members !== undefined) this.memberBook = members
      },
    }
  }

  /** get returns a copy of the value stored under key, or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    this.checkUsable()
    const pending = this.pendingValue(key)
    return pending === undefined ? this.readValue(key, true) : copyOf(pending)
  }

  /** has tells whether a value is stored under key. */
  has(key: Uint8Array): boolean {
    this.checkUsable()
    return this.pendingValue(key) !== undefined || this.readKv(key) !== undefined
  }

  /** count is the number of keys stored, pending ones included (LMDB keeps the count of
   * those written in the database's header). */
  count(): number {
    this.checkUsable()
    return statNumber(this.keysDb.getStats(), 'entryCount') + this.pendingKv.size
  }

  /** sizeBytes is the size of the used part of the data file, (last page + 1) * page size
   * (all index, log and free pages; the file on disk may be larger), plus the value file's. */
  sizeBytes(): number {
    this.checkUsable()
    const stats = this.root.getStats()
    const lmdb = (statNumber(stats, 'lastPageNumber') + 1) * statNumber(stats, 'pageSize')
    return lmdb + this.values.end
  }

  // ------------------------------------------------------------------ compaction

  /**
   * compact records a snapshot at index (an index already applied) with conf, the
   * configuration as of index, then deletes the log up to index in batches of DELETE_BATCH
   * keys. The snapshot metadata commits first, on its own: a crash during the deletes leaves
   * entries below the snapshot, which reads ignore and the next open() deletes.
   */
  compact(index: number, conf: ConfState): void {
    this.checkUsable()
    if (index <= this.snap.index) return
    assert(index <= this.applied, () => `compact(${index}) past the applied index ${this.applied}`)
    const term = this.term(index)
    assert(term !== undefined, () => `compact(${index}): no term`)
    const snap: SnapshotMeta = { index, term, conf: plainConf(conf) }
    // The data up to index must be in the file before the log up to it goes.
    this.write(() => {
      this.writePending(undefined)
      this.putMeta('snapshot', snap)
    }, PAYLOAD_FACTOR * this.checkpointBytes())
    this.pendingWritten()
    this.compacted(snap)
    this.deleteLogBelowIfSpace(index + 1)
  }

  /**
   * compactLater is compact() without a transaction of its own, and so without stalling the
   * caller on a commit: the snapshot metadata goes with the next write transaction
   * (writeReady, writeReadyAsync, flushApplied), together with the data it covers, and the
   * log keys below it go a batch per write transaction after that (or all at once with
   * trimLog). Until then the log reads as before. A later compaction or a received snapshot
   * supersedes it.
   */
  compactLater(index: number, conf: ConfState): void {
    this.checkUsable()
    if (index <= (this.pendingSnap ?? this.snap).index) return
    assert(index <= this.applied, () => `compact(${index}) past the applied index ${this.applied}`)
    const term = this.term(index)
    assert(term !== undefined, () => `compact(${index}): no term`)
    this.pendingSnap = { index, term, conf: plainConf(conf) }
  }

  // compacted notes that a transaction wrote the snapshot metadata snap of a compaction.
  private compacted(snap: SnapshotMeta): void {
    this.snap = snap
    if (this.pendingSnap !== undefined && this.pendingSnap.index <= snap.index)
      this.pendingSnap = undefined
    if (this.recentFrom <= snap.index) {
      this.recentTerms.splice(0, snap.index + 1 - this.recentFrom)
      this.recentFrom = snap.index + 1
    }
  }

  // ------------------------------------------------------------------ snapshots

  /**
   * snapshotSource opens a consistent read view of the key/value data at the current applied
   * index, for streaming to a follower. Its meta is {applied, term at applied, conf as of
   * applied} and its extra the address book (encodeMembers). Close it when done; close()
   * of the store closes any still open.
   */
  snapshotSource(): SnapshotSource {
    this.checkUsable()
    const txn = this.root.useReadTransaction()
    try {
      // Called with no asynchronous Ready write in flight (the Replica's Ready loop is past
      // it), so the view and the in-memory copies below describe the same commit.
      // The view holds what the file holds: the data as of durableApplied (the pending state
      // is not in it).
      const index = this.durableApplied
      const term = this.term(index)
      assert(term !== undefined, () => `no term for the applied index ${index}`)
      const source = new LmdbSnapshotSource(
        this.keysDb,
        txn,
        { index, term, conf: plainConf(this.durableConf) },
        encodeMembers(this.memberBook),
        (s) => this.sources.delete(s),
        (key, record) => this.checkedValue(key, record),
      )
      this.sources.add(source)
      return source
    } catch (err) {
      txn.done()
      throw err
    }
  }

  /**
   * installSnapshot writes a snapshot's pairs into the key/value data as they arrive, one
   * transaction per chunk, then records the address book from its extra (encodeMembers)
   * and waits until all of it is durable. It does not touch the log, the applied index or
   * the configuration: writeReady does, when the core hands the snapshot back in a Ready.
   *
   * Writing straight into the live data is safe for a write-once store: whatever this member
   * applied is a subset of any newer snapshot of its cluster, with the same bytes. A key
   * holding other bytes would mean two values were committed for one key, a safety
   * violation: that throws StoreCorruptError (and the store fails stop).
   * It returns how many chunks and pairs arrived.
   */
  async installSnapshot(incoming: IncomingSnapshot): Promise<{ chunks: number; pairs: number }> {
    this.checkUsable()
    const members = decodeMembers(incoming.extra)
    let chunks = 0
    let pairs = 0
    for await (const chunk of incoming.chunks()) {
      // Not while a Ready's asynchronous write is queued or committing (see inflight).
      while (this.inflight) await this.inflight
      chunks++
      pairs += chunk.length
      let bytes = 0
      for (const { key, value } of chunk) bytes += key.byteLength + value.byteLength
      this.write(() => {
        for (const { key, value } of chunk) {
          if (this.putIfAbsentInTxn(key, value) === 'conflict') {
            throw this.corrupt(
              `snapshot ${incoming.meta.index} from ${incoming.from} holds other bytes for ` +
                `key ${hexPrefix(key)} than this store: two values committed for one key`,
            )
          }
        }
      }, PAYLOAD_FACTOR * bytes)
    }
    const book = plainMembers(members)
    while (this.inflight) await this.inflight
    this.write(() => this.putMeta('members', book))
    this.memberBook = book
    // The snapshot's address book is newer than one applied in memory before it.
    this.pendingMembers = undefined
    await this.sync()
    return { chunks, pairs }
  }

  // ------------------------------------------------------------------ lifecycle

  /** close ends open snapshot sources and closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return
    await this.inflight
    this.closed = true
    for (const s of [...this.sources]) s.close()
    this.wal?.close()
    this.values.close()
    await this.root.close()
  }

  // ------------------------------------------------------------------ internals

  private load(wal: Wal | undefined, records: readonly WalRecord[], walIsNew: boolean): void {
    const format = this.readMeta('format', parseIndex)
    const hard = this.readMeta('hardState', parseHardState)
    const snap = this.readMeta('snapshot', parseSnapshotMeta)
    const applied = this.readMeta('applied', parseIndex)
    const conf = this.readMeta('conf', parseConfState)
    const members = this.readMeta('members', parseMembers)
    if (format === undefined) {
      const empty =
        hard === undefined &&
        snap === undefined &&
        applied === undefined &&
        conf === undefined &&
        members === undefined &&
        this.logDb.getKeysCount() === 0 &&
        this.keysDb.getKeysCount() === 0 &&
        this.legacyKvDb.getKeysCount() === 0
      if (!empty) throw this.corrupt(`metadata record 'format' is missing`)
      if (records.length > 0) {
        throw this.corrupt(
          `${WAL_FILE} holds records but the data file is new: they belong to another store`,
        )
      }
      this.openValueFile()
      this.write(() => this.putMeta('format', FORMAT_VERSION))
    } else if (format >= 2 && format <= FORMAT_VERSION) {
      // Version 3 only adds the write-ahead file, which a version 2 store does not have;
      // version 4 moves the values (upgradeValues, whose first transaction writes the new
      // version, so that an older oncekv refuses a store halfway through; an upgrade cut
      // short goes on here); version 5 changes only the write-ahead file (wal.ts reads both
      // layouts) and version 6 only adds a log record type: each records the version now so
      // that an older oncekv refuses the store.
      this.openValueFile()
      if (format < 4 || this.legacyKvDb.getKeysCount() > 0) this.upgradeValues()
      if (format !== FORMAT_VERSION) this.write(() => this.putMeta('format', FORMAT_VERSION))
    } else {
      throw this.corrupt(
        format < FORMAT_VERSION
          ? `its layout is version ${format}, written by an older oncekv; this one reads ` +
              `version ${FORMAT_VERSION} only (values carry a checksum since version 2). Move ` +
              `the directory aside and start the member empty with --join (it receives the ` +
              `data from the others), or run the older oncekv`
          : `its layout is version ${format}, written by a newer oncekv; this one reads ` +
              `version ${FORMAT_VERSION}: run the newer oncekv`,
      )
    }
    this.hard = hard ?? EMPTY_HARD_STATE
    this.snap = snap ?? this.snap
    this.applied = applied ?? this.snap.index
    this.conf = conf ?? this.snap.conf
    this.memberBook = members ?? {}
    this.durableApplied = this.applied
    this.durableConf = this.conf
    this.loadLog()
    this.lmdbLast = this.last
    this.checkpointSeq = this.readMeta('walSeq', parseIndex) ?? 0
    this.walSeq = this.checkpointSeq
    if (this.checkpointSeq > 0 && walIsNew) {
      throw this.corrupt(`${WAL_FILE} is missing, and the data file says there was one`)
    }
    this.wal = wal
    const replayed = this.replayWal(records)
    // Records a checkpoint covers already (it committed; no append has written over them yet).
    if (replayed === 0 && records.length > 0) wal?.checkpointed()

    const base = this.snap.index
    if (this.applied < base || this.applied > this.last) {
      throw this.corrupt(`applied index ${this.applied} is outside the log [${base}, ${this.last}]`)
    }
    if (this.hard.commit > this.last || this.applied > this.hard.commit) {
      throw this.corrupt(
        `commit index ${this.hard.commit} is past the last entry ${this.last} or below ` +
          `the applied index ${this.applied}: the log tail was lost`,
      )
    }
    const lastTerm = this.term(this.last) ?? 0
    if (lastTerm > this.hard.term) {
      throw this.corrupt(`entry ${this.last} has term ${lastTerm}, past the hard state's term`)
    }
    // What the write-ahead file held goes into LMDB now, if there is room (else with the
    // next checkpoint; the file keeps it meanwhile).
    if (replayed > 0) {
      try {
        this.flushApplied()
      } catch (err) {
        if (!(err instanceof DiskUnavailableError)) throw err
      }
    }
    // Leftovers of a compaction or snapshot that stopped mid-way (if there is room).
    this.deleteLogBelowIfSpace(base + 1)
  }

  // replayWal takes the write-ahead file's records past the last checkpoint into memory (the
  // log tail, the last index, the hard state), checking that they follow the log; it
  // returns how many there were.
  private replayWal(records: readonly WalRecord[]): number {
    let replayed = 0
    for (const rec of records) {
      if (rec.seq <= this.checkpointSeq) continue
      const where = `${WAL_FILE}, record ${rec.seq}`
      if (rec.seq !== this.walSeq + 1) throw this.corrupt(`${where} follows record ${this.walSeq}`)
      const entries: { index: number; term: number }[] = []
      for (const bytes of rec.entries) {
        const index = logRecordIndex(bytes)
        const term = decodeLogRecordTerm(bytes, index ?? -1)
        if (index === undefined || !term.ok) {
          throw this.corrupt(`${where}: ${term.ok ? 'an entry too short' : term.problem}`)
        }
        if (isTailRef(bytes)) {
          throw this.corrupt(`${where}: entry ${index} refers to the value file`)
        }
        entries.push({ index, term: term.value })
      }
      const first = entries[0]
      if (first !== undefined) {
        const contiguous = entries.every((e, i) => e.index === first.index + i)
        if (!contiguous || first.index <= this.applied || first.index > this.last + 1) {
          throw this.corrupt(
            `${where} holds entries from ${first.index}, which do not follow the log ` +
              `(applied ${this.applied}, last ${this.last})`,
          )
        }
      }
      if (rec.hardState !== undefined && rec.hardState.term < this.hard.term) {
        throw this.corrupt(`${where}: term ${rec.hardState.term} after term ${this.hard.term}`)
      }
      this.walSeq = rec.seq
      this.tailAppended(entries, rec.entries, rec.hardState)
      replayed++
    }
    return replayed
  }

  // loadLog finds the log's last index, checks that the log is contiguous from the snapshot
  // on, and checks the newest VERIFY_TAIL_ENTRIES records (CRC, index, terms, and that none
  // past the applied index refers to the value file).
  private loadLog(): void {
    const base = this.snap.index
    let firstAbove: unknown
    for (const k of this.logDb.getKeys({ start: base + 1, limit: 1 })) firstAbove = k
    let lastKey: unknown
    for (const k of this.logDb.getKeys({ reverse: true, limit: 1 })) lastKey = k
    this.last = base
    this.recentTerms = []
    this.recentFrom = base + 1
    if (firstAbove === undefined) return
    if (typeof firstAbove !== 'number' || typeof lastKey !== 'number') {
      throw this.corrupt('the log holds a key that is not an index')
    }
    if (firstAbove !== base + 1) {
      throw this.corrupt(
        `the log resumes at ${firstAbove} but the snapshot ends at ${base}: ` +
          `entries ${base + 1} to ${firstAbove - 1} are missing`,
      )
    }
    const count = this.logDb.getKeysCount({ start: base + 1 })
    if (count !== lastKey - base) {
      throw this.corrupt(
        `the log from ${base + 1} to ${lastKey} holds ${count} entries, ` +
          `not ${lastKey - base}: it has gaps`,
      )
    }
    const from = Math.max(base + 1, lastKey - VERIFY_TAIL_ENTRIES + 1)
    const terms: number[] = []
    let prevTerm = from === base + 1 ? this.snap.term : 0
    for (let i = from; i <= lastKey; i++) {
      const bytes = this.readLog(i)
      if (bytes === undefined) throw this.corrupt(`log entry ${i} is missing`)
      const term = decodeLogRecordTerm(bytes, i)
      if (!term.ok) throw this.corrupt(term.problem)
      if (isTailRef(bytes) && i > this.applied) {
        throw this.corrupt(`log entry ${i} refers to the value file but is not applied`)
      }
      if (term.value < prevTerm) {
        throw this.corrupt(`log entry ${i} has term ${term.value}, below its predecessor's`)
      }
      prevTerm = term.value
      terms.push(term.value)
    }
    this.last = lastKey
    this.recentTerms = terms
    this.recentFrom = from
  }

  // deleteLogBelow deletes log keys below end, DELETE_BATCH per transaction, in at most
  // maxTransactions transactions.
  private deleteLogBelow(end: number, maxTransactions = Infinity): void {
    for (let txns = 0; txns < maxTransactions; txns++) {
      const keys = [...this.logDb.getKeys({ end, limit: DELETE_BATCH })]
      // Keys are log indexes (loadLog checks): none below the first one read remains.
      this.trimFrom = Math.max(this.trimFrom, (keys[0] as number | undefined) ?? end)
      if (keys.length === 0) return
      this.write(() => {
        for (const k of keys) this.logDb.removeSync(k)
      }, keys.length * DELETE_BYTES_PER_KEY)
      const next = keys.length < DELETE_BATCH ? end : (keys[keys.length - 1] as number) + 1
      this.trimFrom = Math.max(this.trimFrom, next)
    }
  }

  // deleteLogBelowIfSpace is deleteLogBelow, stopping quietly when the disk is too full for
  // it: entries below the snapshot are ignored, and later writes, trimLog or open() delete them.
  private deleteLogBelowIfSpace(end: number, maxTransactions = Infinity): void {
    try {
      this.deleteLogBelow(end, maxTransactions)
    } catch (err) {
      if (!(err instanceof DiskUnavailableError)) throw err
    }
  }

  // upgradeValues moves a version 2-3 store's values from 'kv' into references and the value
  // file, UPGRADE_BATCH keys per transaction (each key is in one database or the other at
  // every commit, so a crash midway leaves the rest to the next open). A damaged value keeps
  // its checksum and stays damaged: reading it still fails.
  private upgradeValues(): void {
    for (;;) {
      const batch: { key: Uint8Array; record: Uint8Array }[] = []
      let bytes = 0
      for (const { key, value } of this.legacyKvDb.getRange({ limit: UPGRADE_BATCH })) {
        batch.push({ key: copyOf(key), record: copyOf(value) })
        bytes += key.byteLength + value.byteLength
      }
      if (batch.length === 0) return
      this.write(() => {
        this.putMeta('format', FORMAT_VERSION)
        for (const { key, record } of batch) {
          const stored = record.byteLength >= VALUE_HEADER_BYTES
          const value = record.subarray(stored ? VALUE_HEADER_BYTES : record.byteLength)
          const crc = stored
            ? new DataView(record.buffer, record.byteOffset).getUint32(0, true)
            : ~valueChecksum(key, value) >>> 0
          this.keysDb.putSync(key, this.valueRef(key, value, crc))
          this.legacyKvDb.removeSync(key)
        }
      }, PAYLOAD_FACTOR * bytes)
    }
  }

  // rememberTerms records the terms of entries just written (they end the log).
  private rememberTerms(
    entries: readonly { readonly index: number; readonly term: number }[],
  ): void {
    const first = entries[0]
    if (first === undefined) return
    if (first.index <= this.recentFrom || this.recentTerms.length === 0) {
      this.recentTerms = []
      this.recentFrom = first.index
    } else {
      this.recentTerms.length = Math.min(this.recentTerms.length, first.index - this.recentFrom)
      if (this.recentFrom + this.recentTerms.length !== first.index) {
        this.recentTerms = []
        this.recentFrom = first.index
      }
    }
    for (const e of entries) this.recentTerms.push(e.term)
    if (this.recentTerms.length > TERM_CACHE_MAX + TERM_CACHE_MAX / 4) {
      const drop = this.recentTerms.length - TERM_CACHE_MAX
      this.recentTerms.splice(0, drop)
      this.recentFrom += drop
    }
  }

  // putIfAbsentInTxn stores value under key unless the key is taken (pending values count):
  // in the open transaction, or, with inMemory (applyInMemory), into pendingKv.
  private putIfAbsentInTxn(
    key: Uint8Array,
    value: Uint8Array,
    inMemory = false,
    logIndex?: number,
  ): PutOutcome {
    assert(
      key.byteLength >= 1 && key.byteLength <= KEY_BYTES_MAX,
      () => `key of ${key.byteLength} bytes; keys are 1 to ${KEY_BYTES_MAX} bytes`,
    )
    const existing = this.pendingValue(key) ?? this.readValue(key)
    if (existing !== undefined) return bytesEqual(existing, value) ? 'exists' : 'conflict'
    if (inMemory) {
      this.pendingKv.set(pendingKey(key), { key, value, logIndex })
      this.pendingBytes += key.byteLength + value.byteLength
    } else {
      this.keysDb.putSync(key, this.valueRef(key, value))
    }
    return 'created'
  }

  private pendingValue(key: Uint8Array): Uint8Array | undefined {
    return this.pendingKv.size === 0 ? undefined : this.pendingKv.get(pendingKey(key))?.value
  }

  private putMeta(key: MetaKey, value: unknown): void {
    this.putRecord(this.metaDb, key, encodeMetaRecord(value))
  }

  private readMeta<T>(key: MetaKey, parse: (v: unknown) => T | undefined): T | undefined {
    const bytes = fastView(this.metaDb.getBinaryFast(key))
    if (bytes === undefined) return undefined
    const record = decodeMetaRecord(bytes)
    if (!record.ok) throw this.corrupt(`metadata record '${key}' is unreadable: ${record.problem}`)
    const value = parse(record.value)
    if (value === undefined) throw this.corrupt(`metadata record '${key}' has a bad shape`)
    return value
  }

  // readLog and readKv return views valid only until the next read: copy what is kept.
  private readLog(index: number): Uint8Array | undefined {
    return (
      this.walTail.get(index) ?? this.guardRead(() => fastView(this.logDb.getBinaryFast(index)))
    )
  }

  private readKv(key: Uint8Array): Uint8Array | undefined {
    return this.guardRead(() => fastView(this.keysDb.getBinaryFast(key)))
  }

  // readValue is the value stored under key (with copy a fresh copy, else possibly a view,
  // valid as readKv's), checked against its checksum: a damaged value throws
  // ValueCorruptError and is never returned.
  private readValue(key: Uint8Array, copy = false): Uint8Array | undefined {
    const record = this.readKv(key)
    return record === undefined ? undefined : this.checkedValue(key, record, copy)
  }

  // checkedValue is the value a reference stored under key refers to, as readValue's.
  private checkedValue(key: Uint8Array, record: Uint8Array, copy = false): Uint8Array {
    const ref = decodeValueRef(record)
    let value: Uint8Array | undefined
    // (ValueFile.read finds a damaged length or offset past the file's end before it reads.)
    if (ref?.inFile === true) value = plain(this.values.read(ref.offset, ref.length))
    else if (ref !== undefined) value = copy ? copyOf(ref.value) : ref.value
    if (ref === undefined || value === undefined || valueChecksum(key, value) !== ref.crc)
      throw new ValueCorruptError(this.dir, hexPrefix(key))
    return value
  }

  // valueRef is the reference to store under key for value (crc: its checksum), staging the
  // value in the value file unless the reference holds it.
  // placed, if given, learns where the value file takes a value it does.
  private valueRef(
    key: Uint8Array,
    value: Uint8Array,
    crc = valueChecksum(key, value),
    placed?: (offset: number) => void,
  ): Buffer {
    if (value.byteLength <= INLINE_VALUE_MAX) return encodeInlineRef(crc, value)
    const offset = this.values.stage(value)
    placed?.(offset)
    return encodeFileRef(crc, value.byteLength, offset)
  }

  // readTail reads a log record's data tail from the value file (log-record.ts).
  private readonly readTail = (offset: number, length: number): Uint8Array | undefined =>
    this.guardRead(() => this.values.read(offset, length))

  // flushValues makes the values staged for this transaction durable and records the value
  // file's new end with it: inside the transaction, before it commits.
  private flushValues(): void {
    if (!this.values.hasStaged) return
    this.values.flush()
    this.putMeta('valuesEnd', this.values.end)
  }

  private guardRead<T>(read: () => T): T {
    try {
      return read()
    } catch (err) {
      throw wrapLmdbError(this.dir, err, 'LMDB failed to read')
    }
  }

  // write runs fn in one synchronous transaction, after checking that the file system has
  // room for payloadBytes (checkSpace; null: the caller checked already). A failure of the
  // transaction itself makes the store fail stop.
  private write<T>(fn: () => T, payloadBytes: number | null = 0): T {
    this.checkUsable()
    assert(this.inflight === undefined, 'a synchronous write during an asynchronous Ready write')
    if (payloadBytes !== null) this.checkSpace(payloadBytes)
    try {
      return this.root.transactionSync(() => {
        assert(!this.values.hasStaged, 'values staged outside a write')
        const out = fn()
        this.flushValues()
        return out
      })
    } catch (err) {
      this.values.discard()
      throw this.failed(err)
    }
  }

  /** spaceProblem is what a small write would meet now: DiskUnavailableError if the file
   * system has less free space than the reserve plus one transaction, else undefined. */
  spaceProblem(): DiskUnavailableError | undefined {
    try {
      this.checkSpace(0)
      return undefined
    } catch (err) {
      if (err instanceof DiskUnavailableError) return err
      throw err
    }
  }

  // checkSpace throws DiskUnavailableError unless the file system holding the store has
  // room for a transaction carrying payloadBytes, plus the reserve. A statfs that fails
  // tells nothing: the write is tried.
  private checkSpace(payloadBytes: number): void {
    const problem = spaceShortfall(this.dir, payloadBytes + TXN_OVERHEAD_BYTES, this.minFreeBytes)
    if (problem !== undefined) throw new DiskUnavailableError(this.dir, 'full', problem)
  }

  // failed makes the store fail stop after err and returns what to throw: DiskFailedError
  // when the disk refused the write, else err itself (a StoreCorruptError, a bug).
  private failed(err: unknown): unknown {
    this.failure = err
    if (err instanceof StoreCorruptError) return err
    const errno = diskErrno(err)
    return errno === undefined ? err : new DiskFailedError(this.dir, errno, { cause: err })
  }

  private checkUsable(): void {
    if (this.closed) throw new Error(`store ${this.dir} is closed`)
    if (this.failure !== undefined) {
      throw new Error(`store ${this.dir} stopped after a failed write`, { cause: this.failure })
    }
  }

  private corrupt(detail: string): StoreCorruptError {
    return new StoreCorruptError(this.dir, detail)
  }
}

// fastView turns a buffer from lmdb-js's getBinaryFast into a plain view of the value. Such a
// buffer is lmdb-js's reused 16 MiB buffer with its `length` property overridden to the
// value's length (measured: byteLength stays 16 MiB), so `new Uint8Array(buf)` would copy
// 16 MiB; subarray(0, length) is the value. The view is valid until the next read.
function fastView(buf: Buffer | undefined): Uint8Array | undefined {
  return buf === undefined ? undefined : buf.subarray(0, buf.length)
}

// plain is b as a plain Uint8Array over the same bytes (what reads hand out).
function plain(b: Buffer | undefined): Uint8Array | undefined {
  return b === undefined ? undefined : new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

// copyOf is a copy of v in Node's shared pool (values under 4 KiB): a typed array
// constructor makes a backing store of its own per copy, slower to make and to collect.
function copyOf(v: Uint8Array): Uint8Array {
  return plain(Buffer.from(v)) as Uint8Array
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  return Buffer.compare(a, b) === 0
}

function hexPrefix(key: Uint8Array): string {
  const hex = Buffer.from(key.buffer, key.byteOffset, Math.min(key.byteLength, 32)).toString('hex')
  return key.byteLength > 32 ? `0x${hex}…` : `0x${hex}`
}

// spaceShortfall describes how the file system holding dir falls short of writeBytes plus
// reserveBytes of free space, or is undefined if it has them (or statfs fails: no telling).
function spaceShortfall(dir: string, writeBytes: number, reserveBytes: number): string | undefined {
  let free: number
  try {
    const st = statfsSync(dir)
    free = st.bavail * st.bsize
  } catch {
    return undefined
  }
  if (free >= writeBytes + reserveBytes) return undefined
  return (
    `${free} bytes free; a write needs ${writeBytes} and ${reserveBytes} are kept free ` +
    '(--min-free-bytes)'
  )
}

// checkWritable throws DiskUnavailableError if dir, or the nearest existing directory above
// it, cannot be written: a read-only file system, or no permission. (mkdir on a read-only
// file system can fail with a misleading ENOENT, and LMDB with "cannot set up locks".)
function checkWritable(dir: string): void {
  let at = dir
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at)
  try {
    accessSync(at, constants.W_OK)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'EROFS')
      throw new DiskUnavailableError(dir, 'read_only', `${at} is on a read-only file system`)
    if (code === 'EACCES' || code === 'EPERM')
      throw new DiskUnavailableError(dir, 'read_only', `${at} is not writable by this process`)
    throw err
  }
}

function statNumber(stats: object, name: string): number {
  const v: unknown = (stats as Record<string, unknown>)[name]
  assert(typeof v === 'number', () => `lmdb stats lack ${name}`)
  return v
}

// wrapLmdbError turns an LMDB error that means a damaged file into StoreCorruptError and
// passes anything else (including StoreCorruptError itself) through.
function wrapLmdbError(dir: string, err: unknown, what: string): unknown {
  if (err instanceof StoreCorruptError) return err
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined
  if (typeof code === 'number' && LMDB_CORRUPTION_CODES.has(code)) {
    return new StoreCorruptError(dir, `${what}: ${(err as Error).message}`, { cause: err })
  }
  return err
}

// pendingKey is the pendingKv key of a user key: its bytes as a latin1 string.
function pendingKey(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')
}
