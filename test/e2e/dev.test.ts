// End to end: `oncekv dev` started again on a folder whose recorded ports are now taken. The
// admin and cache nodes store no addresses, so they move to free ports (and say so); a
// member's address is stored in its data directory, so a taken member port stops the start
// with a message naming the member, the port and what to do.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'
import type { DevPorts } from '../../src/dev/dev.ts'
import { waitFor } from './cluster.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'oncekv.js')

interface Dev {
  readonly child: ChildProcess
  output: string
  readonly exited: Promise<number | null>
}

function startDev(dir: string, fresh: boolean): Dev {
  const args = [BIN, 'dev', '--data', dir, '--nodes', '1', '--caches', '1']
  const child = spawn(process.execPath, fresh ? [...args, '--fresh'] : args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const dev: Dev = {
    child,
    output: '',
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
  }
  child.stdout?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  child.stderr?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  return dev
}

async function waitUp(dev: Dev): Promise<void> {
  await waitFor(
    'oncekv dev to be up',
    () => {
      if (dev.child.exitCode !== null) throw new Error(`oncekv dev exited: ${dev.output}`)
      return dev.output.includes('Ctrl-C stops everything')
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
}

async function stop(dev: Dev): Promise<number | null> {
  if (dev.child.exitCode === null) dev.child.kill('SIGINT')
  return dev.exited
}

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(port, '127.0.0.1', () => resolve(s))
  })
}

describe('oncekv dev with taken ports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-dev-ports-'))
  const running: Dev[] = []
  const held: Server[] = []
  after(async () => {
    for (const d of running) if (d.child.exitCode === null) d.child.kill('SIGKILL')
    for (const s of held) s.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('moves the admin and caches to free ports, and refuses a taken member port clearly', async () => {
    const first = startDev(dir, true)
    running.push(first)
    await waitUp(first)
    assert.equal(await stop(first), 0, first.output)
    const ports = JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8')) as DevPorts

    // The admin's and the cache's ports are taken: they move, and the system comes up.
    held.push(await hold(ports.admin), await hold(ports.caches[0]!.http))
    const second = startDev(dir, false)
    running.push(second)
    await waitUp(second)
    assert.match(second.output, new RegExp(`port ${ports.admin} of the admin is taken; using \\d+`))
    assert.match(second.output, new RegExp(`port ${ports.caches[0]!.http} of cache c1 is taken`))
    const moved = JSON.parse(readFileSync(join(dir, 'ports.json'), 'utf8')) as DevPorts
    assert.notEqual(moved.admin, ports.admin)
    assert.deepEqual(moved.dbs, ports.dbs)
    const caches = (await (
      await fetch(`http://127.0.0.1:${moved.admin}/caches`)
    ).json()) as string[]
    assert.deepEqual(caches, [`http://127.0.0.1:${moved.caches[0]!.http}`])
    assert.equal(await stop(second), 0, second.output)

    // A member's port is taken: a clear one-line refusal, nothing started.
    held.push(await hold(ports.dbs[0]!.http))
    const third = startDev(dir, false)
    running.push(third)
    const code = await third.exited
    assert.notEqual(code, 0)
    assert.match(
      third.output,
      new RegExp(`port ${ports.dbs[0]!.http} \\(the HTTP port of member n1, .*--fresh`),
    )
  })
})
