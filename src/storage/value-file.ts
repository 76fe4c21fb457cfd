// The value file beside LmdbStore's data file (values.dat): the bytes of every value too big
// to keep in LMDB's key index, appended one after another, never rewritten. LMDB maps each
// key to a reference (value-record.ts: offset, length, checksum) instead of the value, and
// keeps the log record of the entry that put it as a reference to it too (log-record.ts).
//
// Why: LMDB serves reads from a memory map, so every page of its data file that was ever
// read counts in the member's resident memory; with the values in it, a member holding
// 1,000,000 keys of 100 B mapped 215 MiB of B-tree pages 57 % full. Read with pread, the
// values stay in the kernel's page cache without counting there, and the index that remains
// mapped is a fraction of the size (bench/NOTES.md).
//
// Durability. Values are staged in memory and written with the transaction that refers to
// them: flush() appends them at the durable end and fdatasyncs before that transaction
// commits, which also records the new end ('valuesEnd'). A crash before the commit leaves
// bytes past the recorded end that nothing refers to: open() cuts them. The file never
// shrinks otherwise: a key, once set, is never removed.
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  writev,
  writevSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { syncDir } from './wal.ts'

/** ValueFile is the open file; see the module comment. One writer at a time. */
export class ValueFile {
  private readonly fd: number
  // The end of the durable part, which every committed reference lies below.
  private durableEnd: number
  // Values staged for the next flush, to be written from durableEnd on.
  private staged: Uint8Array[] = []
  private stagedBytes = 0

  private constructor(fd: number, end: number) {
    this.fd = fd
    this.durableEnd = end
  }

  /**
   * open opens (creating) the file at path, whose committed part ends at end (the data
   * file's 'valuesEnd', 0 if none), and cuts anything past it. It throws an Error naming the
   * problem when the file is missing or shorter than end: values the data file refers to
   * are gone.
   */
  static open(path: string, end: number): ValueFile {
    const created = !existsSync(path)
    if (created && end > 0) {
      throw new Error(`${path} is missing, and the data file refers to ${end} bytes in it`)
    }
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644)
    try {
      // Its name must be durable before a transaction refers to it (also when an earlier
      // process created it and died before this).
      syncDir(dirname(path))
      const size = fstatSync(fd).size
      if (size < end) {
        throw new Error(
          `${path} holds ${size} bytes, and the data file refers to ${end}: values were lost`,
        )
      }
      if (size > end) {
        // Written for a transaction that never committed: nothing refers to it.
        ftruncateSync(fd, end)
        fdatasyncSync(fd)
      }
      return new ValueFile(fd, end)
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /** end is where the durable part ends (what 'valuesEnd' records after a flush). */
  get end(): number {
    return this.durableEnd
  }

  /** hasStaged tells whether values wait for flush(). */
  get hasStaged(): boolean {
    return this.stagedBytes > 0
  }

  /** stage queues value for the next flush and returns its offset in the file. The caller
   * must not change value's bytes until then. */
  stage(value: Uint8Array): number {
    const at = this.durableEnd + this.stagedBytes
    this.staged.push(value)
    this.stagedBytes += value.byteLength
    return at
  }

  /** flush writes the staged values and makes them durable (fdatasync). On an error the
   * caller discards them and fails stop. */
  flush(): void {
    if (this.stagedBytes === 0) return
    let at = this.durableEnd
    let bufs = this.staged
    const end = at + this.stagedBytes
    while (at < end) {
      const n = writevSync(this.fd, bufs, at)
      at += n
      if (at < end) bufs = remainder(bufs, n)
    }
    fdatasyncSync(this.fd)
    this.durableEnd = end
    this.discard()
  }

  /** stagedEnd is where the durable part ends after the next flush. */
  get stagedEnd(): number {
    return this.durableEnd + this.stagedBytes
  }

  /** flushAsync is flush() off the event loop. Nothing may be staged until it settles. */
  async flushAsync(): Promise<void> {
    if (this.stagedBytes === 0) return
    let at = this.durableEnd
    let bufs = this.staged
    const end = this.stagedEnd
    while (at < end) {
      const n = await new Promise<number>((resolve, reject) =>
        writev(this.fd, bufs, at, (err, written) => (err ? reject(err) : resolve(written))),
      )
      at += n
      if (at < end) bufs = remainder(bufs, n)
    }
    await new Promise<void>((resolve, reject) =>
      fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
    )
    this.durableEnd = end
    this.discard()
  }

  /** discard drops the staged values (their transaction did not commit). */
  discard(): void {
    this.staged = []
    this.stagedBytes = 0
  }

  /** read returns a fresh copy of length bytes at offset, or undefined if the file ends
   * before them. Staged values are read from memory. */
  read(offset: number, length: number): Buffer | undefined {
    if (offset + length > this.stagedEnd) return undefined
    const out = Buffer.allocUnsafe(length)
    if (offset >= this.durableEnd) return this.readStaged(offset, out)
    if (offset + length > this.durableEnd) return undefined
    let got = 0
    while (got < length) {
      const n = readSync(this.fd, out, got, length - got, offset + got)
      if (n === 0) return undefined
      got += n
    }
    return out
  }

  private readStaged(offset: number, out: Buffer): Buffer | undefined {
    let at = this.durableEnd
    for (const v of this.staged) {
      if (at === offset && v.byteLength === out.byteLength) {
        out.set(v)
        return out
      }
      at += v.byteLength
    }
    return undefined
  }

  close(): void {
    this.discard()
    closeSync(this.fd)
  }
}

// remainder is bufs without their first n bytes.
function remainder(bufs: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let skip = n
  for (const b of bufs) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength
      continue
    }
    out.push(skip > 0 ? b.subarray(skip) : b)
    skip = 0
  }
  return out
}
