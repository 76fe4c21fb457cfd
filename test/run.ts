// `npm test` (`npm run test:unit` without --checks): every *.test.ts file under src/, test/
// and web/src/, with Node's test runner, in two passes.
//
// 1. Two lanes side by side, one file at a time in each:
//    - the cluster lane: the files that start oncekv processes with elections and failover
//      clocks (test/e2e/, the chaos run, the link proxies). Their clusters elect with 200 ms
//      timeouts (20 ms ticks); two of these files at a time on this project's 2-core machine
//      (ONCEKV_TEST_CONCURRENCY=2) took them from 12.1 to 9.3 minutes but failed one run of
//      three (a leader went unheard that long mid-test), and raising the timeout to 500 ms
//      made writes through a leader's self-removal slower than the tests allow.
//    - the side lane: with --checks, the typecheck and the linter first; then the files that
//      start no cluster or only a one-member system (src/, web/src/, the simulator, the
//      chaos checker, the HTTP fuzzer): one busy process beside the cluster lane.
//    The side lane's output is printed in one block as each step ends; the cluster lane
//    streams.
// 2. Then, alone, the files that share something no lock covers: the package test rebuilds
//    build/, dist/ and web/dist/ (which the others run from), and the two that start
//    `oncekv dev` on its default ports.
//
// Ports: freePort (test/e2e/cluster.ts) keeps the ports it hands out apart across the test
// processes of the run by lock files in a folder made for the run (ONCEKV_TEST_PORT_LOCKS).
// Exit code 1 when anything fails; every step runs, even after a failure.
import { spawn, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { constants as osConstants, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { scriptArgs, usageError } from './script-args.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const ALONE = [/^test\/pack\//, /^test\/browser\//]
const SIDE = [
  /^src\//,
  /^web\//,
  /^test\/sim\//,
  /^test\/chaos\/checker\.test\.ts$/,
  /^test\/fuzz\//,
]

const args = scriptArgs(
  `Usage: npm run test:unit [-- --checks] [-- --help]

Runs every test file: the files that start clusters one at a time, beside a lane with the
others (and with --checks, the typecheck and the linter first); then the package and browser
tests one at a time. ONCEKV_TEST_CONCURRENCY=<n> runs n cluster files at a time (default 1).`,
  { checks: { type: 'boolean', default: false } },
)

function testFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) out.push(...testFiles(path))
    else if (e.name.endsWith('.test.ts')) out.push(relative(ROOT, path))
  }
  return out
}

const files = ['src', 'test', join('web', 'src')].flatMap((d) => testFiles(join(ROOT, d))).sort()
const matches = (res: RegExp[]) => (f: string) => res.some((re) => re.test(f))
const alone = files.filter(matches(ALONE))
const side = files.filter((f) => !alone.includes(f) && matches(SIDE)(f))
const clusters = files.filter((f) => !alone.includes(f) && !side.includes(f))
const concurrency = Number.parseInt(process.env.ONCEKV_TEST_CONCURRENCY ?? '1', 10)
if (!(concurrency >= 1)) usageError('ONCEKV_TEST_CONCURRENCY must be a whole number of at least 1')

// Made here, removed at the end: no lock outlives the run.
const portLocks = mkdtempSync(join(tmpdir(), 'oncekv-test-ports-'))
process.once('exit', () => rmSync(portLocks, { recursive: true, force: true }))
const env = { ...process.env, ONCEKV_TEST_PORT_LOCKS: portLocks }

// Ctrl-C or SIGTERM: the signal goes to the steps running, no further step starts, and the
// run exits 128 + the signal's number once they ended (their output printed). A second
// signal kills them and exits at once.
const children = new Set<ReturnType<typeof spawn>>()
let stoppedBy: NodeJS.Signals | undefined
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stoppedBy !== undefined) {
      for (const c of children) c.kill('SIGKILL')
      process.exit(128 + osConstants.signals[signal])
    }
    stoppedBy = signal
    console.log(`\n== ${signal}: stopping the steps running; none starts after them`)
    for (const c of children) c.kill(signal)
  })
}

interface Step {
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
}

/** run runs one step; streamed, its output goes straight to ours, else it is printed in one
 * block when the step ends. It resolves true when the step exited 0. */
function run(step: Step, streamed: boolean): Promise<boolean> {
  const started = Date.now()
  const opts: SpawnOptions = { cwd: ROOT, env, stdio: streamed ? 'inherit' : 'pipe' }
  if (streamed) console.log(`\n== ${step.name}\n`)
  const child = spawn(step.command, step.args, opts)
  children.add(child)
  const chunks: Buffer[] = []
  child.stdout?.on('data', (b: Buffer) => chunks.push(b))
  child.stderr?.on('data', (b: Buffer) => chunks.push(b))
  return new Promise((resolve) => {
    let settled = false
    const end = (ok: boolean, outcome: string): void => {
      if (settled) return
      settled = true
      children.delete(child)
      const took = `${((Date.now() - started) / 1000).toFixed(0)} s`
      const line = `== ${step.name}: ${outcome} after ${took}`
      if (streamed) console.log(`\n${line}`)
      else process.stdout.write(`\n== ${step.name}\n\n${Buffer.concat(chunks)}\n${line}\n`)
      resolve(ok)
    }
    // 'close' may not follow an 'error' (a command that could not start).
    child.once('error', (err) => end(false, `could not run ${step.command}: ${err.message}`))
    child.once('close', (code, signal) =>
      end(code === 0, code === 0 ? 'passed' : `failed (exit ${code ?? signal})`),
    )
  })
}

/** tests is a step running the test files of list (none: no step; `node --test` without
 * files would run every test file it finds). */
function tests(name: string, list: string[], n: number): Step[] {
  if (list.length === 0) return []
  return [
    {
      name: `${name}: ${list.length} files, ${n} at a time`,
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${n}`,
        '--test-reporter=spec',
        ...list,
      ],
    },
  ]
}

const npm = (name: string, script: string): Step => ({
  name,
  command: 'npm',
  args: ['run', '--silent', script],
})

/** lane runs its steps one after another, every one even after a failure. */
async function lane(steps: Step[], streamed: boolean): Promise<boolean> {
  let ok = true
  for (const step of steps) {
    if (stoppedBy !== undefined) return false
    if (!(await run(step, streamed))) ok = false
  }
  return ok
}

const started = Date.now()
const checks = args.checks ? [npm('typecheck', 'typecheck'), npm('lint', 'lint')] : []
const firstPass = await Promise.all([
  lane(tests('cluster lane', clusters, concurrency), true),
  lane([...checks, ...tests('side lane', side, 1)], false),
])
const second = await lane(tests('pass 2 (package and browser tests)', alone, 1), true)
const failed = [
  firstPass[0] ? '' : 'the cluster lane',
  firstPass[1] ? '' : 'the side lane',
  second ? '' : 'pass 2',
].filter(Boolean)
const seconds = ((Date.now() - started) / 1000).toFixed(0)
const what = `${files.length} test files${args.checks ? ', typecheck and lint' : ''}`
if (stoppedBy !== undefined) {
  console.log(`\n== ${what}: stopped by ${stoppedBy} after ${seconds} s`)
  process.exit(128 + osConstants.signals[stoppedBy])
}
console.log(
  `\n== ${what} in ${seconds} s: ${failed.length ? `${failed.join(', ')} failed` : 'all passed'}`,
)
process.exit(failed.length ? 1 : 0)
