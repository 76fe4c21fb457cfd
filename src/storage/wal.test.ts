import assert from 'node:assert/strict'
import { constants, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import {
  DSYNC,
  encodeFileHeader,
  encodeWalRecord,
  FILE_MAGIC,
  LEGACY_SALT,
  type Salt,
  Wal,
  type WalRecord,
} from './wal.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function walPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-wal-'))
  dirs.push(dir)
  return join(dir, 'wal.log')
}

function rec(seq: number, bytes = 40): WalRecord {
  return { seq, hardState: undefined, entries: [new Uint8Array(bytes).fill(seq)] }
}

// file writes a file of the recycled layout with salt and the given records, in order.
function file(path: string, fileSalt: Salt, records: readonly Buffer[]): void {
  writeFileSync(path, Buffer.concat([encodeFileHeader(fileSalt), ...records]))
}

// salt is a fixed salt for a test file (both halves from n).
function salt(n: number): Salt {
  return { head: n, body: n + 1000 }
}

function open(path: string, covered = 0): WalRecord[] {
  const { wal, records } = Wal.open(path, covered)
  wal.close()
  return records
}

describe('Wal', () => {
  it('on Linux writes through a descriptor opened O_DSYNC: an append is durable when its write returns', async (t) => {
    if (process.platform !== 'linux') return t.skip('O_DSYNC is used on Linux only')
    assert.equal(DSYNC, constants.O_DSYNC)
    const path = walPath()
    const { wal } = Wal.open(path)
    try {
      await wal.append(rec(1))
      const fd = (wal as unknown as { readonly fd: number }).fd
      // The descriptor's open flags, in octal (proc(5)).
      const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
      assert.ok(flags, 'no flags line in fdinfo')
      assert.equal(parseInt(flags[1] as string, 8) & constants.O_DSYNC, constants.O_DSYNC)
    } finally {
      wal.close()
    }
  })

  it('gives a new file a header, and writes over covered records from its start', async () => {
    const path = walPath()
    const { wal, records, created } = Wal.open(path)
    assert.equal(created, true)
    assert.deepEqual(records, [])
    for (let seq = 1; seq <= 3; seq++) await wal.append(rec(seq, 100))
    assert.deepEqual(readFileSync(path).subarray(0, 8), FILE_MAGIC)
    const size = statSync(path).size
    wal.checkpointed()
    assert.equal(wal.bytes, 0)
    await wal.append(rec(4, 10))
    assert.equal(statSync(path).size, size)
    wal.close()
    // Record 4, then the rest of the older ones: covered, so no sign of damage.
    assert.deepEqual(
      open(path, 3).map((r) => r.seq),
      [4],
    )
  })

  it('takes an empty or all-zero file as new, and gives it a header with its first append', async () => {
    for (const bytes of [Buffer.alloc(0), Buffer.alloc(9), Buffer.alloc(4096)]) {
      const path = walPath()
      writeFileSync(path, bytes)
      const { wal, records } = Wal.open(path)
      assert.deepEqual(records, [])
      // Not at open: a store records the layout's version first.
      assert.deepEqual(readFileSync(path), bytes)
      await wal.append(rec(1))
      wal.close()
      assert.deepEqual(readFileSync(path).subarray(0, 8), FILE_MAGIC)
      assert.deepEqual(
        open(path).map((r) => r.seq),
        [1],
      )
    }
    // A header whose record never landed: no records.
    const path = walPath()
    file(path, salt(5), [])
    assert.deepEqual(open(path), [])
  })

  it('never reads bytes whose checksums do not start from the salt as a record', () => {
    const path = walPath()
    // Record 2 as a user's value could hold it: checksums from 0, not from the file's salt.
    file(path, salt(77), [encodeWalRecord(rec(1), salt(77)), encodeWalRecord(rec(2), LEGACY_SALT)])
    assert.deepEqual(
      open(path).map((r) => r.seq),
      [1],
    )
    // One half of the salt right is not enough.
    for (const half of [
      { head: 77, body: 0 },
      { head: 0, body: 1077 },
    ]) {
      file(path, salt(77), [encodeWalRecord(rec(1), salt(77)), encodeWalRecord(rec(2), half)])
      assert.deepEqual(
        open(path).map((r) => r.seq),
        [1],
      )
    }
    file(path, salt(77), [encodeWalRecord(rec(1), salt(77)), encodeWalRecord(rec(2), salt(77))])
    assert.deepEqual(
      open(path).map((r) => r.seq),
      [1, 2],
    )
  })

  it('refuses a damaged record with a newer one after it, and a gap', () => {
    const path = walPath()
    const first = encodeWalRecord(rec(5), salt(9))
    const damaged = Buffer.from(first)
    damaged[30] = (damaged[30] ?? 0) ^ 1
    file(path, salt(9), [damaged, encodeWalRecord(rec(6), salt(9))])
    assert.throws(
      () => open(path, 4),
      /the log ends at byte 4096, before any record, but record 6 at byte \d+, further on, is newer/,
    )
    // The same bytes when a checkpoint covers record 6: older records past the end.
    assert.deepEqual(open(path, 6), [])
    // A torn last record: dropped, and a shorter one of the same seq written over it later
    // leaves the torn one's last bytes past it, which are no record.
    const long = encodeWalRecord(rec(6, 400), salt(9))
    const tornLong = Buffer.from(long)
    tornLong.fill(0, 0, 200)
    file(path, salt(9), [first, tornLong])
    assert.deepEqual(
      open(path, 4).map((r) => r.seq),
      [5],
    )
    const short = encodeWalRecord(rec(6, 20), salt(9))
    file(path, salt(9), [first, short, tornLong.subarray(short.byteLength)])
    assert.deepEqual(
      open(path, 4).map((r) => r.seq),
      [5, 6],
    )
    file(path, salt(9), [first, encodeWalRecord(rec(7), salt(9))])
    assert.throws(() => open(path, 4), /record 7 follows record 5/)
  })

  it('reads a file of the older layout, appends to it, and gives it a header once emptied', async () => {
    const path = walPath()
    writeFileSync(
      path,
      Buffer.concat([
        encodeWalRecord(rec(1), LEGACY_SALT),
        encodeWalRecord(rec(2), LEGACY_SALT),
        Buffer.alloc(7),
      ]),
    )
    const { wal, records } = Wal.open(path, 0)
    assert.deepEqual(
      records.map((r) => r.seq),
      [1, 2],
    )
    // Bytes past the last record (a torn one): cut, then record 3 in the older layout.
    await wal.append(rec(3))
    assert.notDeepEqual(readFileSync(path).subarray(0, 8), FILE_MAGIC)
    assert.deepEqual(
      open(path).map((r) => r.seq),
      [1, 2, 3],
    )
    wal.checkpointed()
    await wal.append(rec(4))
    wal.close()
    assert.deepEqual(readFileSync(path).subarray(0, 8), FILE_MAGIC)
    assert.deepEqual(
      open(path, 3).map((r) => r.seq),
      [4],
    )
  })
})
