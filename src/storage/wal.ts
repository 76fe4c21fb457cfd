// The write-ahead file in front of LmdbStore (wal.log beside LMDB's data file): the Raft log
// entries and hard state of each Ready, appended as one record and made durable with one
// fdatasync. An LMDB commit makes its data durable with two flushes (the data file's
// fdatasync, then the meta page's O_DSYNC write); appending here takes one, so the store
// commits most Readies here and folds them into LMDB now and then, in one transaction (a
// checkpoint), after which the file is emptied.
//
// Record layout, little-endian:
//   0  u32  body length
//   4  u32  crc32 of the body
//   8  u32  crc32 of bytes [0, 8): the length is checked before it is trusted
//  12  body: f64 seq, u32 hard-state bytes (0: none), the hard state (a meta record),
//      u32 entry count, then per entry u32 length and the entry's log record (log-record.ts)
// seq numbers every record the store ever appended; a checkpoint records the last seq it
// covers, so records left over from before it (a crash between the checkpoint's commit and
// the truncation) are skipped when the file is read.
//
// The file only grows by appends, each followed by fdatasync, and is emptied (ftruncate and
// fdatasync) only before the next append: a crash can leave at most the last record torn,
// reaching to the end of the file. A record failing its checksum there is dropped (it was
// never acknowledged): one whose header is intact but whose body runs to the end of the
// file, or one whose header is bad with nothing but zeros after it. Anything else that fails
// a checksum is corruption.
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  ftruncate,
  openSync,
  readSync,
  write,
} from 'node:fs'
import { dirname } from 'node:path'
import { crc32 } from 'node:zlib'
import type { HardState } from '../raft/index.ts'
import {
  decodeMetaRecord,
  encodeMetaRecord,
  parseHardState,
  plainHardState,
} from './meta-record.ts'

const HEAD_BYTES = 12

/** WalRecord is one appended Ready: its hard state, if any, and its entries' log records. */
export interface WalRecord {
  readonly seq: number
  readonly hardState: HardState | undefined
  readonly entries: readonly Uint8Array[]
}

/** encodeWalRecord turns a record into the bytes append() writes. */
export function encodeWalRecord(rec: WalRecord): Buffer {
  const hs =
    rec.hardState === undefined ? undefined : encodeMetaRecord(plainHardState(rec.hardState))
  let bodyBytes = 8 + 4 + (hs?.byteLength ?? 0) + 4
  for (const e of rec.entries) bodyBytes += 4 + e.byteLength
  const out = Buffer.allocUnsafe(HEAD_BYTES + bodyBytes)
  let at = HEAD_BYTES
  out.writeDoubleLE(rec.seq, at)
  at += 8
  out.writeUInt32LE(hs?.byteLength ?? 0, at)
  at += 4
  if (hs !== undefined) {
    out.set(hs, at)
    at += hs.byteLength
  }
  out.writeUInt32LE(rec.entries.length, at)
  at += 4
  for (const e of rec.entries) {
    out.writeUInt32LE(e.byteLength, at)
    at += 4
    out.set(e, at)
    at += e.byteLength
  }
  out.writeUInt32LE(bodyBytes, 0)
  out.writeUInt32LE(crc32(out.subarray(HEAD_BYTES)), 4)
  out.writeUInt32LE(crc32(out.subarray(0, 8)), 8)
  return out
}

// decodeBody parses a record body whose checksum matched; a problem string if its shape is
// wrong all the same.
function decodeBody(body: Buffer): WalRecord | string {
  if (body.byteLength < 16) return 'a record too short for its header'
  let at = 0
  const seq = body.readDoubleLE(at)
  at += 8
  if (!Number.isSafeInteger(seq) || seq < 1) return `a record with sequence number ${seq}`
  const hsBytes = body.readUInt32LE(at)
  at += 4
  let hardState: HardState | undefined
  if (hsBytes > 0) {
    if (at + hsBytes + 4 > body.byteLength) return `record ${seq}: its hard state overruns it`
    const decoded = decodeMetaRecord(body.subarray(at, at + hsBytes))
    hardState = decoded.ok ? parseHardState(decoded.value) : undefined
    if (hardState === undefined) return `record ${seq}: its hard state is unreadable`
    at += hsBytes
  }
  const count = body.readUInt32LE(at)
  at += 4
  const entries: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.byteLength) return `record ${seq}: entry ${i} overruns it`
    const len = body.readUInt32LE(at)
    at += 4
    if (at + len > body.byteLength) return `record ${seq}: entry ${i} overruns it`
    entries.push(new Uint8Array(body.subarray(at, at + len)))
    at += len
  }
  if (at !== body.byteLength) return `record ${seq}: ${body.byteLength - at} bytes past its end`
  return { seq, hardState, entries }
}

/** Wal is the open file; see the module comment. Not safe for two appends at once. */
export class Wal {
  private readonly fd: number
  // Where the next record goes: the end of the last whole record.
  private offset: number
  // The file holds bytes past offset (a torn record) or records a checkpoint covers: the
  // next append empties it first.
  private stale: boolean

  private constructor(fd: number, offset: number, stale: boolean) {
    this.fd = fd
    this.offset = offset
    this.stale = stale
  }

  /**
   * open opens (creating) the file at path and reads it whole. It throws an Error naming the
   * problem when a record in the middle fails its checksum or its shape.
   */
  static open(path: string): { wal: Wal; records: WalRecord[]; created: boolean } {
    const created = !existsSync(path)
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644)
    try {
      // The file's name must be durable before a record in it is acknowledged (also when an
      // earlier process created it and died before this).
      syncDir(dirname(path))
      const size = fstatSync(fd).size
      const buf = Buffer.allocUnsafe(size)
      let got = 0
      while (got < size) {
        const n = readSync(fd, buf, got, size - got, got)
        if (n === 0) break
        got += n
      }
      const records: WalRecord[] = []
      let at = 0
      while (at < got) {
        const headOk =
          at + HEAD_BYTES <= got && buf.readUInt32LE(at + 8) === crc32(buf.subarray(at, at + 8))
        if (!headOk) {
          // Torn before its header landed: nothing but zeros (or less than a header) follows.
          if (buf.subarray(at, got).every((b) => b === 0) || at + HEAD_BYTES > got) break
          throw new Error(`${path}: the record at byte ${at} has a damaged header`)
        }
        const len = buf.readUInt32LE(at)
        const end = at + HEAD_BYTES + len
        if (end > got || buf.readUInt32LE(at + 4) !== crc32(buf.subarray(at + HEAD_BYTES, end))) {
          // Torn: the last append, cut short before the end of the file.
          if (end >= got) break
          throw new Error(
            `${path}: the record at byte ${at} fails its checksum, with ${got - end} bytes after it`,
          )
        }
        const rec = decodeBody(buf.subarray(at + HEAD_BYTES, end))
        if (typeof rec === 'string') throw new Error(`${path}: ${rec}`)
        const prev = records.at(-1)
        if (prev !== undefined && rec.seq !== prev.seq + 1) {
          throw new Error(`${path}: record ${rec.seq} follows record ${prev.seq}`)
        }
        records.push(rec)
        at = end
      }
      return {
        wal: new Wal(fd, at, got > at),
        records,
        created,
      }
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** bytes is the size of the records appended since the file was last emptied. */
  get bytes(): number {
    return this.offset
  }

  /** append writes one encoded record at the end and resolves once it is durable. */
  async append(record: Buffer): Promise<void> {
    if (this.stale) await this.empty()
    const at = this.offset
    let done = 0
    while (done < record.byteLength) {
      done += await new Promise<number>((resolve, reject) =>
        write(this.fd, record, done, record.byteLength - done, at + done, (err, n) =>
          err ? reject(err) : resolve(n),
        ),
      )
    }
    this.offset = at + record.byteLength
    await new Promise<void>((resolve, reject) =>
      fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
    )
  }

  /** checkpointed notes that LMDB now holds everything appended: the next append empties
   * the file first. (The file is cut at offset: bytes past the last whole record, or, after
   * this, everything.) */
  checkpointed(): void {
    if (this.offset > 0) this.stale = true
    this.offset = 0
  }

  private async empty(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      ftruncate(this.fd, this.offset, (err) => (err ? reject(err) : resolve())),
    )
    await new Promise<void>((resolve, reject) =>
      fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
    )
    this.stale = false
  }

  close(): void {
    closeSync(this.fd)
  }
}

/** syncDir makes the names in dir durable (a file just created there). */
export function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
