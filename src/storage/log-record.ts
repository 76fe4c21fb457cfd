// The on-disk form of one Raft log entry: a fixed header, the entry's data, and a CRC32 over
// both, so a torn or garbled record is caught when read rather than handed to the core. Pure
// byte work; which database holds the records, and what to do about a bad one, is the store's.
//
// A record may leave the tail of its data in the value file (layout version 6): once a put
// entry is applied, the bytes of its value are in the value file anyway, so the record LMDB
// keeps refers to them instead of holding a second copy. A 4 KiB value's record then takes
// a few dozen bytes of a B-tree page instead of two overflow pages, which LMDB must read
// back (into the member's resident memory) when compaction deletes them.
import { crc32 } from 'node:zlib'
import type { Entry, EntryType } from '../raft/index.ts'

// Layout, little-endian:
//   0  u32  crc32 of bytes [4, end)
//   4  f64  index (a safe integer; an f64 holds every one exactly)
//  12  f64  term
//  20  u8   type: 0 normal, 1 conf, 2 normal with the data's tail in the value file
//  21  ...  data (types 0 and 1)
// Type 2 (written by the store only, never sent or written to the write-ahead file):
//  21  f64  the tail's offset in the value file
//  29  u32  the tail's length
//  33  u32  crc32 of the tail's bytes
//  37  ...  the data before the tail
const CRC_AT = 0
const INDEX_AT = 4
const TERM_AT = 12
const TYPE_AT = 20
const TAIL_OFFSET_AT = 21
const TAIL_LENGTH_AT = 29
const TAIL_CRC_AT = 33
const TYPE_NORMAL = 0
const TYPE_CONF = 1
const TYPE_TAIL_REF = 2

/** LOG_RECORD_HEADER_BYTES is the size of a log record without its data. */
export const LOG_RECORD_HEADER_BYTES = 21
/** TAIL_REF_HEADER_BYTES is the size of a record that refers to its data's tail, without
 * the data before the tail. */
export const TAIL_REF_HEADER_BYTES = 37

/** ReadTail reads length bytes at offset in the value file (undefined past its end). */
export type ReadTail = (offset: number, length: number) => Uint8Array | undefined

/** Decoded is a decoded record, or what is wrong with its bytes. */
export type Decoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string }

/** encodeLogRecord turns an entry into its record bytes. */
export function encodeLogRecord(e: Entry): Uint8Array {
  const out = new Uint8Array(LOG_RECORD_HEADER_BYTES + e.data.byteLength)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setFloat64(INDEX_AT, e.index, true)
  view.setFloat64(TERM_AT, e.term, true)
  view.setUint8(TYPE_AT, e.type === 'conf' ? TYPE_CONF : TYPE_NORMAL)
  out.set(e.data, LOG_RECORD_HEADER_BYTES)
  view.setUint32(CRC_AT, crc32(out.subarray(INDEX_AT)), true)
  return out
}

/**
 * tailRefRecord is record (encodeLogRecord's form) with the bytes of tail, which end its
 * data, left in the value file at offset; or undefined when record is not a normal entry's
 * or its data does not end with tail. The caller makes sure the value file holds tail there,
 * durably by the time the result is.
 */
export function tailRefRecord(
  record: Uint8Array,
  tail: Uint8Array,
  offset: number,
): Uint8Array | undefined {
  const tailLength = tail.byteLength
  const dataBytes = record.byteLength - LOG_RECORD_HEADER_BYTES
  if (dataBytes < tailLength || record[TYPE_AT] !== TYPE_NORMAL) return undefined
  const headBytes = dataBytes - tailLength
  if (Buffer.compare(record.subarray(LOG_RECORD_HEADER_BYTES + headBytes), tail) !== 0) {
    return undefined
  }
  const out = new Uint8Array(TAIL_REF_HEADER_BYTES + headBytes)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  out.set(record.subarray(INDEX_AT, TYPE_AT), INDEX_AT)
  view.setUint8(TYPE_AT, TYPE_TAIL_REF)
  view.setFloat64(TAIL_OFFSET_AT, offset, true)
  view.setUint32(TAIL_LENGTH_AT, tailLength, true)
  view.setUint32(TAIL_CRC_AT, crc32(tail), true)
  out.set(
    record.subarray(LOG_RECORD_HEADER_BYTES, LOG_RECORD_HEADER_BYTES + headBytes),
    TAIL_REF_HEADER_BYTES,
  )
  view.setUint32(CRC_AT, crc32(out.subarray(INDEX_AT)), true)
  return out
}

/** isTailRef tells whether a record (checked or not) leaves its data's tail in the value
 * file. */
export function isTailRef(bytes: Uint8Array): boolean {
  return bytes.byteLength > TYPE_AT && bytes[TYPE_AT] === TYPE_TAIL_REF
}

/**
 * decodeLogRecord checks a record read at index and returns its entry. The entry's data is a
 * fresh copy: bytes may live in a buffer the database reuses on the next read. A record that
 * refers to its data's tail reads it with readTail and checks it against its checksum.
 */
export function decodeLogRecord(
  bytes: Uint8Array,
  index: number,
  readTail?: ReadTail,
): Decoded<Entry> {
  const head = checkHeader(bytes, index)
  if (!head.ok) return head
  const { term, type } = head.value
  if (bytes[TYPE_AT] !== TYPE_TAIL_REF) {
    return {
      ok: true,
      value: { index, term, type, data: new Uint8Array(bytes.subarray(LOG_RECORD_HEADER_BYTES)) },
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const offset = view.getFloat64(TAIL_OFFSET_AT, true)
  const length = view.getUint32(TAIL_LENGTH_AT, true)
  const tail = readTail?.(offset, length)
  if (tail === undefined || tail.byteLength !== length) {
    return {
      ok: false,
      problem: `log entry ${index}: ${length} bytes at ${offset} in the value file are missing`,
    }
  }
  if (crc32(tail) !== view.getUint32(TAIL_CRC_AT, true)) {
    return {
      ok: false,
      problem: `log entry ${index}: its ${length} bytes at ${offset} in the value file fail their checksum`,
    }
  }
  const front = bytes.subarray(TAIL_REF_HEADER_BYTES)
  const data = new Uint8Array(front.byteLength + length)
  data.set(front)
  data.set(tail, front.byteLength)
  return { ok: true, value: { index, term, type, data } }
}

/** logRecordIndex is the index a record says it holds (unchecked: check it with
 * decodeLogRecordTerm), or undefined if it is too short to say. */
export function logRecordIndex(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < LOG_RECORD_HEADER_BYTES) return undefined
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(INDEX_AT, true)
}

/** decodeLogRecordTerm checks a record read at index and returns only its term. */
export function decodeLogRecordTerm(bytes: Uint8Array, index: number): Decoded<number> {
  const head = checkHeader(bytes, index)
  return head.ok ? { ok: true, value: head.value.term } : head
}

function checkHeader(bytes: Uint8Array, index: number): Decoded<{ term: number; type: EntryType }> {
  const typeAt = bytes.byteLength > TYPE_AT ? bytes[TYPE_AT] : undefined
  const minBytes = typeAt === TYPE_TAIL_REF ? TAIL_REF_HEADER_BYTES : LOG_RECORD_HEADER_BYTES
  if (bytes.byteLength < minBytes) {
    return { ok: false, problem: `log record ${index} is ${bytes.byteLength} bytes, too short` }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const stored = view.getUint32(CRC_AT, true)
  const actual = crc32(bytes.subarray(INDEX_AT))
  if (stored !== actual) {
    return { ok: false, problem: `log record ${index} fails its checksum (torn or garbled)` }
  }
  const recordIndex = view.getFloat64(INDEX_AT, true)
  if (recordIndex !== index) {
    return { ok: false, problem: `log record under key ${index} holds entry ${recordIndex}` }
  }
  const term = view.getFloat64(TERM_AT, true)
  const typeByte = view.getUint8(TYPE_AT)
  if (!Number.isSafeInteger(term) || term < 0 || typeByte > TYPE_TAIL_REF) {
    return { ok: false, problem: `log record ${index} has a bad header` }
  }
  if (typeByte === TYPE_TAIL_REF) {
    const offset = view.getFloat64(TAIL_OFFSET_AT, true)
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return { ok: false, problem: `log record ${index} has a bad reference` }
    }
  }
  return { ok: true, value: { term, type: typeByte === TYPE_CONF ? 'conf' : 'normal' } }
}
