// The history of a chaos run: every client operation with its invocation and completion times
// (milliseconds on one monotonic clock, the harness process's performance.now()) and its
// outcome. The checker (checker.ts) reads it; runs keep it as JSON lines for inspection.

/** WriteOutcome is what a put of (key, value) came back with.
 * - created: the value was written by this put.
 * - exists: the same value was already there (an identical re-put, or a retry of this put).
 * - conflict: another value is there.
 * - indeterminate: an error or a timeout: the put may or may not have taken effect.
 * - failed: the connection was refused, so the request was never sent: it took no effect. */
export type WriteOutcome = 'created' | 'exists' | 'conflict' | 'indeterminate' | 'failed'

/** ReadOutcome is what a read of a key came back with: the value, "not found", or an error
 * (an error says nothing about the key). */
export type ReadOutcome = 'value' | 'not_found' | 'error'

/** WriteOp is one put. Values are strings (the chaos clients write text values). */
export interface WriteOp {
  readonly kind: 'write'
  /** id is unique in the history. */
  readonly id: number
  readonly client: number
  readonly key: string
  readonly value: string
  /** invokedAt and completedAt are in ms; an indeterminate op's completedAt is when the client
   * gave up (the put may still take effect later). */
  readonly invokedAt: number
  readonly completedAt: number
  readonly outcome: WriteOutcome
  /** node is the URL the final attempt went to. */
  readonly node: string
  /** error describes an indeterminate outcome. */
  readonly error?: string
}

/** ReadOp is one read. */
export interface ReadOp {
  readonly kind: 'read'
  readonly id: number
  readonly client: number
  readonly key: string
  readonly invokedAt: number
  readonly completedAt: number
  readonly outcome: ReadOutcome
  /** value is the value read (outcome 'value' only). */
  readonly value?: string
  /** node is the URL that answered; via says through which tier. */
  readonly node: string
  readonly via: 'cache' | 'db'
  readonly error?: string
}

export type Op = WriteOp | ReadOp

/** FinalData is one member's whole key/value data after the run, healed and converged. */
export interface FinalData {
  readonly member: string
  readonly data: ReadonlyMap<string, string>
}
