// The storage layer's one error class. A corrupt store is fail-stop for its member: the host
// stops the node and an operator repairs it (usually by wiping the directory and letting the
// member rejoin from a snapshot). Turning it into logs, exit codes or responses is the host's.

/** StoreCorruptError reports a store whose bytes cannot be trusted: a record that fails its
 * checksum, a gap in the log, an unreadable metadata record, a data file LMDB cannot use, or
 * a snapshot pair that contradicts data already held. The message names the directory. */
export class StoreCorruptError extends Error {
  override readonly name = 'StoreCorruptError'

  constructor(
    /** dir is the store's directory. */
    readonly dir: string,
    /** detail says what is wrong, in words an operator can act on. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`store ${dir} is corrupt: ${detail}`, options)
  }
}

/** StoreIdentityError reports a data directory started as a member it does not belong to. */
export class StoreIdentityError extends Error {
  override readonly name = 'StoreIdentityError'

  constructor(
    readonly dir: string,
    readonly storedId: string,
    readonly givenId: string,
  ) {
    super(
      `data directory ${dir} belongs to member ${storedId}, not ${givenId}: ` +
        `start it with --id ${storedId}, or give ${givenId} a directory of its own`,
    )
  }
}
