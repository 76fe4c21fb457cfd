// The stored form of a value: its bytes after a CRC-32 of the key and the value, so that a
// value damaged on disk (a flipped bit, a torn page) or found under another key is detected
// when it is read, and never served or replicated.
//
//   0  u32  crc32 of the key's bytes followed by the value's bytes (little endian)
//   4  ...  the value
import { crc32 } from 'node:zlib'

/** VALUE_HEADER_BYTES is the size of the record's header. */
export const VALUE_HEADER_BYTES = 4

function checksum(key: Uint8Array, value: Uint8Array): number {
  return crc32(value, crc32(key))
}

/** encodeValueRecord is value as stored under key. */
export function encodeValueRecord(key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(VALUE_HEADER_BYTES + value.byteLength)
  new DataView(out.buffer).setUint32(0, checksum(key, value), true)
  out.set(value, VALUE_HEADER_BYTES)
  return out
}

/** decodeValueRecord is the value of a record stored under key (a view into record), or
 * undefined when the record fails its checksum. */
export function decodeValueRecord(key: Uint8Array, record: Uint8Array): Uint8Array | undefined {
  if (record.byteLength < VALUE_HEADER_BYTES) return undefined
  const value = record.subarray(VALUE_HEADER_BYTES)
  const stored = new DataView(record.buffer, record.byteOffset, VALUE_HEADER_BYTES).getUint32(
    0,
    true,
  )
  return stored === checksum(key, value) ? value : undefined
}
