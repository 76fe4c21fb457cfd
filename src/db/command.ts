// The commands the database proposes through Raft, and their byte encoding in log entries.
// A put is: version byte 1, key length (u32 BE), key bytes, value bytes.
import { assert } from '../base/index.ts'

/** PutCommand creates key with value if the key is absent. */
export interface PutCommand {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

const PUT_V1 = 1

/** encodePut encodes a put for a log entry. */
export function encodePut(cmd: PutCommand): Uint8Array {
  const out = new Uint8Array(5 + cmd.key.byteLength + cmd.value.byteLength)
  out[0] = PUT_V1
  new DataView(out.buffer).setUint32(1, cmd.key.byteLength)
  out.set(cmd.key, 5)
  out.set(cmd.value, 5 + cmd.key.byteLength)
  return out
}

/** decodePut decodes a log entry's put. The bytes were validated before they were proposed,
 * so a malformed entry is a bug (or corruption caught by the store's checksums first). */
export function decodePut(data: Uint8Array): PutCommand {
  assert(data.byteLength >= 5 && data[0] === PUT_V1, 'malformed put command')
  const keyBytes = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1)
  assert(5 + keyBytes <= data.byteLength, 'malformed put command: key length')
  return { key: data.subarray(5, 5 + keyBytes), value: data.subarray(5 + keyBytes) }
}
