// The write-ahead file in front of LmdbStore (wal.log beside LMDB's data file): the Raft log
// entries and hard state of each Ready, appended as one record and made durable with one
// flush. An LMDB commit makes its data durable with two flushes (the data file's
// fdatasync, then the meta page's O_DSYNC write); appending here takes one, so the store
// commits most Readies here and folds them into LMDB now and then, in one transaction (a
// checkpoint), after which the file is used again from its start.
//
// On Linux the file is open with O_DSYNC: a write returns once its data (and the size, if it
// grew the file) is durable, as a write followed by fdatasync would. That is one trip to
// Node.js's thread pool per append instead of two: one durable append of 2.4 KiB at a time
// took 116-125 µs of CPU and 0.23-0.28 ms at the median against 148-178 µs and 0.27-0.35 ms
// with fdatasync (three alternating 3 s runs; bench/NOTES.md). Elsewhere each write is
// followed by fdatasync as before: Node.js's fdatasync may do more than O_DSYNC there (on
// macOS libuv's is a full flush of the drive's cache, F_FULLFSYNC), and Windows has no
// O_DSYNC.
//
// Layout, little-endian: a file header in the first 4 KiB (RECORDS_AT; the rest of that
// block is zeros, so that the appends after each checkpoint never write the header's block),
// then the records.
//   0  8 bytes  FILE_MAGIC
//   8  u32      the salt's head half  } a random 64-bit salt, drawn when the file got its
//  12  u32      the salt's body half  } header
//  16  u32      crc32 of bytes [0, 16)
// Record:
//   0  u32  body length
//   4  u32  crc32 of the body, from the salt's body half (zlib's crc32(body, salt.body))
//   8  u32  crc32 of bytes [0, 8), from the salt's head half: the length is checked before
//           it is trusted
//  12  body: f64 seq, u32 hard-state bytes (0: none), the hard state (a meta record),
//      u32 entry count, then per entry u32 length and the entry's log record (log-record.ts)
// seq numbers every record the store ever appended; a checkpoint records the last seq it
// covers (the caller's `covered`).
//
// The file is recycled: after a checkpoint, records are written from the start again, over
// the old ones, and the file is never cut. Writing over blocks the file already has makes a
// flush take the data alone; appending past the end, or cutting the file, also commits
// the file system's journal (the file's size and blocks), which here took the flush from
// about 170 to 290 µs for 4 KiB and from 280 to 750 µs for 64 KiB (bench/NOTES.md). So past
// the last record lie older ones, a checkpoint covers them all, and the reading rules are:
// records are read from RECORDS_AT on while each passes both checksums and follows the one
// before (seq one higher); the first that does not ends the log. It is the torn last append
// (its write never returned, so nothing in it was acknowledged) or an older record; a
// last record damaged after it was acknowledged looks the same and is dropped too, as with
// any log that tells a torn end by its checksum. Then no record further on that passes its
// checksums may be newer than both the last one read and `covered`: one is damage in the
// middle of the log, and opening fails. The salt keeps bytes inside older records (values
// are users' bytes) from reading as a record: random bytes pass both checksums at a given
// place with odds of about 2^-64, and bytes made to pass them need both halves of the salt,
// which no answer reveals (a guess at both is right once in 2^64; the two checksums start
// from different halves so that one guess cannot be checked against one of them alone).
//
// A file written by an older oncekv (no file header, checksums from 0, emptied with ftruncate
// after each checkpoint; `legacy` below) is read by its own rules: a record failing its
// checksum is dropped only at the end of the file, or with nothing but zeros after it. It is
// appended to as before until a checkpoint covers it all; then it is cut to nothing and gets
// a file header. A new file, or an empty one, gets its header with its first append (made
// durable before the record is written), so that a store never holds a file of the new
// layout before it records the layout version that says so.
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
} from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { promisify } from 'node:util'
import { crc32 } from 'node:zlib'
import type { HardState } from '../raft/index.ts'
import {
  decodeMetaRecord,
  encodeMetaRecord,
  parseHardState,
  plainHardState,
} from './meta-record.ts'

const HEAD_BYTES = 12
const FILE_HEAD_BYTES = 20
/** RECORDS_AT is where the records of a file of the recycled layout start. */
export const RECORDS_AT = 4096
/** FILE_MAGIC opens a write-ahead file in the recycled layout (see the module comment). */
export const FILE_MAGIC = Buffer.from('OKV-WAL2', 'latin1')

/** WalRecord is one appended Ready: its hard state, if any, and its entries' log records. */
export interface WalRecord {
  readonly seq: number
  readonly hardState: HardState | undefined
  readonly entries: readonly Uint8Array[]
}

/** Salt is a file's 64-bit salt: the record header's checksum starts from head, the body's
 * from body. */
export interface Salt {
  readonly head: number
  readonly body: number
}

/** LEGACY_SALT is what the checksums of a file of the older layout start from. */
export const LEGACY_SALT: Salt = { head: 0, body: 0 }

/** encodeWalRecord turns a record into the bytes append() writes, its checksums started from
 * salt. */
export function encodeWalRecord(rec: WalRecord, salt: Salt): Buffer {
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
  out.writeUInt32LE(crc32(out.subarray(HEAD_BYTES), salt.body), 4)
  out.writeUInt32LE(crc32(out.subarray(0, 8), salt.head), 8)
  return out
}

/** encodeFileHeader is the file's first RECORDS_AT bytes for salt: the header, then zeros. */
export function encodeFileHeader(salt: Salt): Buffer {
  const out = Buffer.alloc(RECORDS_AT)
  FILE_MAGIC.copy(out, 0)
  out.writeUInt32LE(salt.head, 8)
  out.writeUInt32LE(salt.body, 12)
  out.writeUInt32LE(crc32(out.subarray(0, 16)), 16)
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
  salt: Salt,
): WalRecord | string | undefined {
  const end = headerEnd(buf, got, at, salt)
  if (end === undefined || !bodyOk(buf, at, end, salt)) return undefined
  return decodeBody(buf.subarray(at + HEAD_BYTES, end))
}

// headerEnd is the end of the record at byte at when its header passes its checksum and its
// length fits in the file (a body holds 16 bytes at least), else undefined.
function headerEnd(buf: Buffer, got: number, at: number, salt: Salt): number | undefined {
  if (at + HEAD_BYTES + 16 > got) return undefined
  const end = at + HEAD_BYTES + buf.readUInt32LE(at)
  if (end < at + HEAD_BYTES + 16 || end > got) return undefined
  return buf.readUInt32LE(at + 8) === crc32(buf.subarray(at, at + 8), salt.head) ? end : undefined
}

function bodyOk(buf: Buffer, at: number, end: number, salt: Salt): boolean {
  return buf.readUInt32LE(at + 4) === crc32(buf.subarray(at + HEAD_BYTES, end), salt.body)
}

// readRecycled reads the records of a file in the recycled layout (see the module comment):
// from the file header on, while each follows the one before. It returns them and where the
// next record goes, or throws an Error naming damage before the end of the log.
function readRecycled(
  path: string,
  buf: Buffer,
  got: number,
  salt: Salt,
  covered: number,
): { records: WalRecord[]; end: number } {
  const records: WalRecord[] = []
  let at = RECORDS_AT
  for (;;) {
    const rec = recordAt(buf, got, at, salt)
    if (typeof rec === 'string') throw new Error(`${path}: ${rec}`)
    const prev = records.at(-1)
    if (rec === undefined || (prev !== undefined && rec.seq !== prev.seq + 1)) break
    records.push(rec)
    at += HEAD_BYTES + buf.readUInt32LE(at)
  }
  // The end of the log: nothing past it may be newer than what was read and what LMDB holds.
  // (The seq is read before the body's checksum is computed: most records found are older.)
  const last = records.at(-1)?.seq
  const newest = Math.max(last ?? 0, covered)
  for (let p = at; p + HEAD_BYTES + 16 <= got; p++) {
    const end = headerEnd(buf, got, p, salt)
    if (end === undefined || !(buf.readDoubleLE(p + HEAD_BYTES) > newest)) continue
    if (!bodyOk(buf, p, end, salt)) continue
    const seq = buf.readDoubleLE(p + HEAD_BYTES)
    const after = last === undefined ? 'before any record' : `after record ${last}`
    throw new Error(
      p === at
        ? `${path}: record ${seq} follows record ${last ?? 'none'} (at byte ${p})`
        : `${path}: the log ends at byte ${at}, ${after}, but record ${seq} at byte ${p}, ` +
            `further on, is newer: damage before the end of the log`,
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
function newSalt(): Salt {
  const bytes = randomBytes(8)
  return { head: bytes.readUInt32LE(0), body: bytes.readUInt32LE(4) }
}

/** Wal is the open file; see the module comment. Not safe for two appends at once. */
export class Wal {
  private readonly fd: number
  // salt starts every record's checksums; LEGACY_SALT in a legacy file.
  private salt: Salt
  // Where the next record goes: the end of the last record of the log.
  private offset: number
  // legacy: the file has the older layout (no file header). stale: (legacy only) the file
  // holds bytes past offset (a torn record) or records a checkpoint covers, and the next
  // append cuts it first. headed: the file's header is durable (else the next append writes
  // it first).
  private legacy: boolean
  private stale: boolean
  private headed: boolean

  private constructor(
    fd: number,
    layout:
      | { readonly legacy: true; readonly offset: number; readonly stale: boolean }
      | {
          readonly legacy: false
          readonly offset: number
          readonly salt: Salt
          readonly headed: boolean
        },
  ) {
    this.fd = fd
    this.offset = layout.offset
    this.legacy = layout.legacy
    this.salt = layout.legacy ? LEGACY_SALT : layout.salt
    this.stale = layout.legacy && layout.stale
    this.headed = layout.legacy || layout.headed
  }

  /**
   * open opens (creating) the file at path and reads it whole. covered is the seq of the last
   * record a checkpoint covers (0 if none). It throws an Error naming the problem when a
   * record before the end of the log fails its checksum or its shape.
   */
  static open(path: string, covered = 0): { wal: Wal; records: WalRecord[]; created: boolean } {
    const created = !existsSync(path)
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | DSYNC, 0o644)
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
      // What was read may have come from the page cache only (the last process died before
      // its write returned): durable before anything acts on it.
      if (got > 0) fdatasyncSync(fd)
      const head = buf.subarray(0, Math.min(got, FILE_HEAD_BYTES))
      if (got >= FILE_HEAD_BYTES && head.subarray(0, 8).equals(FILE_MAGIC)) {
        if (head.readUInt32LE(16) !== crc32(head.subarray(0, 16))) {
          throw new Error(`${path}: the file header is damaged`)
        }
        const salt = { head: head.readUInt32LE(8), body: head.readUInt32LE(12) }
        const { records, end } = readRecycled(path, buf, got, salt, covered)
        return {
          wal: new Wal(fd, { legacy: false, offset: end, salt, headed: true }),
          records,
          created,
        }
      }
      if (got < FILE_HEAD_BYTES || buf.subarray(0, got).every((b) => b === 0)) {
        // New, or its header never landed (then nothing was appended): the first append
        // writes one.
        return {
          wal: new Wal(fd, { legacy: false, offset: RECORDS_AT, salt: newSalt(), headed: false }),
          records: [],
          created,
        }
      }
      const { records, end } = readLegacy(path, buf, got)
      return { wal: new Wal(fd, { legacy: true, offset: end, stale: got > end }), records, created }
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** bytes is the size of the records the file holds past the last checkpoint (records
   * read at open included). */
  get bytes(): number {
    return this.offset - (this.legacy ? 0 : RECORDS_AT)
  }

  /** append writes rec at offset and resolves once it is durable. */
  async append(rec: WalRecord): Promise<void> {
    if (this.stale) await this.empty()
    if (!this.headed) {
      // The header is durable before any record is written after it: a record that landed
      // without it would make the file read as one of the older layout, and damaged.
      await durableWrite(this.fd, encodeFileHeader(this.salt), 0)
      this.headed = true
    }
    // Encoded after empty(), which gives a legacy file its salt.
    const record = encodeWalRecord(rec, this.salt)
    await durableWrite(this.fd, record, this.offset)
    this.offset += record.byteLength
  }

  /** checkpointed notes that LMDB now holds everything appended: the next record goes to
   * the start of the file. (A legacy file is cut at offset first: bytes past the last whole
   * record, or, after this, everything.) */
  checkpointed(): void {
    if (this.legacy) {
      if (this.offset > 0) this.stale = true
      this.offset = 0
    } else {
      this.offset = RECORDS_AT
    }
  }

  // empty cuts a legacy file at offset; cut to nothing, it becomes a file of the recycled
  // layout, which the append that called this gives its header.
  private async empty(): Promise<void> {
    await ftruncateAsync(this.fd, this.offset)
    if (this.offset === 0) {
      this.legacy = false
      this.salt = newSalt()
      this.offset = RECORDS_AT
      this.headed = false
    } else {
      await fdatasyncAsync(this.fd)
    }
    this.stale = false
  }

  close(): void {
    closeSync(this.fd)
  }
}

/** DSYNC is the open flag that makes each write durable on return where it does what
 * fdatasync does (Linux), else 0 (module comment). */
export const DSYNC = process.platform === 'linux' ? constants.O_DSYNC : 0

const fdatasyncAsync = promisify(fdatasync)
const ftruncateAsync = promisify(ftruncate)
const writeAsync = promisify(write)

/** durableWrite writes bytes at `at` and resolves once they are durable: with DSYNC the
 * writes are, else an fdatasync follows them. */
async function durableWrite(fd: number, bytes: Buffer, at: number): Promise<void> {
  await writeAll(fd, bytes, at)
  if (DSYNC === 0) await fdatasyncAsync(fd)
}

async function writeAll(fd: number, bytes: Buffer, at: number): Promise<void> {
  let done = 0
  while (done < bytes.byteLength) {
    const { bytesWritten } = await writeAsync(fd, bytes, done, bytes.byteLength - done, at + done)
    done += bytesWritten
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
