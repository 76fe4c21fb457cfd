// The error vocabulary of the HTTP API, shared by servers and clients: one class per expected
// outcome, each with the status, the numeric code of the original oncekv (1000-1005) and a
// machine name. Servers throw these; exactly one function in src/http turns them into bodies.
// 1006 is oncekv's own: a member whose disk cannot take writes (StorageUnavailableError).

/** ErrorCode is the numeric status code of the original oncekv (1000-1005), or 1006. */
export type ErrorCode = 1001 | 1002 | 1003 | 1004 | 1005 | 1006

/** ErrorName is the machine-readable name of an error. */
export type ErrorName =
  | 'bad_request'
  | 'too_large'
  | 'not_found'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'forbidden'
  | 'unsupported_media_type'
  | 'key_not_found'
  | 'key_conflict'
  | 'member_conflict'
  | 'member_not_found'
  | 'internal'
  | 'unavailable'
  | 'removed'
  | 'no_leader'
  | 'outcome_unknown'
  | 'storage_unavailable'
  | 'uri_too_long'
  | 'request_timeout'
  | 'too_many_requests'

/** ErrorBody is the JSON body of every error response. */
export interface ErrorBody {
  readonly code: ErrorCode
  readonly error: ErrorName
  readonly message: string
}

/** OnceKvError is the base of every expected error. */
export abstract class OnceKvError extends Error {
  abstract readonly status: number
  abstract readonly code: ErrorCode
  abstract readonly error: ErrorName

  /** body is the error as the API sends it. */
  body(): ErrorBody {
    return { code: this.code, error: this.error, message: this.message }
  }
}

/** BadRequestError: malformed input (key, JSON, encoding, parameters). */
export class BadRequestError extends OnceKvError {
  readonly status = 400
  readonly code = 1001
  readonly error = 'bad_request'
}

/** PayloadTooLargeError: a key, value or body over its limit. */
export class PayloadTooLargeError extends OnceKvError {
  readonly status = 413
  readonly code = 1001
  readonly error = 'too_large'
}

/** UnauthorizedError: the route needs a token and the request carries none (servers add
 * `WWW-Authenticate: Bearer`). */
export class UnauthorizedError extends OnceKvError {
  readonly status = 401
  readonly code = 1001
  readonly error = 'unauthorized'
}

/** ForbiddenError: the request comes from a page or host this node does not serve, or
 * carries a token that this route does not take. */
/** UriTooLongError: a request URL over the listener's --max-url-bytes. */
export class UriTooLongError extends OnceKvError {
  readonly status = 414
  readonly code = 1001
  readonly error = 'uri_too_long'
}

/** RequestTimeoutError: the request did not arrive in time (--headers-timeout-ms,
 * --request-timeout-ms); the connection is closed. */
export class RequestTimeoutError extends OnceKvError {
  readonly status = 408
  readonly code = 1005
  readonly error = 'request_timeout'
}

/** TooManyRequestsError: more pipelined requests on one connection than the listener takes
 * (--max-in-flight-per-connection); the connection is closed. Retry on a new connection. */
export class TooManyRequestsError extends OnceKvError {
  readonly status = 429
  readonly code = 1005
  readonly error = 'too_many_requests'
}

/** ForbiddenError: the request comes from a page or host this node does not serve. */
export class ForbiddenError extends OnceKvError {
  readonly status = 403
  readonly code = 1001
  readonly error = 'forbidden'
}

/** UnsupportedMediaTypeError: a body of a content type the route does not take. */
export class UnsupportedMediaTypeError extends OnceKvError {
  readonly status = 415
  readonly code = 1001
  readonly error = 'unsupported_media_type'
}

/** RouteNotFoundError: no such route. */
export class RouteNotFoundError extends OnceKvError {
  readonly status = 404
  readonly code = 1001
  readonly error = 'not_found'
}

/** MethodNotAllowedError: the route exists, the method does not. */
export class MethodNotAllowedError extends OnceKvError {
  readonly status = 405
  readonly code = 1001
  readonly error = 'method_not_allowed'
}

/** KeyNotFoundError: the key has no value (confirmed linearizably unless stale was asked). */
export class KeyNotFoundError extends OnceKvError {
  readonly status = 404
  readonly code = 1002
  readonly error = 'key_not_found'
  constructor(readonly key: string) {
    super(`key ${JSON.stringify(key)} not found`)
  }
}

/** KeyConflictError: the key already holds other bytes. Identical bytes are a success. */
export class KeyConflictError extends OnceKvError {
  readonly status = 409
  readonly code = 1003
  readonly error = 'key_conflict'
  constructor(readonly key: string) {
    super(`key ${JSON.stringify(key)} already holds a different value`)
  }
}

/** MemberConflictError: a membership request that contradicts the configuration. */
export class MemberConflictError extends OnceKvError {
  readonly status = 409
  readonly code = 1003
  readonly error = 'member_conflict'
}

/** MemberNotFoundError: a membership request names an id that is not a member of the cluster
 * (a voter or a learner). A 404 with code 1001, like an unknown route: code 1002 means "key not
 * found", which clients take as a final answer about a key. */
export class MemberNotFoundError extends OnceKvError {
  readonly status = 404
  readonly code = 1001
  readonly error = 'member_not_found'
}

/** UnavailableError: no leader, no quorum, a commit timeout, or shutting down. Retry later. */
export class UnavailableError extends OnceKvError {
  readonly status = 503
  readonly code: ErrorCode = 1005
  readonly error: ErrorName = 'unavailable'
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(message)
  }
}

/** RemovedError: this member was removed from the cluster, for good; use another member. It
 * is a 503 like UnavailableError (clients move on), with its own name. */
export class RemovedError extends UnavailableError {
  override readonly error: ErrorName = 'removed'
  constructor() {
    super('this member was removed from the cluster; use another member', 60)
  }
}

/** NoLeaderError: this member has known no leader for longer than an election takes, so no
 * quorum is reachable from it. Nothing was written; retrying (later, or elsewhere) is safe. */
export class NoLeaderError extends UnavailableError {
  override readonly error: ErrorName = 'no_leader'
  constructor(
    message = 'no leader: the cluster has no quorum reachable from this member; retrying is safe',
  ) {
    super(message)
  }
}

/** OutcomeUnknownError: the write reached a leader that lost its quorum before the write
 * committed; it may apply later or never. Retrying with the same value is safe. */
export class OutcomeUnknownError extends UnavailableError {
  override readonly error: ErrorName = 'outcome_unknown'
}

/** StorageUnavailableError: this member's data directory cannot take writes (the disk is
 * full, or it is read-only); the message names the cause and the directory. Nothing was
 * written by this request; a write already in flight may still apply elsewhere, so retrying
 * with the same value is safe. The member recovers by itself once space returns. */
export class StorageUnavailableError extends UnavailableError {
  override readonly code: ErrorCode = 1006
  override readonly error: ErrorName = 'storage_unavailable'
}

/** InternalError: a bug. The message sent is generic; the cause is logged. */
export class InternalError extends OnceKvError {
  readonly status = 500
  readonly code = 1004
  readonly error = 'internal'
}

/** withoutStack builds an expected error whose stack nobody reads (a 404 or 409 answered at
 * once, or thrown only to a route's error handler, which logs internal errors alone) without
 * the stack trace V8 captures for every error: about 11 µs here from a dozen frames deep,
 * against under 2 µs without. */
export function withoutStack<E extends OnceKvError>(make: () => E): E {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** errorFromBody rebuilds an error from a response (clients, forwarding). */
export function errorFromBody(status: number, body: unknown, key = ''): OnceKvError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Partial<ErrorBody>
  const message = typeof b.message === 'string' ? b.message : `HTTP ${status}`
  switch (b.error) {
    case 'key_conflict':
      return new KeyConflictError(key)
    case 'member_conflict':
      return new MemberConflictError(message)
    case 'member_not_found':
      return new MemberNotFoundError(message)
    case 'key_not_found':
      return new KeyNotFoundError(key)
    case 'too_large':
      return new PayloadTooLargeError(message)
    case 'unavailable':
      return new UnavailableError(message)
    case 'no_leader':
      return new NoLeaderError(message)
    case 'outcome_unknown':
      return new OutcomeUnknownError(message)
    case 'storage_unavailable':
      return new StorageUnavailableError(message)
    case 'bad_request':
      return new BadRequestError(message)
    case 'unauthorized':
      return new UnauthorizedError(message)
    case 'forbidden':
      return new ForbiddenError(message)
    default:
      if (status === 503) return new UnavailableError(message)
      if (status === 401) return new UnauthorizedError(message)
      if (status === 403) return new ForbiddenError(message)
      if (status >= 400 && status < 500) return new BadRequestError(message)
      return new InternalError(message)
  }
}
