// End to end: a full disk. Every member's data directory sits on one small tmpfs of the
// test's own; a filler file takes its last free byte. Writes then answer 503
// storage_unavailable quickly (never 500, never a hang), the members stay up and say why (log,
// /readyz, /stats), values already stored are still served; once the filler is deleted the
// cluster writes again without a restart, and every acknowledged value reads back intact on
// every member. Needs root (mount); without it the test is skipped and says why.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { request, type HttpResponse } from './http.ts'

const TMPFS_BYTES = 32 * 1024 * 1024
// Kept free by each member: a write that would leave less is refused.
const RESERVE_BYTES = 1024 * 1024
const WRITE_DEADLINE_MS = 10_000

/** mountTmpfs mounts a tmpfs of TMPFS_BYTES on a new directory, or says why it cannot. */
function mountTmpfs(): { dir: string } | { skip: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-e2e-disk-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir], {
      stdio: 'pipe',
    })
    return { dir }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim()
    return { skip: `cannot mount a tmpfs (needs root): ${stderr || (e as Error).message}` }
  }
}

/** fill writes a file in dir until the file system has no byte left, and returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'filler')
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  try {
    for (;;) {
      try {
        writeSync(fd, chunk)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
          // The last few bytes, so that not even a page is left.
          try {
            for (;;) writeSync(fd, chunk, 0, 512)
          } catch {
            return path
          }
        }
        throw e
      }
    }
  } finally {
    closeSync(fd)
  }
}

function value(key: string): string {
  return `${key}:` + 'v'.repeat(2000)
}

async function put(url: string, key: string): Promise<{ res: HttpResponse; ms: number }> {
  const started = Date.now()
  const res = await request(`${url}/keys/${key}`, {
    method: 'PUT',
    body: value(key),
    timeoutMs: WRITE_DEADLINE_MS + 5_000,
  })
  return { res, ms: Date.now() - started }
}

const mounted = mountTmpfs()

describe('a full disk', { skip: 'skip' in mounted ? mounted.skip : false }, () => {
  const clusters = useClusters()
  const mount = 'dir' in mounted ? mounted.dir : ''
  let cluster: Cluster
  let filler: string
  const acked = new Set<string>()

  before(async () => {
    const dataRoot = join(mount, 'data')
    mkdirSync(dataRoot)
    cluster = await clusters.start({
      name: 'disk',
      size: 3,
      dataRoot,
      extraArgs: ['--min-free-bytes', String(RESERVE_BYTES)],
    })
    for (let i = 0; i < 20; i++) {
      const { res } = await put(cluster.node('n1').url, `before-${i}`)
      assert.ok(res.status === 201 || res.status === 200, res.text())
      acked.add(`before-${i}`)
    }
    await cluster.waitCaughtUp()
  })

  after(async () => {
    // Members first (they hold the files open), then the mount, even after a failure.
    await cluster?.close().catch(() => undefined)
    try {
      execFileSync('umount', [mount], { stdio: 'pipe' })
    } catch {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' })
    }
    rmSync(mount, { recursive: true, force: true })
  })

  it('answers writes 503 storage_unavailable while full, and recovers when space returns', async () => {
    filler = fill(mount)
    // Every member is asked; each answers storage_unavailable, at once or within the write
    // deadline, and never 500.
    for (const [i, n] of cluster.all().entries()) {
      const { res, ms } = await put(n.url, `full-${i}`)
      assert.equal(res.status, 503, `${n.id}: ${res.text()}`)
      const body = res.json<{ code: number; error: string; message: string }>()
      assert.equal(body.error, 'storage_unavailable', `${n.id}: ${res.text()}`)
      assert.equal(body.code, 1006)
      assert.match(body.message, /disk full at /)
      assert.ok(ms < WRITE_DEADLINE_MS, `${n.id} took ${ms} ms`)
    }
    // Each member finds out within a second (it checks its disk's free space), written to
    // or not.
    for (const n of cluster.all()) {
      assert.ok(n.running, `${n.id} is still running`)
      await waitFor(`${n.id} /readyz answers storage_unavailable`, async () => {
        const ready = await n.request('/readyz')
        return (
          ready.status === 503 && ready.json<{ error: string }>().error === 'storage_unavailable'
        )
      })
      const stats = await n.stats()
      assert.match(String(stats.storage_error), /disk full at .*data/)
      // Values it holds are still served.
      const got = await n.request('/keys/before-3')
      assert.equal(got.status, 200)
      assert.equal(got.text(), value('before-3'))
    }
    // The log says so: one line at error (pino level 50) when the disk filled.
    for (const n of cluster.all()) {
      await waitFor(`${n.id} logs storage_unavailable`, () =>
        n
          .logOfLastRun()
          .split('\n')
          .some((l) => l.includes('"event":"storage_unavailable"') && l.includes('"level":50')),
      )
    }

    unlinkSync(filler)
    // Writes succeed again without a restart: a retry of the same value is safe.
    const started = Date.now()
    await waitFor(
      'a write to succeed after space returned',
      async () => {
        const { res } = await put(cluster.node('n2').url, 'after-0')
        return res.status === 201 || res.status === 200
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    )
    acked.add('after-0')
    const recoveredMs = Date.now() - started
    for (let i = 1; i < 20; i++) {
      const { res } = await put(cluster.all()[i % 3]!.url, `after-${i}`)
      assert.ok(res.status === 201 || res.status === 200, res.text())
      acked.add(`after-${i}`)
    }
    await cluster.waitCaughtUp()
    for (const n of cluster.all()) {
      assert.ok(n.running, `${n.id} is still running`)
      assert.equal(n.exits.length, 0, `${n.id} never exited`)
      assert.equal((await n.stats()).storage_error, null)
      assert.equal((await n.request('/readyz')).status, 200)
      for (const key of acked) {
        const got = await n.request(`/keys/${key}?consistency=stale`)
        assert.equal(got.status, 200, `${n.id} ${key}`)
        assert.equal(got.text(), value(key), `${n.id} ${key}`)
      }
      assert.ok(
        n.logOfLastRun().includes('"event":"storage_recovered"'),
        `${n.id} logs its recovery`,
      )
    }
    console.log(`recovered ${recoveredMs} ms after space returned; ${acked.size} keys checked`)
  })
})
