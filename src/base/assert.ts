// Assertions for invariants. A failed assertion is a bug: it throws, and the process (or the
// simulation) stops rather than continue in a wrong state. Expected outcomes are never asserted.

/** AssertionError is thrown when an invariant does not hold. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError'
}

/** assert throws an AssertionError with the message when cond is false. */
export function assert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new AssertionError(typeof message === 'string' ? message : message())
}

/** assertNever ends an exhaustive switch: the compiler proves it unreachable. */
export function assertNever(value: never): never {
  throw new AssertionError(`unexpected value: ${JSON.stringify(value)}`)
}
