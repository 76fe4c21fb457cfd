// `npm run test:unit`: every *.test.ts file under src/, test/ and web/src/, with Node's test
// runner, in two passes.
//
// 1. Most files, one at a time by default. ONCEKV_TEST_CONCURRENCY=2 runs two at a time (each
//    file is its own process; the ports freePort in test/e2e/cluster.ts hands out are kept
//    apart across files by lock files in a folder made for this run, ONCEKV_TEST_PORT_LOCKS).
//    On this project's 2-core machine that took the test files from 12.1 to 9.3 minutes
//    but made them flaky: the e2e clusters elect with 200 ms timeouts
//    (20 ms ticks), and under the doubled load a leader went unheard that long and lost its
//    leadership in the middle of a test that expects every write to succeed (1 run of 3).
//    Node's own default would be one file per core but one, on any machine.
// 2. Then, one at a time always, the files that share something no lock covers: the package
//    test rebuilds build/, dist/ and web/dist/ (which the others run from), and the two that
//    start `oncekv dev` on its default ports.
//
// Exit code 1 when either pass fails; both always run.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { scriptArgs, usageError } from './script-args.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const ALONE = [/^test\/pack\//, /^test\/browser\//]

scriptArgs(
  `Usage: npm run test:unit [-- --help]

Runs every test file: most in a first pass, then the package and browser tests one at a time.
ONCEKV_TEST_CONCURRENCY=<n> runs n files at a time in the first pass (default 1).`,
  {},
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
const alone = files.filter((f) => ALONE.some((re) => re.test(f)))
const together = files.filter((f) => !alone.includes(f))
const concurrency = Number.parseInt(process.env.ONCEKV_TEST_CONCURRENCY ?? '1', 10)
if (!(concurrency >= 1)) usageError('ONCEKV_TEST_CONCURRENCY must be a whole number of at least 1')

// Made here, removed at the end: no lock outlives the run.
const portLocks = mkdtempSync(join(tmpdir(), 'oncekv-test-ports-'))
process.once('exit', () => rmSync(portLocks, { recursive: true, force: true }))

function pass(name: string, list: string[], n: number): boolean {
  if (list.length === 0) return true
  console.log(`\n== ${name}: ${list.length} files, ${n} at a time\n`)
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${n}`, '--test-reporter=spec', ...list],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ONCEKV_TEST_PORT_LOCKS: portLocks } },
  )
  if (r.error) throw r.error
  if (r.status !== 0) console.log(`\n== ${name}: failed (exit ${r.status ?? r.signal})`)
  return r.status === 0
}

const started = Date.now()
const first = pass('pass 1', together, concurrency)
const second = pass('pass 2 (package and browser tests)', alone, 1)
const seconds = ((Date.now() - started) / 1000).toFixed(0)
const failed = [first ? '' : 'pass 1', second ? '' : 'pass 2'].filter(Boolean).join(' and ')
console.log(
  `\n== ${files.length} test files in ${seconds} s: ${failed ? `${failed} failed` : 'all passed'}`,
)
process.exit(first && second ? 0 : 1)
