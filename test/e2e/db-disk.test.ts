// End to end: a full disk. Each member's data directory is a small tmpfs of the test's own; a
// filler file takes its last free byte. When the leader's fills, it hands over and the
// cluster goes on writing. When every disk is full, writes answer 503 storage_unavailable
// quickly (never 500, never a hang), the members stay up and say why (log, /readyz, /stats),
// values already stored are still served; once the fillers are deleted the cluster writes
// again without a restart, and every acknowledged value reads back intact on every member.
// Needs root (mount); without it the test is skipped and says why.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { request, type HttpResponse } from './http.ts'

const TMPFS_BYTES = 16 * 1024 * 1024
// Kept free by each member: a write that would leave less is refused.
const RESERVE_BYTES = 1024 * 1024
const WRITE_DEADLINE_MS = 10_000
const IDS = ['n1', 'n2', 'n3']

/** mountTmpfs mounts a tmpfs of TMPFS_BYTES on dir, or says why it cannot. */
function mountTmpfs(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true })
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', dir], {
      stdio: 'pipe',
    })
    return undefined
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim()
    return `cannot mount a tmpfs (needs root): ${stderr || (e as Error).message}`
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' })
  } catch {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
    } catch {
      // Not mounted.
    }
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

function written(res: HttpResponse): boolean {
  return res.status === 201 || res.status === 200
}

// Every member's data directory is a tmpfs of its own.
const dataRoot = mkdtempSync(join(tmpdir(), 'oncekv-e2e-disk-'))
const mounted: string[] = []
let skip: string | undefined
for (const id of IDS) {
  skip = mountTmpfs(join(dataRoot, id))
  if (skip !== undefined) break
  mounted.push(join(dataRoot, id))
}

describe('a full disk', { skip: skip ?? false }, () => {
  const clusters = useClusters()
  let cluster: Cluster
  const fillers: string[] = []
  const acked = new Set<string>()

  async function putAcked(url: string, key: string): Promise<void> {
    const { res } = await put(url, key)
    assert.ok(written(res), `${key}: ${res.status} ${res.text()}`)
    acked.add(key)
  }

  before(async () => {
    cluster = await clusters.start({
      name: 'disk',
      size: IDS.length,
      dataRoot,
      extraArgs: ['--min-free-bytes', String(RESERVE_BYTES)],
    })
    for (let i = 0; i < 20; i++) await putAcked(cluster.node(IDS[i % 3]!).url, `before-${i}`)
    await cluster.waitCaughtUp()
  })

  after(async () => {
    // Members first (they hold the files open), then the mounts, even after a failure.
    await cluster?.close().catch(() => undefined)
    for (const dir of mounted) unmount(dir)
    rmSync(dataRoot, { recursive: true, force: true })
  })

  it("the leader's disk fills: it hands over, and the others go on writing", async () => {
    const { node: full } = await cluster.leader()
    fillers.push(fill(full.dataDir))
    const { node: next } = await cluster.leader({ exclude: [full.id], timeoutMs: 15_000 })
    // Writes through any member, the full one too (it forwards), succeed.
    for (const [i, n] of cluster.all().entries()) await putAcked(n.url, `handover-${i}`)
    assert.notEqual(next.id, full.id)
    await waitFor(`${full.id} says its disk is full`, async () =>
      /disk full at /.test(String((await full.stats()).storage_error)),
    )
    const ready = await full.request('/readyz')
    assert.equal(ready.json<{ error: string }>().error, 'storage_unavailable')
    const got = await full.request('/keys/before-3')
    assert.equal(got.text(), value('before-3'))
  })

  it('every disk fills: writes answer 503 storage_unavailable; space returns: writes again', async () => {
    for (const n of cluster.all())
      if (!fillers.some((f) => f.startsWith(n.dataDir))) fillers.push(fill(n.dataDir))
    // Every member answers storage_unavailable, well within the write deadline, never 500.
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
    // or not, and says so.
    for (const n of cluster.all()) {
      assert.ok(n.running, `${n.id} is still running`)
      await waitFor(`${n.id} /readyz answers storage_unavailable`, async () => {
        const ready = await n.request('/readyz')
        return (
          ready.status === 503 && ready.json<{ error: string }>().error === 'storage_unavailable'
        )
      })
      assert.match(String((await n.stats()).storage_error), new RegExp(`disk full at ${n.dataDir}`))
      assert.match((await n.request('/metrics')).text(), /^oncekv_storage_unavailable 1$/m)
      // Values it holds are still served.
      const got = await n.request('/keys/before-3')
      assert.equal(got.status, 200)
      assert.equal(got.text(), value('before-3'))
      // The log says so: a line at error (pino level 50).
      await waitFor(`${n.id} logs storage_unavailable`, () =>
        n
          .logOfLastRun()
          .split('\n')
          .some((l) => l.includes('"event":"storage_unavailable"') && l.includes('"level":50')),
      )
    }

    for (const f of fillers.splice(0)) unlinkSync(f)
    // Writes succeed again without a restart: a retry of the same value is safe.
    const started = Date.now()
    await waitFor(
      'a write to succeed after space returned',
      async () => written((await put(cluster.node('n2').url, 'after-0')).res),
      { timeoutMs: 20_000, intervalMs: 200 },
    )
    acked.add('after-0')
    const recoveredMs = Date.now() - started
    for (let i = 1; i < 20; i++) await putAcked(cluster.node(IDS[i % 3]!).url, `after-${i}`)
    await cluster.waitCaughtUp()
    for (const n of cluster.all()) {
      assert.ok(n.running, `${n.id} is still running`)
      assert.equal(n.exits.length, 0, `${n.id} never exited`)
      await waitFor(`${n.id} reports no storage error`, async () => {
        return (await n.stats()).storage_error === null
      })
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
