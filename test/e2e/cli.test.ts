// End to end: the CLI's data commands (put, get, status, bench) run as processes against a
// real system (three members, the admin, two cache nodes): outputs, exit codes (0 ok, 1 error,
// 2 usage, 3 conflict, 4 not found), one-line errors, and binary values byte for byte through
// files and through stdin/stdout.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import type { Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { closedPortUrl } from './client-net.test-helper.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(REPO_ROOT, 'bin', 'oncekv.js')

interface Run {
  readonly code: number | null
  readonly stdout: Buffer
  readonly stderr: string
}

/** oncekv runs the CLI with args (stdin: input, or an empty pipe) and collects its output. */
function oncekv(
  args: readonly string[],
  opts: { input?: Uint8Array; env?: Record<string, string> } = {},
): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env }
  delete env.NODE_OPTIONS
  delete env.NODE_TEST_CONTEXT
  if (!opts.env?.ONCEKV_ADMIN) delete env.ONCEKV_ADMIN
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input)
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({
        code,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      })
    })
  })
}

/** expect checks a run's exit code, quoting its output when it differs. */
function expectCode(run: Run, code: number, what: string): void {
  assert.equal(
    run.code,
    code,
    `${what}: exit ${run.code}\nstdout: ${run.stdout.toString('utf8').slice(0, 500)}\nstderr: ${run.stderr.slice(0, 1500)}`,
  )
}

/** oneLine checks that stderr is exactly one line and returns it. */
function oneLine(run: Run): string {
  const lines = run.stderr.trimEnd().split('\n')
  assert.equal(lines.length, 1, `stderr is not one line: ${run.stderr}`)
  return lines[0] as string
}

describe('oncekv put, get, status, bench', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let admin: string
  let dir: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oncekv-cli-'))
    cluster = await clusters.start({ name: 'cli', size: 3 })
    admin = (await cluster.startAdmin()).url
    await cluster.startCaches(2)
  })

  after(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('puts once, reports the same value and conflicts, gets and misses', async () => {
    const r = await oncekv(['put', 'greeting', 'hello', '--admin', admin])
    expectCode(r, 0, 'put')
    assert.equal(r.stdout.toString(), 'created\n')
    const [same, conflict, got, missing] = await Promise.all([
      oncekv(['put', 'greeting', 'hello', '--admin', admin]),
      oncekv(['put', 'greeting', 'other', '--admin', admin]),
      oncekv(['get', 'greeting', '--admin', admin]),
      oncekv(['get', 'no-such-key', '--admin', admin]),
    ])
    expectCode(same, 0, 'put again')
    assert.equal(same.stdout.toString(), 'already there (same value)\n')
    expectCode(conflict, 3, 'put another value')
    assert.match(
      oneLine(conflict),
      /^oncekv put: key "greeting" already holds a different value \(etag "[\w-]+"\)$/,
    )
    assert.equal(conflict.stdout.length, 0)
    expectCode(got, 0, 'get')
    assert.equal(got.stdout.toString(), 'hello')
    expectCode(missing, 4, 'get a missing key')
    assert.equal(oneLine(missing), 'oncekv get: key "no-such-key" not found')
    assert.equal(missing.stdout.length, 0)

    // $ONCEKV_ADMIN is the default admin; --db and --cache lists work without one. Each flag
    // takes one value (a URL or a comma-separated list) and may be repeated, so positional
    // arguments after them stay positional.
    const dbs = cluster.running().map((n) => n.url)
    const caches = cluster.runningCaches().map((c) => c.url)
    const cacheFlags = caches.flatMap((c) => ['--cache', c])
    const [viaEnv, viaLists, viaDb, flagsFirst, putFlagsFirst] = await Promise.all([
      oncekv(['get', 'greeting'], { env: { ONCEKV_ADMIN: admin } }),
      oncekv(['get', 'greeting', '--db', dbs.join(','), ...cacheFlags]),
      oncekv(['put', 'listed', 'x', '--db', dbs[1] as string]),
      oncekv([
        'get',
        '--db',
        dbs[0] as string,
        '--db',
        dbs[2] as string,
        ...cacheFlags,
        'greeting',
      ]),
      oncekv(['put', '--db', dbs.join(','), 'listed/first', 'y']),
    ])
    expectCode(viaEnv, 0, 'get through $ONCEKV_ADMIN')
    assert.equal(viaEnv.stdout.toString(), 'hello')
    expectCode(viaLists, 0, 'get through --db and --cache')
    assert.equal(viaLists.stdout.toString(), 'hello')
    expectCode(viaDb, 0, 'put through --db')
    assert.equal(viaDb.stdout.toString(), 'created\n')
    expectCode(flagsFirst, 0, 'get with --db and --cache before the key')
    assert.equal(flagsFirst.stdout.toString(), 'hello')
    expectCode(putFlagsFirst, 0, 'put with --db before the key and value')
    assert.equal(putFlagsFirst.stdout.toString(), 'created\n')
    const bad = await oncekv(['get', '--db', `${dbs[0]},`, 'greeting'])
    expectCode(bad, 2, 'an empty URL in a --db list')
  })

  it('moves binary values byte for byte through files and through stdin and stdout', async () => {
    const value = randomBytes(300 * 1024)
    value.fill(0, 0, 1024)
    value[2000] = 0xff
    value[2001] = 0xfe
    value[2002] = 0xc3 // a lone UTF-8 lead byte
    const input = join(dir, 'in.bin')
    const output = join(dir, 'out.bin')
    writeFileSync(input, value)
    const [putFile, putStdin] = await Promise.all([
      oncekv(['put', 'bin/file', '--file', input, '--admin', admin]),
      oncekv(['put', 'bin/stdin', '--admin', admin], { input: value }),
    ])
    expectCode(putFile, 0, 'put --file')
    assert.equal(putFile.stdout.toString(), 'created\n')
    expectCode(putStdin, 0, 'put from stdin')
    assert.equal(putStdin.stdout.toString(), 'created\n')
    const [getOut, getStdout, sameAgain] = await Promise.all([
      oncekv(['get', 'bin/stdin', '--out', output, '--admin', admin]),
      oncekv(['get', 'bin/file', '--admin', admin]),
      oncekv(['put', 'bin/file', '--admin', admin], { input: value }),
    ])
    expectCode(getOut, 0, 'get --out')
    assert.equal(getOut.stdout.length, 0)
    assert.ok(readFileSync(output).equals(value), 'get --out wrote other bytes')
    expectCode(getStdout, 0, 'get to stdout')
    assert.ok(getStdout.stdout.equals(value), 'get wrote other bytes to stdout')
    expectCode(sameAgain, 0, 'put the same bytes from stdin')
    assert.equal(sameAgain.stdout.toString(), 'already there (same value)\n')
  })

  it('shows the nodes with status, through the admin or the members', async () => {
    // The admin's overview fills within a second or two of the nodes starting.
    let viaAdmin: Run | undefined
    for (let i = 0; i < 20; i++) {
      viaAdmin = await oncekv(['status', '--admin', admin])
      expectCode(viaAdmin, 0, 'status --admin')
      if (!/down|suspect/.test(viaAdmin.stdout.toString())) break
    }
    const table = viaAdmin!.stdout.toString()
    const lines = table.trimEnd().split('\n')
    assert.match(lines[0] as string, /^leader n\d, term \d+/)
    assert.match(lines[1] as string, /^KIND\s+ID\s+URL\s+ROLE\s+HEALTH\s+KEYS\s+CACHE USE$/)
    assert.equal(lines.filter((l) => /^db\s/.test(l)).length, 3, table)
    assert.equal(lines.filter((l) => /^cache\s/.test(l)).length, 2, table)
    assert.equal(lines.filter((l) => /\sleader\s+up\s/.test(l)).length, 1, table)
    assert.equal(lines.filter((l) => /\sfollower\s+up\s/.test(l)).length, 2, table)
    assert.match(table, /B \/ 64\.0 MiB \(\d+%\)/)

    const dbs = cluster.running().map((n) => n.url)
    const caches = cluster.runningCaches().map((c) => c.url)
    const [direct, json] = await Promise.all([
      oncekv(['status', '--db', dbs[2] as string, ...caches.flatMap((c) => ['--cache', c])]),
      oncekv(['status', '--db', dbs.join(','), '--json']),
    ])
    expectCode(direct, 0, 'status --db --cache')
    const dl = direct.stdout.toString().trimEnd().split('\n')
    assert.equal(
      dl.filter((l) => /^db\s.*\s(leader|follower)\s+up\s/.test(l)).length,
      3,
      dl.join('\n'),
    )
    assert.equal(dl.filter((l) => /^cache\s.*\s-\s+up\s/.test(l)).length, 2, dl.join('\n'))
    expectCode(json, 0, 'status --json')
    const rows = JSON.parse(json.stdout.toString()) as {
      kind: string
      role: string
      keys: number
    }[]
    assert.equal(rows.length, 3)
    assert.deepEqual(rows.map((r) => r.role).sort(), ['follower', 'follower', 'leader'])
    assert.ok(rows.every((r) => r.kind === 'db' && r.keys >= 2))
  })

  it('runs a quick bench and summarizes it', async () => {
    const r = await oncekv(['bench', '-n', '300', '-c', '8', '--size', '64', '--admin', admin])
    expectCode(r, 0, 'bench')
    const out = r.stdout.toString()
    assert.match(out, /phase\s+ops\s+errors\s+seconds\s+ops\/s\s+p50 ms\s+p99 ms\s+max ms/)
    assert.match(out, /put\s+300\s+0\s+[\d.]+\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+/)
    assert.match(out, /get\s+300\s+0\s+[\d.]+\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+/)
    // Not a terminal: one line per phase instead of a progress bar.
    assert.match(r.stderr, /^put: 300 of 300 in [\d.]+ s$/m)
    assert.match(r.stderr, /^get: 300 of 300 in [\d.]+ s$/m)
  })

  it('exits 1 when nothing answers, 2 on usage errors', async () => {
    const dead = await closedPortUrl()
    const deadCache = await closedPortUrl()
    // The bench with its defaults (1000 keys, 16 in flight, 5 s per call) stops once its first
    // calls failed: nothing answers. (Alone: a dozen CLI processes starting at once would
    // make its time say little.)
    const benchStarted = performance.now()
    const benchDead = await oncekv(['bench', '--db', dead])
    const benchMs = performance.now() - benchStarted
    const runs = await Promise.all([
      oncekv(['get', 'k', '--db', dead]),
      oncekv(['put', 'k', 'v', '--admin', dead]),
      oncekv(['status', '--admin', dead]),
      oncekv(['status', '--db', dead, '--cache', deadCache]),
      oncekv(['status', '--json', '--cache', deadCache, '--db', dead]),
      oncekv(['put']),
      oncekv(['get', 'k', '--bogus']),
      oncekv(['put', 'k', 'v', '--file', join(dir, 'in.bin')]),
      oncekv(['put', '', 'v', '--admin', admin]),
      oncekv(['bench', '-n', '0']),
      oncekv(['get', 'k'], { env: { ONCEKV_ADMIN: 'ftp://x' } }),
      oncekv(['no-such-command']),
      oncekv(['put', 'from-empty-stdin', '--admin', admin], { input: new Uint8Array(0) }),
    ])
    const [getDead, putDead, statusDead, statusNodes, statusJson, ...usage] = runs
    expectCode(getDead!, 1, 'get from a closed port')
    assert.match(
      oneLine(getDead!),
      /^oncekv get: (\d+ attempts failed|no answer within \d+ ms).*http:\/\/.+ECONNREFUSED/,
    )
    expectCode(putDead!, 1, 'put through a closed admin')
    assert.match(oneLine(putDead!), /^oncekv put: cannot get the node lists from the admin at /)
    expectCode(statusDead!, 1, 'status of a closed admin')
    assert.match(oneLine(statusDead!), /^oncekv status: cannot reach the admin at /)
    expectCode(benchDead, 1, 'bench against a closed port')
    assert.ok(benchMs < 12_000, `bench against a closed port took ${Math.round(benchMs)} ms`)
    // No get phase after no put succeeded; the error is the last line, and one line.
    assert.doesNotMatch(benchDead.stderr, /^get/m)
    assert.match(
      benchDead.stderr.trimEnd().split('\n').at(-1)!,
      /^oncekv bench: the put phase stopped: its first 16 calls all failed; the first: put "[^"]+": (no answer within 5000 ms; the last failure:|\d+ attempts failed; the last at) http:\S+: .*ECONNREFUSED/,
    )
    assert.match(benchDead.stdout.toString(), /^put\s+16\s+16\s/m)
    // status with no member reachable: the rows on stdout, one line on stderr, exit 1.
    for (const [r, what] of [
      [statusNodes!, 'status --db --cache'],
      [statusJson!, 'status --json --cache --db'],
    ] as const) {
      expectCode(r, 1, `${what} of closed ports`)
      assert.match(
        oneLine(r),
        /^oncekv status: no database member answered \(http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\)$/,
        what,
      )
    }
    assert.match(statusNodes!.stdout.toString(), /^no leader known\nKIND\s/)
    assert.match(statusNodes!.stdout.toString(), /^cache\s.*\s-\s+down\s/m)
    const jsonRows = JSON.parse(statusJson!.stdout.toString()) as { kind: string; health: string }[]
    assert.deepEqual(
      jsonRows.map((r) => [r.kind, r.health]),
      [['cache', 'down']],
    )
    for (const [i, r] of usage.entries()) expectCode(r, 2, `usage error #${i}`)
    assert.match(usage[3]!.stderr, /^oncekv put: key must not be empty$/m)
    assert.match(
      usage.at(-1)!.stderr,
      /^oncekv put: stdin was empty; to put an empty value, give '' \(see oncekv put --help\)$/m,
    )
  })
})
