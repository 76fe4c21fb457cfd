// The client's errors: one class per outcome a caller may want to handle differently. Each
// carries the server's numeric code (1001-1005, as the HTTP API sends them), its machine name,
// HTTP status and message (serverMessage, as sent) when a server answered. The error's own
// message is the server's where there is one (a conflict's adds the existing value's ETag);
// errors the client decides itself (a key it refuses before sending, a deadline, every node
// down) have no status, and a message of the client's.

/** ErrorCode is the numeric code of the HTTP API: 1001 bad input, 1002 not found, 1003
 * conflict, 1004 internal, 1005 unavailable. */
export type ErrorCode = 1001 | 1002 | 1003 | 1004 | 1005

/** ErrorDetails are what a server said, when one answered. */
export interface ErrorDetails {
  /** status is the HTTP status of the answer. */
  readonly status?: number
  /** code is the body's numeric code. */
  readonly code?: ErrorCode
  /** error is the body's machine name ("key_conflict", "too_large", ...). */
  readonly error?: string
  /** serverMessage is the body's message, as sent. */
  readonly serverMessage?: string
  readonly cause?: unknown
}

/** OnceKVError is the base of every error the client throws (except an abort the caller asked
 * for, which rejects with the signal's reason, as fetch does). */
export class OnceKVError extends Error {
  override readonly name: string = 'OnceKVError'
  /** code is the server's code, or the code that fits when the client decided alone. */
  readonly code: ErrorCode
  /** status is the HTTP status of the answer; undefined when no server answered. */
  readonly status: number | undefined
  /** error is the server's machine name of the error, when a server answered. */
  readonly error: string | undefined
  /** serverMessage is the message of the server's error body, as sent, when a server answered
   * with one (for an UnavailableError: the last node's answer). */
  readonly serverMessage: string | undefined

  constructor(message: string, code: ErrorCode, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = details.code ?? code
    this.status = details.status
    this.error = details.error
    this.serverMessage = details.serverMessage
  }
}

/** KeyConflictError: the key already holds another value, which stays (a key is written once).
 * Putting the identical value again is a success, never this error. Its message is the
 * server's ('key "k" already holds a different value') with the ETag added. */
export class KeyConflictError extends OnceKVError {
  override readonly name: string = 'KeyConflictError'

  constructor(
    /** key is the key written. */
    readonly key: string,
    /** etag is the strong ETag of the value already there (as GET /keys/<key> sends it,
     * quotes included); undefined if it could not be read. */
    readonly etag: string | undefined,
    details: ErrorDetails = {},
  ) {
    super(
      (details.serverMessage ?? `key ${JSON.stringify(key)} already holds a different value`) +
        (etag === undefined ? '' : ` (etag ${etag})`),
      1003,
      withDefaults(details, { status: 409, error: 'key_conflict' }),
    )
  }
}

/** InvalidKeyError: the key is empty, over 1024 UTF-8 bytes, not valid UTF-8, or cannot be
 * put in a URL ("." and ".."). Thrown before sending, or on a server's 400/413 about the key. */
export class InvalidKeyError extends OnceKVError {
  override readonly name: string = 'InvalidKeyError'

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, 1001, withDefaults(details, { error: 'bad_request' }))
  }
}

/** ValueTooLargeError: the value is over the database's --max-value-bytes (a 413). */
export class ValueTooLargeError extends OnceKVError {
  override readonly name: string = 'ValueTooLargeError'

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, 1001, withDefaults(details, { status: 413, error: 'too_large' }))
  }
}

/** UnavailableError: the servers answered 503 (no leader, no quorum, shutting down) or could
 * not be reached, on every attempt. Retrying later is safe, writes included. */
export class UnavailableError extends OnceKVError {
  override readonly name: string = 'UnavailableError'

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, 1005, details)
  }
}

/** TimeoutError: the call's deadline (timeoutMs) passed, or its signal aborted with a timeout
 * (AbortSignal.timeout). A write that timed out may have been applied: putting it again is
 * safe and reports created: false if it was. */
export class TimeoutError extends OnceKVError {
  override readonly name: string = 'TimeoutError'

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, 1005, details)
  }
}

/** withDefaults fills the fields of details that are undefined. */
function withDefaults(details: ErrorDetails, defaults: ErrorDetails): ErrorDetails {
  return {
    status: details.status ?? defaults.status,
    code: details.code ?? defaults.code,
    error: details.error ?? defaults.error,
    serverMessage: details.serverMessage,
    cause: details.cause,
  }
}
