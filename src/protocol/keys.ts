// Key and value rules shared by every tier: a key is 1 to 1024 bytes of UTF-8, a value is
// bytes up to a configured limit (1 MiB by default).
import { BadRequestError, PayloadTooLargeError } from './errors.ts'

/** KEY_BYTES_MAX is the largest key, in UTF-8 bytes. */
export const KEY_BYTES_MAX = 1024

/** VALUE_BYTES_MAX_DEFAULT is the default largest value. */
export const VALUE_BYTES_MAX_DEFAULT = 1024 * 1024

/** keyBytes validates a key and returns its UTF-8 bytes; it throws BadRequestError or
 * PayloadTooLargeError. Lone surrogates are not valid UTF-8 and are refused. */
export function keyBytes(key: unknown, limit = KEY_BYTES_MAX): Uint8Array {
  if (typeof key !== 'string') throw new BadRequestError('key must be a string')
  if (key.length === 0) throw new BadRequestError('key must not be empty')
  if (!key.isWellFormed()) throw new BadRequestError('key is not valid UTF-8')
  // Buffer.from takes a short key's bytes from Node's shared pool: TextEncoder allocates a
  // backing store of its own per call, which showed in profiles of reads (about 3x slower,
  // and more for the collector). A well-formed string encodes the same either way.
  const encoded = Buffer.from(key, 'utf8')
  const bytes = new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength)
  if (bytes.byteLength > limit) {
    throw new PayloadTooLargeError(`key is ${bytes.byteLength} bytes; the limit is ${limit}`)
  }
  return bytes
}

/** jsonValueBytes validates the value of a JSON write ({"key", "value"}) and returns its UTF-8
 * bytes; it throws BadRequestError. A JSON value is text: a lone surrogate (a "\ud800"
 * escape) has no UTF-8 form, and is refused rather than stored as U+FFFD. */
export function jsonValueBytes(value: unknown): Uint8Array {
  if (typeof value !== 'string') throw new BadRequestError('value must be a string')
  if (!value.isWellFormed())
    throw new BadRequestError(
      'value is not valid UTF-8 (a lone surrogate); a JSON value is text: send other bytes ' +
        'with PUT /keys/<key>',
    )
  return new TextEncoder().encode(value)
}

/** checkKey validates a key like keyBytes, without encoding it when it is short enough that
 * its UTF-8 form cannot be over the limit (the hot path of reads). */
export function checkKey(key: unknown): asserts key is string {
  if (
    typeof key === 'string' &&
    key.length > 0 &&
    key.length * 3 <= KEY_BYTES_MAX &&
    key.isWellFormed()
  )
    return
  keyBytes(key)
}

/** checkValueSize throws PayloadTooLargeError when a value is over the limit. */
export function checkValueSize(bytes: number, limit: number): void {
  if (bytes > limit)
    throw new PayloadTooLargeError(`value is ${bytes} bytes; the limit is ${limit}`)
}
