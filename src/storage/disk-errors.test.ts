// The store on a full disk: a write that would leave less than the reserve is refused before
// LMDB sees it (DiskUnavailableError), the store is unchanged and stays usable, and the same
// write succeeds once there is room. And the mapping of system errors to disk errors.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { bootstrapSnapshot, type Entry } from '../raft/index.ts'
import { DiskUnavailableError, diskErrno } from './errors.ts'
import { LmdbStore } from './lmdb-store.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'oncekv-disk-'))
  dirs.push(d)
  return join(d, 'store')
}

const MEMBERS = { n1: { http: '127.0.0.1:1', raft: '127.0.0.1:2' } }

describe('LmdbStore on a full disk', () => {
  it('refuses a write short of the reserve, unchanged, and takes it once there is room', async () => {
    const dir = tempDir()
    const roomy = LmdbStore.open(dir, { minFreeBytes: 0 })
    roomy.bootstrap(bootstrapSnapshot(['n1']), MEMBERS)
    const before = roomy.lastIndex()
    await roomy.close()

    // No file system has this much free: every write is refused.
    const full = LmdbStore.open(dir, { minFreeBytes: Number.MAX_SAFE_INTEGER })
    const term = full.initialState().hardState.term
    const entry: Entry = { index: before + 1, term, type: 'normal', data: new Uint8Array(10) }
    assert.throws(
      () => full.writeReady({ entries: [entry] }),
      (e: unknown) =>
        e instanceof DiskUnavailableError &&
        e.problem === 'full' &&
        e.message.startsWith(`disk full at ${dir}`),
    )
    assert.equal(full.lastIndex(), before)
    assert.ok(full.spaceProblem() instanceof DiskUnavailableError)
    // Not fail-stop: reads work, and the same write is refused again, not crashed on.
    assert.deepEqual(full.members(), MEMBERS)
    assert.throws(() => full.writeReady({ entries: [entry] }), DiskUnavailableError)
    await full.close()

    const again = LmdbStore.open(dir, { minFreeBytes: 0 })
    assert.equal(again.lastIndex(), before)
    assert.equal(again.spaceProblem(), undefined)
    again.writeReady({ entries: [entry] })
    await again.sync()
    assert.equal(again.lastIndex(), before + 1)
    await again.close()
  })

  it('refuses to create a store without room for its files', () => {
    assert.throws(
      () => LmdbStore.open(tempDir(), { minFreeBytes: Number.MAX_SAFE_INTEGER }),
      DiskUnavailableError,
    )
  })

  it('maps the errors of a refused write', () => {
    assert.equal(diskErrno({ code: 28 }), 'ENOSPC') // lmdb-js: errno as a number
    assert.equal(diskErrno({ code: 122 }), 'EDQUOT')
    assert.equal(diskErrno({ code: 30 }), 'EROFS')
    assert.equal(diskErrno({ code: 5 }), 'EIO')
    assert.equal(diskErrno({ code: 13 }), 'EACCES')
    assert.equal(diskErrno({ code: -30792 }), 'MDB_MAP_FULL')
    assert.equal(diskErrno({ code: 'ENOSPC' }), 'ENOSPC') // Node's fs
    assert.equal(diskErrno({ code: -30796 }), undefined) // MDB_CORRUPTED: not the disk's
    assert.equal(diskErrno(new Error('x')), undefined)
    assert.equal(diskErrno(undefined), undefined)
  })
})
