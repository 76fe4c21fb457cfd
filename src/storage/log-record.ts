// The on-disk form of one Raft log entry: a fixed header, the entry's data, and a CRC32 over
// both, so a torn or garbled record is caught when read rather than handed to the core. Pure
// byte work; which database holds the records, and what to do about a bad one, is the store's.
import { crc32 } from 'node:zlib'
import type { Entry, EntryType } from '../raft/index.ts'

// Layout, little-endian:
//   0  u32  crc32 of bytes [4, end)
//   4  f64  index (a safe integer; an f64 holds every one exactly)
//  12  f64  term
//  20  u8   type: 0 normal, 1 conf
//  21  ...  data
const CRC_AT = 0
const INDEX_AT = 4
const TERM_AT = 12
const TYPE_AT = 20

/** LOG_RECORD_HEADER_BYTES is the size of a log record without its data. */
export const LOG_RECORD_HEADER_BYTES = 21

/** Decoded is a decoded record, or what is wrong with its bytes. */
export type Decoded<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string }

/** encodeLogRecord turns an entry into its record bytes. */
export function encodeLogRecord(e: Entry): Uint8Array {
  const out = new Uint8Array(LOG_RECORD_HEADER_BYTES + e.data.byteLength)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  view.setFloat64(INDEX_AT, e.index, true)
  view.setFloat64(TERM_AT, e.term, true)
  view.setUint8(TYPE_AT, e.type === 'conf' ? 1 : 0)
  out.set(e.data, LOG_RECORD_HEADER_BYTES)
  view.setUint32(CRC_AT, crc32(out.subarray(INDEX_AT)), true)
  return out
}

/**
 * decodeLogRecord checks a record read at index and returns its entry. The entry's data is a
 * fresh copy: bytes may live in a buffer the database reuses on the next read.
 */
export function decodeLogRecord(bytes: Uint8Array, index: number): Decoded<Entry> {
  const head = checkHeader(bytes, index)
  if (!head.ok) return head
  return {
    ok: true,
    value: {
      index,
      term: head.value.term,
      type: head.value.type,
      data: new Uint8Array(bytes.subarray(LOG_RECORD_HEADER_BYTES)),
    },
  }
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
  if (bytes.byteLength < LOG_RECORD_HEADER_BYTES) {
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
  if (!Number.isSafeInteger(term) || term < 0 || typeByte > 1) {
    return { ok: false, problem: `log record ${index} has a bad header` }
  }
  return { ok: true, value: { term, type: typeByte === 1 ? 'conf' : 'normal' } }
}
