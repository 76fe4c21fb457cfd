// `oncekv dev` and its ports, run as users run it: a first start takes free ports where the
// defaults are taken and says which; a restart keeps the recorded ports, moves the caches and
// the admin (which store no address) off ports taken since and says so, and refuses in one
// line when a member's recorded port is taken (a member's addresses are stored in the data
// directories, so it cannot move), naming the port, the member and what to do; --fresh then
// starts an empty system. Every run stops cleanly on a signal (exit code 0, no process left),
// except one with a process that ignores it: dev kills that one, names it and exits 1. A
// process that dies meanwhile is named with the command that starts it again, which works.
// Small systems (one member, one cache) keep it quick; the ports logic is the same.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { waitFor } from '../e2e/cluster.ts'
import type { DevPorts } from '../../src/dev/dev.ts'
import {
  isRunning,
  killDev,
  spawnDev,
  stopDev,
  waitDevExit,
  waitDevUp,
  type Dev,
} from './dev.test-helper.ts'

describe('oncekv dev ports', { timeout: 300_000 }, () => {
  let dir: string
  let data: string
  const runs: Dev[] = []
  const held: Server[] = []
  const shape = ['--nodes', '1', '--caches', '1']

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'oncekv-dev-'))
    data = join(dir, 'dev')
  })

  after(async () => {
    for (const r of runs) await killDev(r)
    await release()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** hold occupies a loopback port the way another program would; a port some other
   * process holds already is just as taken. */
  async function hold(port: number): Promise<void> {
    const srv = createServer()
    const ok = await new Promise<boolean>((res) => {
      srv.once('error', () => res(false))
      srv.listen(port, '127.0.0.1', () => res(true))
    })
    if (ok) held.push(srv)
  }

  async function release(): Promise<void> {
    await Promise.all(held.splice(0).map((s) => new Promise((r) => s.close(r))))
  }

  function recorded(): DevPorts {
    return JSON.parse(readFileSync(join(data, 'ports.json'), 'utf8')) as DevPorts
  }

  async function start(args: string[]): Promise<Dev> {
    const run = spawnDev(['--data', data, ...shape, ...args])
    runs.push(run)
    return waitDevUp(run)
  }

  it('takes free ports on a first start where the defaults are taken, and says which', async (t) => {
    await hold(5546)
    await hold(11000)
    const started = Date.now()
    const dev = await start([])
    t.diagnostic(`a 1-member, 1-cache system started in ${Date.now() - started} ms`)
    const ports = recorded()
    assert.notEqual(ports.admin, 5546)
    assert.notEqual(ports.dbs[0]?.http, 11000)
    assert.equal(dev.adminUrl, `http://127.0.0.1:${ports.admin}`)
    const note = dev.output.split('\n').find((l) => l.includes('free ones are used instead'))
    assert.ok(note, dev.output)
    assert.match(note, /\b5546\b/)
    assert.match(note, /\b11000\b/)
    // It serves: a write to the member, read back through the cache.
    const n1 = dev.nodes.get('n1')?.url
    const c1 = dev.nodes.get('c1')?.url
    assert.ok(n1 && c1, dev.output)
    const put = await fetch(`${n1}/keys/dev/kept`, { method: 'PUT', body: 'v1' })
    assert.equal(put.status, 201)
    assert.equal(await (await fetch(`${c1}/keys/dev/kept`)).text(), 'v1')
    t.diagnostic(`stopped in ${await stopDev(dev, 'SIGTERM')} ms`)
    await release()
  })

  it('moves the caches and the admin off recorded ports taken since, and says so', async () => {
    const was = recorded()
    const cache = was.caches[0]
    assert.ok(cache)
    await hold(was.admin)
    await hold(cache.http)
    const dev = await start([])
    const now = recorded()
    assert.notEqual(now.admin, was.admin)
    assert.notEqual(now.caches[0]?.http, cache.http)
    assert.equal(now.caches[0]?.peer, cache.peer, 'a free port stays')
    assert.deepEqual(now.dbs, was.dbs, 'members keep their addresses')
    assert.equal(dev.adminUrl, `http://127.0.0.1:${now.admin}`)
    const note = dev.output.split('\n').find((l) => l.includes('moved'))
    assert.ok(note, dev.output)
    assert.ok(note.includes(`the admin ${was.admin} → ${now.admin}`), note)
    assert.ok(note.includes(`c1 ${cache.http} → ${now.caches[0]?.http}`), note)
    // The member came back with its data.
    const c1 = dev.nodes.get('c1')?.url
    assert.equal(c1, `http://127.0.0.1:${now.caches[0]?.http}`)
    assert.equal(await (await fetch(`${c1}/keys/dev/kept`)).text(), 'v1')
    await stopDev(dev, 'SIGINT')
    await release()
  })

  it("refuses in one line when a member's recorded port is taken; --fresh starts afresh", async () => {
    const was = recorded()
    const n1 = was.dbs[0]
    assert.ok(n1)
    await hold(n1.raft)
    const refused = spawnDev(['--data', data, ...shape])
    runs.push(refused)
    assert.deepEqual(await waitDevExit(refused), { code: 1, signal: null })
    const lines = refused.output.trimEnd().split('\n')
    assert.equal(lines.length, 1, refused.output)
    const line = lines[0] as string
    assert.ok(line.startsWith('oncekv dev: '), line)
    assert.ok(line.includes(`port ${n1.raft} (n1's Raft address)`), line)
    assert.match(line, /--fresh/)
    assert.deepEqual(recorded(), was, 'a refused start changes nothing')
    // What the line advises works: --fresh starts an empty system on free ports.
    const dev = await start(['--fresh'])
    const now = recorded()
    assert.notEqual(now.dbs[0]?.raft, n1.raft)
    const c1 = dev.nodes.get('c1')?.url
    assert.equal((await fetch(`${c1}/keys/dev/kept`)).status, 404)
    await stopDev(dev, 'SIGINT')
    await release()
  })

  it('prints how to start again a process that died, and that command works', async () => {
    const dev = await start([])
    const cache = dev.nodes.get('c1')
    assert.ok(cache, dev.output)
    process.kill(cache.pid, 'SIGKILL')
    const line = await waitFor(
      'the line naming the dead cache',
      () => dev.output.split('\n').find((l) => l.includes('to start it again: ')),
      { timeoutMs: 10_000 },
    )
    assert.match(dev.output, /oncekv dev: c1 exited \(SIGKILL\); its log is \S+c1\.log/)
    const command = line.replace(/^.*to start it again: /, '').replace(/ &$/, '')
    assert.match(command, / cache --http /)
    // The printed command, through a shell as a user would paste it (without the final &).
    const again = spawn('sh', ['-c', `exec ${command}`], { stdio: 'ignore' })
    try {
      await waitFor(
        'the cache started again to answer',
        async () => (await fetch(`${cache.url}/readyz`).catch(() => undefined))?.status === 200,
        { timeoutMs: 30_000 },
      )
    } finally {
      again.kill('SIGKILL')
    }
    await stopDev(dev, 'SIGINT')
  })

  it('names a process it had to kill on Ctrl-C, and exits 1', async () => {
    const dev = await start(['--stop-timeout-ms', '2000'])
    const cache = dev.nodes.get('c1')
    assert.ok(cache, dev.output)
    // A stopped process cannot handle SIGTERM: dev waits its 2 s, then kills it.
    process.kill(cache.pid, 'SIGSTOP')
    dev.child.kill('SIGINT')
    assert.deepEqual(await waitDevExit(dev, 40_000), { code: 1, signal: null })
    assert.match(dev.output, /oncekv dev: c1 did not stop within 2 s and was killed; see the logs/)
    assert.doesNotMatch(dev.output, /oncekv dev: stopped\./)
    for (const [id, n] of dev.nodes) assert.equal(isRunning(n.pid), false, `${id} still runs`)
    dev.stopped = true
  })
})
