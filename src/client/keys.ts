// Key rules as the client applies them before sending: the server's (1 to 1024 bytes of
// UTF-8, src/protocol/keys.ts), plus the two keys a URL path cannot carry.
import { InvalidKeyError } from './errors.ts'

/** KEY_BYTES_MAX is the largest key in UTF-8 bytes (the server's limit). */
export const KEY_BYTES_MAX = 1024

const encoder = new TextEncoder()

/** checkKey throws InvalidKeyError for a key the server would refuse or that cannot be sent. */
export function checkKey(key: string): void {
  if (typeof key !== 'string') throw new InvalidKeyError('key must be a string')
  if (key.length === 0) throw new InvalidKeyError('key must not be empty')
  checkSendable(key)
  // A UTF-16 code unit is at most 3 UTF-8 bytes: most keys need no encoding to be checked.
  if (key.length * 3 <= KEY_BYTES_MAX) return
  const bytes = encoder.encode(key).byteLength
  if (bytes > KEY_BYTES_MAX)
    throw new InvalidKeyError(`key is ${bytes} bytes; the limit is ${KEY_BYTES_MAX}`)
}

/** checkSendable throws InvalidKeyError for a key no request can carry: lone surrogates are
 * not UTF-8, and URLs resolve the path segments "." and ".." (even escaped as %2E) away. */
export function checkSendable(key: string): void {
  if (!key.isWellFormed()) throw new InvalidKeyError('key is not valid UTF-8 (a lone surrogate)')
  if (key === '.' || key === '..')
    throw new InvalidKeyError(`the key ${JSON.stringify(key)} cannot be sent in a URL path`)
}

/** keyPath is the path of a key's raw-bytes route. */
export function keyPath(key: string): string {
  return `/keys/${encodeURIComponent(key)}`
}
