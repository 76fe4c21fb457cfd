// The write-ahead file in front of LmdbStore (wal.log beside LMDB's data file): the Raft log
// entries and hard state of each Ready, appended as one record and made durable with one
// fdatasync. An LMDB commit makes its data durable with two flushes (the data file's
// fdatasync, then the meta page's O_DSYNC write); appending here takes one, so the store
// commits most Readies here and folds them into LMDB now and then, in one transaction (a
// checkpoint), after which the file is used again from its start.
//
// Layout, little-endian: a 16-byte file header, then the records.
//   0  8 bytes  FILE_MAGIC
//   8  u32      salt: a random number drawn when the file got its header
//  12  u32      crc32 of bytes [0, 12)
// Record:
//   0  u32  body length
//   4  u32  crc32 of the body, from the salt (zlib's crc32(body, salt))
//   8  u32  crc32 of bytes [0, 8), from the salt: the length is checked before it is trusted
//  12  body: f64 seq, u32 hard-state bytes (0: none), the hard state (a meta record),
//      u32 entry count, then per entry u32 length and the entry's log record (log-record.ts)
// seq numbers every record the store ever appended; a checkpoint records the last seq it
// covers (the caller's `covered`).
//
// The file is recycled: after a checkpoint, records are written from the start again, over
// the old ones, and the file is never cut. Writing over blocks the file already has makes an
// fdatasync flush the data alone; appending past the end, or cutting the file, also commits
// the file system's journal (the file's size and blocks), which here took the flush from
// about 170 to 290 µs for 4 KiB and from 280 to 750 µs for 64 KiB (bench/NOTES.md). So past
// the last record lie older ones, a checkpoint covers them all, and the reading rules are:
// records are read from the header on while each passes both checksums and follows the one
// before (seq one higher); the first that does not ends the log. It is the torn last append
// (its fdatasync never returned, so nothing in it was acknowledged) or an older record, and
// then no record further on that passes its checksums may be newer than both the last one
// read and `covered`: one is damage in the middle of the log, and opening fails. The salt
// keeps bytes inside older records (values are users' bytes) from ever reading as a record.
//
// A file written by an older oncekv (no file header, checksums from 0, emptied with ftruncate
// after each checkpoint: FORMAT 'legacy') is read by its own rules: a record failing its
// checksum is dropped only at the end of the file, or with nothing but zeros after it. It is
// appended to as before until a checkpoint covers it all; then it is cut to nothing and gets
// a file header.
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncate,
  openSync,
  readSync,
  write,
  writeSync,
} from 'node:fs'
import { randomBytes } from 'node:crypto'
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
const FILE_HEAD_BYTES = 16
/** FILE_MAGIC opens a write-ahead file in the recycled layout (see the module comment). */
export const FILE_MAGIC = Buffer.from('OKV-WAL2', 'latin1')

/** WalRecord is one appended Ready: its hard state, if any, and its entries' log records. */
export interface WalRecord {
  readonly seq: number
  readonly hardState: HardState | undefined
  readonly entries: readonly Uint8Array[]
}

/** encodeWalRecord turns a record into the bytes append() writes, its checksums started from
 * salt (Wal.salt; 0 in a file of the older layout). */
export function encodeWalRecord(rec: WalRecord, salt: number): Buffer {
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
  out.writeUInt32LE(crc32(out.subarray(HEAD_BYTES), salt), 4)
  out.writeUInt32LE(crc32(out.subarray(0, 8), salt), 8)
  return out
}

/** encodeFileHeader is the file header for salt. */
export function encodeFileHeader(salt: number): Buffer {
  const out = Buffer.alloc(FILE_HEAD_BYTES)
  FILE_MAGIC.copy(out, 0)
  out.writeUInt32LE(salt, 8)
  out.writeUInt32LE(crc32(out.subarray(0, 12)), 12)
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

// recordAt reads the record at byte at of buf (got bytes long) whose checksums start from
// salt: undefined unless its header and body pass them, a problem string if they pass and its
// shape is wrong all the same.
function recordAt(
  buf: Buffer,
  got: number,
  at: number,
  salt: number,
): WalRecord | string | undefined {
  if (at + HEAD_BYTES > got) return undefined
  const len = buf.readUInt32LE(at)
  const end = at + HEAD_BYTES + len
  if (len < 16 || end > got) return undefined
  if (buf.readUInt32LE(at + 8) !== crc32(buf.subarray(at, at + 8), salt)) return undefined
  if (buf.readUInt32LE(at + 4) !== crc32(buf.subarray(at + HEAD_BYTES, end), salt)) return undefined
  return decodeBody(buf.subarray(at + HEAD_BYTES, end))
}

// readRecycled reads the records of a file in the recycled layout (see the module comment):
// from the file header on, while each follows the one before. It returns them and where the
// next record goes, or throws an Error naming damage before the end of the log.
function readRecycled(
  path: string,
  buf: Buffer,
  got: number,
  salt: number,
  covered: number,
): { records: WalRecord[]; end: number } {
  const records: WalRecord[] = []
  let at = FILE_HEAD_BYTES
  for (;;) {
    const rec = recordAt(buf, got, at, salt)
    if (typeof rec === 'string') throw new Error(`${path}: ${rec}`)
    const prev = records.at(-1)
    if (rec === undefined || (prev !== undefined && rec.seq !== prev.seq + 1)) break
    records.push(rec)
    at += HEAD_BYTES + buf.readUInt32LE(at)
  }
  // The end of the log: nothing past it may be newer than what was read and what LMDB holds.
  const newest = Math.max(records.at(-1)?.seq ?? 0, covered)
  for (let p = at; p + HEAD_BYTES + 16 <= got; p++) {
    const later = recordAt(buf, got, p, salt)
    if (later === undefined || typeof later === 'string' || later.seq <= newest) continue
    const last = records.at(-1)
    throw new Error(
      p === at
        ? `${path}: record ${later.seq} follows record ${last?.seq ?? 'none'} (at byte ${p})`
        : `${path}: the record at byte ${at} is damaged, and record ${later.seq} (at byte ` +
            `${p}) comes after it`,
    )
  }
  return { records, end: at }
}

// readLegacy reads a file of the older layout (see the module comment), whose records start
// at byte 0 with checksums from 0. It returns them and where the next record goes, or throws
// an Error naming damage before the end of the file.
function readLegacy(path: string, buf: Buffer, got: number): { records: WalRecord[]; end: number } {
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
  return { records, end: at }
}

/** newSalt draws a file's salt. */
function newSalt(): number {
  return randomBytes(4).readUInt32LE(0)
}

/** Wal is the open file; see the module comment. Not safe for two appends at once. */
export class Wal {
  private readonly fd: number
  /** salt starts every record's checksums (encodeWalRecord); 0 in a legacy file. */
  salt: number
  // Where the next record goes: the end of the last record of the log.
  private offset: number
  // legacy: the file has the older layout (no file header). stale: (legacy only) the file
  // holds bytes past offset (a torn record) or records a checkpoint covers, and the next
  // append cuts it first.
  private legacy: boolean
  private stale: boolean

  private constructor(fd: number, salt: number, offset: number, legacy: boolean, stale: boolean) {
    this.fd = fd
    this.salt = salt
    this.offset = offset
    this.legacy = legacy
    this.stale = stale
  }

  /**
   * open opens (creating) the file at path and reads it whole. covered is the seq of the last
   * record a checkpoint covers (0 if none). It throws an Error naming the problem when a
   * record before the end of the log fails its checksum or its shape.
   */
  static open(path: string, covered = 0): { wal: Wal; records: WalRecord[]; created: boolean } {
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
      const head = buf.subarray(0, Math.min(got, FILE_HEAD_BYTES))
      if (got >= FILE_HEAD_BYTES && head.subarray(0, 8).equals(FILE_MAGIC)) {
        if (head.readUInt32LE(12) !== crc32(head.subarray(0, 12))) {
          throw new Error(`${path}: the file header is damaged`)
        }
        const salt = head.readUInt32LE(8)
        const { records, end } = readRecycled(path, buf, got, salt, covered)
        return { wal: new Wal(fd, salt, end, false, false), records, created }
      }
      if (got < FILE_HEAD_BYTES || buf.subarray(0, got).every((b) => b === 0)) {
        // New, or its header never landed (then nothing was appended): a header now.
        const salt = newSalt()
        writeAllSync(fd, encodeFileHeader(salt), 0)
        fdatasyncSync(fd)
        return {
          wal: new Wal(fd, salt, FILE_HEAD_BYTES, false, false),
          records: [],
          created,
        }
      }
      const { records, end } = readLegacy(path, buf, got)
      return { wal: new Wal(fd, 0, end, true, got > end), records, created }
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** bytes is the size of the records appended since the last checkpoint (or open). */
  get bytes(): number {
    return this.offset - (this.legacy ? 0 : FILE_HEAD_BYTES)
  }

  /** append writes rec at offset and resolves once it is durable. */
  async append(rec: WalRecord): Promise<void> {
    if (this.stale) await this.empty()
    // Encoded after empty(), which gives a legacy file its salt.
    const record = encodeWalRecord(rec, this.salt)
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
    await fdatasyncAsync(this.fd)
  }

  /** checkpointed notes that LMDB now holds everything appended: the next record goes to
   * the start of the file. (A legacy file is cut at offset first: bytes past the last whole
   * record, or, after this, everything.) */
  checkpointed(): void {
    if (this.legacy) {
      if (this.offset > 0) this.stale = true
      this.offset = 0
    } else {
      this.offset = FILE_HEAD_BYTES
    }
  }

  // empty cuts a legacy file at offset; cut to nothing, it gets a file header and becomes a
  // file of the recycled layout.
  private async empty(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      ftruncate(this.fd, this.offset, (err) => (err ? reject(err) : resolve())),
    )
    if (this.offset === 0) {
      const salt = newSalt()
      writeAllSync(this.fd, encodeFileHeader(salt), 0)
      this.salt = salt
      this.offset = FILE_HEAD_BYTES
      this.legacy = false
    }
    await fdatasyncAsync(this.fd)
    this.stale = false
  }

  close(): void {
    closeSync(this.fd)
  }
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    fdatasync(fd, (err) => (err ? reject(err) : resolve())),
  )
}

function writeAllSync(fd: number, bytes: Buffer, at: number): void {
  let done = 0
  while (done < bytes.byteLength) {
    done += writeSync(fd, bytes, done, bytes.byteLength - done, at + done)
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
