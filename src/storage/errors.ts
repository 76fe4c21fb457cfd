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

/** DiskProblem is why a data directory cannot take writes: its file system is (nearly)
 * full, or it is mounted read-only or not writable by this process. */
export type DiskProblem = 'full' | 'read_only'

/** DiskUnavailableError reports a write the store refused before it touched the data file:
 * the file system holding the directory has too little free space for it (below the
 * reserve), or cannot be written. The store is unchanged and stays usable: reads work, and
 * the same write succeeds once space returns. */
export class DiskUnavailableError extends Error {
  override readonly name = 'DiskUnavailableError'

  constructor(
    readonly dir: string,
    readonly problem: DiskProblem,
    /** detail gives the figures or the system error, for the log. */
    readonly detail: string,
  ) {
    super(
      problem === 'full'
        ? `disk full at ${dir} (${detail})`
        : `data directory ${dir} is read-only (${detail})`,
    )
  }
}

/** DiskFailedError reports a write or sync that the file system refused while LMDB was
 * writing (no space, a quota, a read-only or failing disk). The transaction did not commit,
 * so the data file still holds the last committed state, but the store fails stop: the
 * process must exit at once (lmdb-js 3.5 overruns a heap buffer when it reports a failed
 * page write, so the process cannot be trusted to go on). A restart reopens the store. */
export class DiskFailedError extends Error {
  override readonly name = 'DiskFailedError'

  constructor(
    readonly dir: string,
    readonly errno: string,
    options: { cause: unknown },
  ) {
    super(`writing to ${dir} failed (${errno}): ${describeErrno(errno)}`, options)
  }
}

// System and LMDB error numbers a write can fail with when the disk, not the data, is the
// problem. lmdb-js reports a system error as its positive errno in `code`; Node's fs as a
// string. MDB_MAP_FULL (-30792) is LMDB's own map running out, which lmdb-js normally grows.
const DISK_ERRNOS: Record<number, string> = {
  5: 'EIO',
  13: 'EACCES',
  28: 'ENOSPC',
  30: 'EROFS',
  122: 'EDQUOT',
  [-30792]: 'MDB_MAP_FULL',
}

/** diskErrno names the error number of err if it is a disk-level write failure (ENOSPC,
 * EDQUOT, EROFS, EIO, EACCES, MDB_MAP_FULL), else undefined. */
export function diskErrno(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = (err as { code?: unknown }).code
  if (typeof code === 'number') return DISK_ERRNOS[code]
  if (typeof code === 'string' && Object.values(DISK_ERRNOS).includes(code)) return code
  return undefined
}

function describeErrno(errno: string): string {
  switch (errno) {
    case 'ENOSPC':
      return 'the disk is full'
    case 'EDQUOT':
      return 'the disk quota is exhausted'
    case 'EROFS':
      return 'the file system is read-only'
    case 'EACCES':
      return 'permission denied'
    case 'MDB_MAP_FULL':
      return "LMDB's map is full"
    default:
      return 'an I/O error'
  }
}
