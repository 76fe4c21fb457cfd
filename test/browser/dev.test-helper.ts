// `oncekv dev` as a user runs it, for tests: spawn the command, wait for its banner and read
// the URLs and process ids from it, and stop it with a signal, requiring a clean stop (exit
// code 0 and every process it started gone). A test that fails midway still leaves nothing
// behind: killDev kills the command and every process it listed.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../e2e/cluster.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'oncekv.js')

/** DevNode is one process of the system, as the banner lists it. */
export interface DevNode {
  readonly url: string
  readonly pid: number
}

/** Dev is a running `oncekv dev` command. */
export interface Dev {
  readonly child: ChildProcess
  /** output is stdout and stderr so far, interleaved. */
  output: string
  /** exit resolves when the command exits. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  adminUrl: string
  /** nodes are the members (n1…), the caches (c1…) and the admin, by id. */
  readonly nodes: Map<string, DevNode>
  /** stopped is set once stopDev has seen every process gone. */
  stopped: boolean
}

/** spawnDev runs `oncekv dev` with args (in the project's folder) and collects its output;
 * it does not wait. */
export function spawnDev(args: readonly string[]): Dev {
  const child = spawn(process.execPath, [BIN, 'dev', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  )
  const dev: Dev = { child, output: '', exit, adminUrl: '', nodes: new Map(), stopped: false }
  child.stdout?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  child.stderr?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  return dev
}

/** waitDevUp waits for the banner and reads the URLs and pids from it. */
export async function waitDevUp(dev: Dev, timeoutMs = 90_000): Promise<Dev> {
  await waitFor(
    'oncekv dev to be up',
    () => {
      if (dev.child.exitCode !== null) throw new Error(`oncekv dev exited: ${dev.output}`)
      return dev.output.includes('Ctrl-C stops everything')
    },
    { timeoutMs, intervalMs: 100 },
  )
  const admin = /dashboard\s+(http:\/\/\S+)\s+\(admin pid (\d+)\)/.exec(dev.output)
  assert.ok(admin, dev.output)
  dev.adminUrl = admin[1] as string
  dev.nodes.set('admin', { url: dev.adminUrl, pid: Number(admin[2]) })
  for (const m of dev.output.matchAll(
    /^\s+(?:database|cache)\s+(\w+)\s+(http:\/\/\S+)\s.*pid (\d+)$/gm,
  ))
    dev.nodes.set(m[1] as string, { url: m[2] as string, pid: Number(m[3]) })
  return dev
}

/** startDev spawns `oncekv dev` and waits until it is up. */
export function startDev(args: readonly string[]): Promise<Dev> {
  return waitDevUp(spawnDev(args))
}

/** waitDevExit waits for the command to exit by itself (a refused start) and returns how. */
export async function waitDevExit(
  dev: Dev,
  timeoutMs = 30_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined
  const exit = await Promise.race([
    dev.exit,
    new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), timeoutMs))),
  ])
  clearTimeout(timer)
  assert.ok(exit, `oncekv dev did not exit within ${timeoutMs} ms: ${dev.output}`)
  return exit
}

/** isRunning says whether a process exists (signal 0 checks without signalling). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/** stopDev sends the signal (Ctrl-C's by default) and requires a clean stop: the command
 * exits with code 0 within timeoutMs, and every process it listed is gone a moment later
 * (dev waits for each one; the moment covers the kernel's bookkeeping). It resolves with how
 * long the command took to exit. */
export async function stopDev(
  dev: Dev,
  signal: NodeJS.Signals = 'SIGINT',
  timeoutMs = 30_000,
): Promise<number> {
  assert.equal(dev.child.exitCode, null, `oncekv dev exited early: ${dev.output}`)
  const started = Date.now()
  dev.child.kill(signal)
  const exit = await waitDevExit(dev, timeoutMs)
  const ms = Date.now() - started
  assert.deepEqual(exit, { code: 0, signal: null }, `oncekv dev after ${signal}: ${dev.output}`)
  await waitFor(
    'every process oncekv dev started to be gone',
    () => [...dev.nodes.values()].every((n) => !isRunning(n.pid)),
    { timeoutMs: 2_000 },
  )
  dev.stopped = true
  return ms
}

/** killDev kills the command and every process it listed that still runs, unless stopDev saw
 * them all gone (an after hook's last resort). */
export async function killDev(dev: Dev): Promise<void> {
  if (dev.stopped) return
  for (const n of dev.nodes.values()) {
    try {
      process.kill(n.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  if (dev.child.exitCode === null && dev.child.signalCode === null) {
    dev.child.kill('SIGKILL')
    await dev.exit
  }
}
