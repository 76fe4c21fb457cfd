// Server processes for the benchmarks, beside the e2e harness's oncekv processes: the bare
// node:http server (the ceiling for any Node HTTP server here), any other server binary
// (etcd, Redis) run under the harness's guard, Debian packages installed when a binary is
// missing, a wait for a quiet machine, and the JSON results file. Every process started here
// is tracked by PID and killed when the benchmark ends, however it ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, closeSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { trackChild } from '../test/e2e/cluster.ts'
import { machineBusyMs, type Progress } from './load-loop.ts'

// ------------------------------------------------------------------ the bare server

// node:http, keep-alive, a fixed body: GET /bytes/<n> answers n bytes (n up to 1 MiB), any
// other path 100 bytes. It prints its port, and it exits when its stdin closes, so it never
// outlives the benchmark.
const BARE_SERVER = `
const http = require('node:http')
const bodies = new Map()
function body(n) {
  let b = bodies.get(n)
  if (!b) { b = Buffer.alloc(n, 'v'); bodies.set(n, b) }
  return b
}
const server = http.createServer((req, res) => {
  const m = /^\\/bytes\\/(\\d+)$/.exec(req.url)
  const n = m && Number(m[1]) <= 1048576 ? Number(m[1]) : 100
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n })
  res.end(body(n))
})
server.keepAliveTimeout = 60000
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'))
process.stdin.on('end', () => process.exit(0))
process.stdin.on('close', () => process.exit(0))
process.stdin.resume()
`

/** BareServer is the running bare node:http server. */
export interface BareServer {
  readonly child: ChildProcess
  readonly url: string
}

/** startBare starts the bare server in its own process and waits for its port. */
export async function startBare(): Promise<BareServer> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawn(process.execPath, ['-e', BARE_SERVER], {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  trackChild(child)
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  let timer: NodeJS.Timeout | undefined
  try {
    const port = await new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('the bare server did not start in 10 s')), 10_000)
      child.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)))
      lines.once('line', (line) => resolve(Number(line)))
    })
    return { child, url: `http://127.0.0.1:${port}` }
  } catch (e) {
    killNow(child)
    throw e
  } finally {
    clearTimeout(timer)
    lines.close()
  }
}

// ------------------------------------------------------------------ any server process

/** running is true until the child has exited. */
export function running(child: ChildProcess | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null
}

/** killNow sends SIGKILL to a child still running (by its PID, through the handle). */
export function killNow(child: ChildProcess | undefined): void {
  if (child && running(child)) child.kill('SIGKILL')
}

/** stopChild sends SIGTERM, waits up to timeoutMs for the exit, then sends SIGKILL. */
export async function stopChild(
  child: ChildProcess | undefined,
  timeoutMs = 10_000,
): Promise<void> {
  if (!child || !running(child)) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => killNow(child), timeoutMs)
  await exited
  clearTimeout(timer)
}

/** spawnServer starts `binary args` with its output appended to logPath, tracked by the
 * harness (killed on exit and on signals). */
export function spawnServer(
  binary: string,
  args: readonly string[],
  logPath: string,
): ChildProcess {
  mkdirSync(dirname(logPath), { recursive: true })
  const fd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(binary, args, { stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
  child.on('error', () => {
    // A failed spawn shows as an exit (code -2 etc.); callers wait for readiness.
  })
  trackChild(child)
  return child
}

// ------------------------------------------------------------------ Debian packages

let aptUpdated = false

/** findBinary looks for an executable in $PATH and the usual system folders. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin', '/usr/local/bin']
  for (const d of dirs) {
    if (!d) continue
    const p = join(d, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // Not here.
    }
  }
  return undefined
}

/** Found is a binary's path, or why there is none. */
export type Found = { readonly path: string } | { readonly skip: string }

/** ensureBinary finds `binary`, or installs the Debian package `pkg` that has it (apt-get
 * update once, then apt-get install -y), printing what it does through `say`. Without root,
 * apt-get or success, or with install false (--no-install), it returns the reason to skip
 * instead of throwing. */
export function ensureBinary(
  binary: string,
  pkg: string,
  say: (line: string) => void,
  install = true,
): Found {
  const found = findBinary(binary)
  if (found) return { path: found }
  if (!install) return { skip: `${binary} is not installed (--no-install)` }
  if (process.getuid?.() !== 0)
    return {
      skip: `${binary} is not installed and this is not root (install: apt-get install ${pkg})`,
    }
  if (!findBinary('apt-get')) return { skip: `${binary} is not installed and there is no apt-get` }
  const apt = (args: string[]): string | undefined => {
    say(`running: apt-get ${args.join(' ')}`)
    const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', ...args], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      encoding: 'utf8',
      timeout: 600_000,
      maxBuffer: 64 * 2 ** 20,
    })
    if (r.status === 0) return undefined
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ')
    return `apt-get ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${tail}`
  }
  say(`${binary} not found: installing Debian's ${pkg}`)
  if (!aptUpdated) {
    const err = apt(['update'])
    if (err) return { skip: err }
    aptUpdated = true
  }
  const err = apt(['install', '-y', '--no-install-recommends', pkg])
  if (err) return { skip: err }
  const path = findBinary(binary)
  return path ? { path } : { skip: `${pkg} installed but ${binary} is still not found` }
}

/** versionOf runs `binary --version` and returns its first line. */
export function versionOf(binary: string): string {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 })
  return (r.stdout ?? '').trim().split('\n')[0] ?? ''
}

// ------------------------------------------------------------------ a quiet machine

/** QUIET: other processes (not this benchmark's) may use this many cores before a run. */
export const QUIET = 0.25

/** waitQuiet waits (at most maxSec) until processes other than ours (ourCpuMs: the CPU time
 * used so far by every process of the benchmark) use under QUIET cores over a second: other
 * work on a shared machine skews every figure. It returns the seconds it waited. */
export async function waitQuiet(
  maxSec: number,
  ourCpuMs: () => number,
  progress: Progress,
  label: string,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    const m0 = machineBusyMs()
    const o0 = ourCpuMs()
    const t0 = performance.now()
    await new Promise((r) => setTimeout(r, 1_000))
    const other = (machineBusyMs() - m0 - (ourCpuMs() - o0)) / (performance.now() - t0)
    const waited = (performance.now() - started) / 1000
    if (other < QUIET || waited >= maxSec) return waited
    progress.set(
      `${label}: waiting for a quiet machine (others use ${other.toFixed(2)} cores, ` +
        `${waited.toFixed(0)}/${maxSec} s)`,
    )
  }
}

// ------------------------------------------------------------------ results

/** writeJson writes data as JSON, formatted by Prettier when it is installed, so that the
 * file passes `prettier --check .` wherever it is written. */
export async function writeJson(path: string, data: unknown): Promise<void> {
  let text = `${JSON.stringify(data, null, 2)}\n`
  try {
    const prettier = await import('prettier')
    text = await prettier.format(text, { parser: 'json' })
  } catch {
    // Plain JSON, then.
  }
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}
