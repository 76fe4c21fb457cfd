// The commands the database proposes through Raft, and their byte encoding in log entries.
// A put is: version byte 1, key length (u32 BE), key bytes, value bytes; or, for a put a
// follower forwarded to its leader, version byte 2, origin length (u8), origin bytes, then
// as version 1. The origin names the proposal (member, process run, sequence number) so
// that the member that forwarded it recognises the entry when it applies it.
import { assert } from '../base/index.ts'

/** PutCommand creates key with value if the key is absent. */
export interface PutCommand {
  readonly key: Uint8Array
  readonly value: Uint8Array
  /** origin names a forwarded proposal (1 to 255 bytes); absent for the leader's own. */
  readonly origin?: Uint8Array
}

const PUT_V1 = 1
const PUT_V2 = 2

/** ORIGIN_BYTES_MAX is the longest origin a put carries. */
export const ORIGIN_BYTES_MAX = 255

/** encodePut encodes a put for a log entry. */
export function encodePut(cmd: PutCommand): Uint8Array {
  const origin = cmd.origin
  const head = origin === undefined ? 0 : 2 + origin.byteLength
  assert(
    origin === undefined || (origin.byteLength >= 1 && origin.byteLength <= ORIGIN_BYTES_MAX),
    'put origin of 1 to 255 bytes',
  )
  const out = new Uint8Array(head + 5 + cmd.key.byteLength + cmd.value.byteLength)
  if (origin !== undefined) {
    out[0] = PUT_V2
    out[1] = origin.byteLength
    out.set(origin, 2)
  }
  out[head] = PUT_V1
  new DataView(out.buffer).setUint32(head + 1, cmd.key.byteLength)
  out.set(cmd.key, head + 5)
  out.set(cmd.value, head + 5 + cmd.key.byteLength)
  return out
}

/** decodePut decodes a log entry's put. The bytes were validated before they were proposed,
 * so a malformed entry is a bug (or corruption caught by the store's checksums first). */
export function decodePut(data: Uint8Array): PutCommand {
  let origin: Uint8Array | undefined
  let at = 0
  if (data[0] === PUT_V2) {
    const n = data[1] ?? 0
    assert(n >= 1 && 2 + n <= data.byteLength, 'malformed put command: origin')
    origin = data.subarray(2, 2 + n)
    at = 2 + n
  }
  assert(data.byteLength >= at + 5 && data[at] === PUT_V1, 'malformed put command')
  const keyBytes = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(at + 1)
  assert(at + 5 + keyBytes <= data.byteLength, 'malformed put command: key length')
  const key = data.subarray(at + 5, at + 5 + keyBytes)
  const value = data.subarray(at + 5 + keyBytes)
  return origin === undefined ? { key, value } : { key, value, origin }
}
