// The storage layer's one error class. A corrupt store is fail-stop for its member: the host
// stops the node and an operator repairs it (usually by wiping the directory and letting the
// member rejoin from a snapshot). Turning it into logs, exit codes or responses is the host's.

/** StoreCorruptError reports a store whose bytes cannot be trusted: a record that fails its
 * checksum, a gap in the log, an unreadable metadata record, a data file LMDB cannot use, or
 * a snapshot pair that contradicts data already held. The message names the directory. */
export class StoreCorruptError extends Error {
  override readonly name: string = 'StoreCorruptError'

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

/** ValueCorruptError reports one stored value that fails its checksum. Reading it fails (the
 * member answers that key with an error and keeps serving the others); applying a write to
 * that key, or sending it in a snapshot, stops the member like any other StoreCorruptError. */
export class ValueCorruptError extends StoreCorruptError {
  override readonly name = 'ValueCorruptError'

  constructor(
    dir: string,
    /** keyHex is the start of the key, in hex. */
    readonly keyHex: string,
  ) {
    super(dir, `the value of key ${keyHex} fails its checksum (damaged on disk)`)
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
