// End to end: a member whose store was damaged while it was down refuses to start: it exits
// non-zero with a message naming its data directory and never serves (its HTTP port refuses).
// The damage is of the kinds the store detects (src/storage/lmdb-store.test.ts): a truncated
// data file, a garbled newest log record, a zeroed header. The rest of the cluster keeps
// serving, and an operator's repair (wipe the directory, start again with --join) works.
import assert from 'node:assert/strict'
import {
  cpSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { waitFor, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { postJson } from './http.ts'
import { readBack, startWriteLoad, summarize, type WriteLoadResult } from './load.ts'

const MARKER = 'NEWEST-ENTRY-MARKER-'
const RECORD_MARKER = 'NEWEST-RECORD-MARK-'

/** refusesConnections is true when nothing listens on host:port. */
function refusesConnections(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':') as [string, string]
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

describe('a corrupted store is detected at start', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let victim: DbProcess
  let healthyCopy: string
  let written: WriteLoadResult

  before(async () => {
    cluster = await clusters.start({ name: 'corrupt', size: 3 })
    const urls = cluster.running().map((n) => n.url)
    written = await startWriteLoad({
      targets: () => urls,
      clients: 8,
      durationMs: 5_000,
      maxWritesPerClient: 25,
      keyPrefix: 'corrupt',
      valueBytes: 512,
    }).done
    assert.equal(written.acked.size, 200, summarize(written))
    assert.equal(written.internalErrors, 0, summarize(written))
    const { node: leader } = await cluster.leader()
    // A value in the value file that a case damages there, then the newest entry, with a
    // marker the byte-flipping case can find in the data file: a value of at most 32 bytes,
    // whose log record LMDB keeps whole (a longer value's record refers to the value file).
    const marker = await leader.request(`/keys/marker`, {
      method: 'PUT',
      body: MARKER + 'x'.repeat(64),
    })
    assert.equal(marker.status, 201)
    const newest = await leader.request(`/keys/newest`, {
      method: 'PUT',
      body: RECORD_MARKER + 'y'.repeat(10),
    })
    assert.equal(newest.status, 201)
    victim = cluster.running().find((n) => n !== leader) as DbProcess
    await cluster.waitCaughtUp([victim.id])
    const exit = await cluster.terminate(victim.id)
    assert.equal(exit.code, 0)
    healthyCopy = `${victim.dataDir}.healthy`
    cpSync(victim.dataDir, healthyCopy, { recursive: true })
  })

  /** startDamaged restores the healthy copy, damages it, starts the member and checks it
   * refuses to serve. It returns the output of that run. */
  async function startDamaged(damage: (dataFile: string) => void): Promise<string> {
    rmSync(victim.dataDir, { recursive: true, force: true })
    cpSync(healthyCopy, victim.dataDir, { recursive: true })
    damage(join(victim.dataDir, 'data.mdb'))
    cluster.restart(victim.id)
    const exit = await victim.waitExit(20_000)
    const log = victim.logOfLastRun()
    assert.notEqual(exit.code, 0, log)
    assert.equal(exit.code, 2, log)
    assert.match(log, /the data directory is damaged and will not be served/)
    assert(log.includes(`store ${victim.dataDir} is corrupt`), log)
    assert.doesNotMatch(log, /"event":"listening"/)
    assert(await refusesConnections(victim.http), 'the HTTP port accepts connections')
    return log
  }

  it('refuses a truncated data file', async () => {
    const log = await startDamaged((file) => {
      assert(statSync(file).size > 4 * 4096)
      truncateSync(file, 2 * 4096)
    })
    assert.match(log, /the file was truncated/)
  })

  it('refuses a garbled byte inside the newest log record', async () => {
    const log = await startDamaged((file) => {
      const bytes = readFileSync(file)
      const marker = Buffer.from(RECORD_MARKER)
      let flipped = 0
      for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
        const i = at + marker.byteLength + 3
        bytes[i] = (bytes[i] as number) ^ 0x20
        flipped++
      }
      assert(flipped > 0, 'marker not found in the data file')
      writeFileSync(file, bytes)
    })
    assert.match(log, /log record \d+ fails its checksum/)
  })

  it('refuses a zeroed header', async () => {
    const log = await startDamaged((file) => {
      const fd = openSync(file, 'r+')
      writeSync(fd, new Uint8Array(8192), 0, 8192, 0)
      closeSync(fd)
    })
    assert.match(log, /first meta page is not a meta page/)
  })

  it('keeps the rest of the cluster serving meanwhile', async () => {
    const urls = cluster.running().map((n) => n.url)
    assert.equal(urls.length, 2)
    assert.deepEqual(await readBack(urls, written.acked), [])
    const more = await startWriteLoad({
      targets: () => urls,
      clients: 4,
      durationMs: 5_000,
      maxWritesPerClient: 5,
      keyPrefix: 'meanwhile',
    }).done
    assert.equal(more.acked.size, 20, summarize(more))
    assert.equal(more.internalErrors, 0, summarize(more))
  })

  it('starts again from the undamaged copy', async () => {
    rmSync(victim.dataDir, { recursive: true, force: true })
    cpSync(healthyCopy, victim.dataDir, { recursive: true })
    cluster.restart(victim.id)
    await cluster.waitReady(victim.id)
    await cluster.waitCaughtUp([victim.id])
    assert.deepEqual(await readBack([victim.url], written.acked, { stale: true }), [])
  })

  it('answers 503 for a value damaged on disk, never its bytes, and serves the other keys', async () => {
    // Damage one stored value the way bit rot would (the member is down meanwhile): one bit
    // of the value flips in the value file, its reference (length, checksum) unchanged.
    await cluster.terminate(victim.id)
    const file = join(victim.dataDir, 'values.dat')
    const bytes = readFileSync(file)
    const at = bytes.indexOf(Buffer.from(MARKER))
    assert(at >= 0, 'the marker value is in the value file')
    bytes[at + 10] = (bytes[at + 10] as number) ^ 0x01
    writeFileSync(file, bytes)
    cluster.restart(victim.id)
    await cluster.waitReady(victim.id)
    for (const path of ['/keys/marker', '/keys/marker?consistency=stale', '/key/marker']) {
      const res = await victim.request(path)
      assert.equal(res.status, 503, `${path}: ${res.text()}`)
      const body = res.json<{ code: number; error: string; message: string }>()
      assert.equal(typeof body.code, 'number')
      assert.match(body.message, /damaged on this member/)
      assert(!res.text().includes(MARKER), 'no byte of the damaged value is served')
    }
    // A write to that key through this member (a follower) is decided by the leader's copy:
    // the same bytes are "already there", other bytes a conflict; never a 500.
    assert.equal((await victim.stats()).state, 'Follower', 'the member was restarted as a follower')
    const again = await victim.request('/keys/marker', {
      method: 'PUT',
      body: MARKER + 'x'.repeat(64),
    })
    assert.equal(again.status, 200, again.text())
    assert.deepEqual(again.json(), { code: 1000, created: false })
    const other = await victim.request('/keys/marker', { method: 'PUT', body: 'other bytes' })
    assert.equal(other.status, 409, other.text())
    const stats = await victim.stats()
    assert.equal(stats.values_corrupt, 5)
    assert.match(victim.logOfLastRun(), /"event":"value_corrupt"/)
    // The other members serve the key; this one serves every other key.
    const member = cluster.running().find((n) => n !== victim) as DbProcess
    assert.equal((await member.request('/keys/marker')).status, 200)
    assert.deepEqual(await readBack([victim.url], written.acked, { stale: true }), [])
  })

  it('a member whose directory was wiped while still a voter rejoins, or is refused clearly', async () => {
    await cluster.kill(victim.id)
    rmSync(victim.dataDir, { recursive: true, force: true })
    victim.start(cluster.running().map((n) => n.url))
    // Either it rejoins and serves every key, or it stops with a clear message: not a crash.
    await waitFor('the wiped member to be ready or to stop', async () => {
      if (!victim.running) return true
      return victim.isReady()
    })
    if (victim.running) {
      await cluster.waitCaughtUp([victim.id])
      assert.deepEqual(await readBack([victim.url], written.acked, { stale: true }), [])
    } else {
      // It stops with a message that says what happened and what to do.
      const log = victim.logOfLastRun()
      assert.match(log, /^oncekv db: /m)
      assert.match(log, /already in the cluster; remove it first|data directory lost or replaced/)
    }
  })

  it('rejoins by snapshot after an operator removes it, wipes the directory and joins again', async () => {
    if (victim.running) await cluster.kill(victim.id)
    const others = cluster.running()
    const removed = await postJson(`${others[0]!.url}/remove`, { id: victim.id })
    assert.equal(removed.status, 200, removed.text())
    await waitFor('the member to leave the configuration', async () => {
      const view = await others[0]!.clusterView()
      return view.members.every((m) => m.id !== victim.id)
    })
    rmSync(victim.dataDir, { recursive: true, force: true })
    victim.start(others.map((n) => n.url))
    await cluster.waitVoters([victim.id])
    await cluster.waitReady(victim.id)
    await cluster.waitCaughtUp([victim.id])
    // The log is written asynchronously: wait for the line rather than read it once.
    await waitFor('the snapshot_receive log line', async () =>
      victim.logOfLastRun().includes('"event":"snapshot_receive"'),
    )
    assert.deepEqual(await readBack([victim.url], written.acked, { stale: true }), [])
  })
})
