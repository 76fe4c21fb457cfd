// The stored forms of a value, each with a CRC-32 of the key and the value, so that a value
// damaged on disk (a flipped bit, a torn page) or found under another key is detected when it
// is read, and never served or replicated.
//
// A value reference (layout version 4), what LMDB's 'keys' database holds per key:
//   0  u8   kind: 1 the value follows (small values), 2 the value is in the value file
//   1  u32  crc32 of the key's bytes followed by the value's bytes (little endian)
//   kind 1:  5  the value
//   kind 2:  5  u32 the value's length, 9 u32 + 13 u32 its offset in the value file (low,
//               high: 17 B in all)
//
// A value record (layout versions 2 and 3, LMDB's 'kv' database; moved when upgrading):
//   0  u32  crc32 of the key's bytes followed by the value's bytes (little endian)
//   4  ...  the value
import { crc32 } from 'node:zlib'

/** VALUE_HEADER_BYTES is the size of a value record's header. */
export const VALUE_HEADER_BYTES = 4

/** INLINE_VALUE_MAX is the largest value a reference holds itself: a reference to the value
 * file takes 17 B, and a read from LMDB's map costs no system call. */
export const INLINE_VALUE_MAX = 32

const INLINE = 1
const IN_FILE = 2
const REF_HEAD = 5
const FILE_REF_BYTES = 17

/** valueChecksum is the CRC-32 stored with value under key. */
export function valueChecksum(key: Uint8Array, value: Uint8Array): number {
  // Node.js 20's crc32 answers 0, not the running value, for an empty array whose buffer is
  // empty too (a copy of an empty value): an empty value adds nothing to the checksum.
  const head = crc32(key)
  return value.byteLength === 0 ? head : crc32(value, head)
}

/** encodeValueRecord is value as a version 2-3 record under key (tests make old stores). */
export function encodeValueRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(VALUE_HEADER_BYTES + value.byteLength)
  new DataView(out.buffer).setUint32(0, valueChecksum(key, value), true)
  out.set(value, VALUE_HEADER_BYTES)
  return out
}

/** encodeInlineRef is a reference holding value itself. */
export function encodeInlineRef(crc: number, value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(REF_HEAD + value.byteLength)
  out[0] = INLINE
  out.writeUInt32LE(crc, 1)
  out.set(value, REF_HEAD)
  return out
}

/** encodeFileRef is a reference to length bytes at offset in the value file. */
export function encodeFileRef(crc: number, length: number, offset: number): Buffer {
  const out = Buffer.allocUnsafe(FILE_REF_BYTES)
  out[0] = IN_FILE
  out.writeUInt32LE(crc, 1)
  out.writeUInt32LE(length, 5)
  out.writeUInt32LE(offset % 2 ** 32, 9)
  out.writeUInt32LE(Math.floor(offset / 2 ** 32), 13)
  return out
}

/** ValueRef is a decoded reference: the value itself (a view into the record) or where the
 * value file holds it, with the checksum either must match. */
export type ValueRef =
  | { readonly inFile: false; readonly crc: number; readonly value: Uint8Array }
  | {
      readonly inFile: true
      readonly crc: number
      readonly length: number
      readonly offset: number
    }

/** decodeValueRef parses a reference, or is undefined when its shape is wrong. */
export function decodeValueRef(record: Uint8Array): ValueRef | undefined {
  if (record.byteLength < REF_HEAD) return undefined
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength)
  const crc = view.getUint32(1, true)
  if (record[0] === INLINE) return { inFile: false, crc, value: record.subarray(REF_HEAD) }
  if (record[0] !== IN_FILE || record.byteLength !== FILE_REF_BYTES) return undefined
  const length = view.getUint32(5, true)
  const offset = view.getUint32(9, true) + view.getUint32(13, true) * 2 ** 32
  return { inFile: true, crc, length, offset }
}
