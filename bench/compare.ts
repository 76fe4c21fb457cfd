// oncekv side by side with etcd and Redis (issue 7): one load generator process (this one)
// drives every system the same way on the same machine in the same run.
//
//   npm run bench:compare -- [--seconds 8] [--warmup 2] [--rounds 2] [--quick]
//       [--concurrency 1,16,128] [--sizes 100,4096] [--read-keys 10000]
//       [--memory-keys 1000000] [--systems oncekv,etcd,redis,bare] [--quiet-wait 5] [--prime 2]
//       [--no-install] [--json bench-results/compare-<date>.json]
//
// Systems, all on loopback with their data under a temp folder (removed at the end):
//   oncekv          3 `oncekv db` members, the admin and 3 `oncekv cache` nodes (the e2e
//                   harness: real processes, production tick and cache settings)
//   etcd            a 3-member etcd cluster (Debian's etcd-server, default fsync settings)
//   redis-always    redis-server with appendonly yes, appendfsync always (durable like oncekv)
//   redis-everysec  the same with appendfsync everysec (up to a second of writes lost)
//   bare            a bare node:http server answering a fixed body: the ceiling for any Node
//                   HTTP server on this machine
// etcd-server and redis-server are installed with apt-get when missing (as root); a system
// that cannot be had is skipped with the reason, never a crash.
//
// Clients: oncekv over HTTP with undici pools (keep-alive, C connections per node); etcd
// through the etcd3 gRPC client (writes through a client of its leader alone, as oncekv's go
// to its leader; reads each to a random member); Redis through ioredis (one connection,
// commands pipelined on it as they come).
//
// Every run is a closed loop with C requests in flight for --seconds after --warmup seconds of
// the same load; before the first round every case runs once for --prime seconds, unmeasured
// (V8 compiles oncekv's paths over their first 10-15 s of load). Writes are unique keys with 100 B and 4 KiB values: oncekv PUT /keys/<key>
// as the client library sends them (any member until a follower's answer names the leader in
// x-oncekv-leader, then the leader), etcd a put-if-absent
// transaction If(createRevision(key) == 0) Then(Put), Redis SET key value NX. Reads are of
// --read-keys keys written before the runs: oncekv through one cache node (keys it owns, main-
// cache hits), from one follower (a local hit), and of keys never written round-robin over the
// members (404 after a ReadIndex round: a linearizable not-found); etcd linearizable and
// serializable gets; Redis GET; the bare server's fixed body of the same size. The whole set
// runs --rounds times (later rounds run the systems of each case in the reverse order).
//
// Each run reports ops/s, p50/p99/max latency, errors, the CPU time of the system's server
// processes per operation (from /proc/<pid>/stat: oncekv's members, caches and admin; etcd's
// members; the Redis or bare server), the generator's own CPU share (>= 90 % of a core marks
// the run generator-bound: it measured the client) and how much CPU other processes on the
// machine took meanwhile. Then the ratios oncekv/etcd and oncekv/Redis for the targets of
// issue 7, and resident memory of each oncekv process on a fresh system: idle, after writing
// --memory-keys 100 B keys, and after reading them all through the caches.
//
// Every loop is bounded in time and count; Ctrl-C, SIGTERM or a failure stop every process
// started (by PID) and remove the temp folders.
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { HashRing } from '../src/cache/ring.ts'
import { Cluster, waitFor, type CacheProcess, type DbProcess } from '../test/e2e/cluster.ts'
import {
  closedLoop,
  forEachBounded,
  machineBusyMs,
  procCpuMs,
  procRss,
  Progress,
  type ProcRss,
  type LoopResult,
} from './load-loop.ts'
import { startEtcd, startRedis, type EtcdCluster, type RedisServer } from './peers.ts'
import {
  ensureBinary,
  killNow,
  QUIET,
  startBare,
  stopChild,
  versionOf,
  waitQuiet,
  writeJson,
  type BareServer,
} from './servers.ts'
import { scriptArgs, usageError } from '../test/script-args.ts'

// ------------------------------------------------------------------ options

const args = scriptArgs(
  'usage: npm run bench:compare -- [--quick] [--seconds 8] [--warmup 2] [--rounds 2] ' +
    '[--concurrency 1,16,128] [--sizes 100,4096] [--read-keys 10000] [--memory-keys 1000000] ' +
    '[--systems oncekv,etcd,redis,bare] [--ops write,read,missing] [--quiet-wait 5] [--prime 2] ' +
    '[--no-install] [--json FILE]',
  {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    sizes: { type: 'string' },
    'read-keys': { type: 'string' },
    'memory-keys': { type: 'string' },
    systems: { type: 'string', default: 'oncekv,etcd,redis,bare' },
    ops: { type: 'string', default: 'write,read,missing' },
    'quiet-wait': { type: 'string' },
    prime: { type: 'string' },
    'no-install': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
)
const quick = args.quick
/** opt is a flag's value, else its --quick default, else its full default. */
const opt = (v: string | undefined, full: string, q: string): string => v ?? (quick ? q : full)
const seconds = Number(opt(args.seconds, '8', '2'))
const warmupSeconds = Number(opt(args.warmup, '2', '0.5'))
const rounds = Number(opt(args.rounds, '2', '1'))
const concurrencies = opt(args.concurrency, '1,16,128', '16,128').split(',').map(Number)
const sizes = opt(args.sizes, '100,4096', '100').split(',').map(Number)
const readKeys = Number(opt(args['read-keys'], '10000', '2000'))
const memoryKeys = Number(opt(args['memory-keys'], '1000000', '20000'))
const quietWait = Number(opt(args['quiet-wait'], '5', '1'))
const primeSeconds = Number(opt(args.prime, '2', '0.5'))
const SYSTEM_GROUPS = ['oncekv', 'etcd', 'redis', 'bare'] as const
const wanted = new Set(args.systems.split(',').map((s) => s.trim()))
for (const s of wanted)
  if (!(SYSTEM_GROUPS as readonly string[]).includes(s)) usageError(`unknown system ${s}`)
const OPS = ['write', 'read', 'missing'] as const
const wantedOps = new Set(args.ops.split(',').map((s) => s.trim()))
for (const o of wantedOps)
  if (!(OPS as readonly string[]).includes(o)) usageError(`unknown op ${o} (${OPS.join(', ')})`)
for (const [name, n, min] of [
  ['--seconds', seconds, 0.1],
  ['--warmup', warmupSeconds, 0],
  ['--rounds', rounds, 0],
  ['--read-keys', readKeys, 1],
  ['--memory-keys', memoryKeys, 0],
  ['--quiet-wait', quietWait, 0],
  ['--prime', primeSeconds, 0],
] as const) {
  if (!Number.isFinite(n) || n < min) usageError(`${name} must be a number >= ${min}`)
}
if (!Number.isInteger(rounds)) usageError('--rounds must be an integer')
if (!concurrencies.every((c) => Number.isInteger(c) && c >= 1))
  usageError('--concurrency must be a list of positive integers')
if (!sizes.every((s) => Number.isInteger(s) && s >= 1 && s <= 1_000_000))
  usageError('--sizes must be a list of byte counts (1 to 1,000,000)')
const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, '-')
const jsonPath = args.json ?? `bench-results/compare-${stamp}.json`

/** MAX_OPS bounds one run in count (runs end on time first). */
const MAX_OPS = 10_000_000
/** GEN_BOUND: a generator using this share of a core or more is the bottleneck. */
const GEN_BOUND = 0.9
/** OP_TIMEOUT_MS bounds one request of any client. */
const OP_TIMEOUT_MS = 10_000

// ------------------------------------------------------------------ what runs

type System = 'oncekv' | 'etcd' | 'redis-always' | 'redis-everysec' | 'bare'

/** Case is one measured combination: an operation on a system at a value size and C. */
interface Case {
  readonly op: 'write' | 'read'
  readonly system: System
  /** how: put, cache hit, db hit, missing, linearizable, serializable, get, fixed body. */
  readonly how: string
  /** size is the value size in bytes (0: missing keys, no value). */
  readonly size: number
  readonly concurrency: number
}

/** Result is one run of a case in one round. */
interface Result extends Case, LoopResult {
  readonly round: number
  /** serverCpuMsPerOp: CPU time of the system's server processes per op. */
  readonly serverCpuMsPerOp: number
  /** serverCpuShare: their CPU time / wall time (1 = one core busy). */
  readonly serverCpuShare: number
  /** otherCores: CPU used by processes this benchmark did not start (1 = one core). */
  readonly otherCores: number
  readonly quietWaitSec: number
  /** sources counts x-oncekv-source of oncekv's answers (or the status without one). */
  readonly sources?: Record<string, number>
  readonly notes: string[]
}

/** Runner is a case made ready: one op, the processes whose CPU counts, and a close. */
interface Runner {
  readonly op: (i: number, tally: Map<string, number>) => Promise<boolean>
  readonly pids: () => (number | undefined)[]
  readonly close?: () => Promise<void>
  /** wantSource: every answer of the run should come from this oncekv source. */
  readonly wantSource?: string
  /** check is called just before the measured loop; what it returns, just after it, with
   * the loop's operations: a note when the run was not what it claims to measure. */
  readonly check?: () => Promise<(ops: number) => Promise<string | undefined>>
}

const caseKey = (c: Case): string => `${c.op}|${c.system}|${c.how}|${c.size}|${c.concurrency}`

// ------------------------------------------------------------------ process bookkeeping

const progress = new Progress()
const root = mkdtempSync(join(tmpdir(), 'oncekv-compare-'))
const clusters: Cluster[] = []
const peerProcs: ChildProcess[] = []
let bare: BareServer | undefined
let cleaned = false
/** failed: the run failed; its folders (logs, data) are kept for a look. */
let failed = false

/** killEverythingNow kills every process this benchmark started (SIGKILL, by PID) and
 * removes the temp folders, synchronously: for Ctrl-C, SIGTERM and exit. */
function killEverythingNow(): void {
  if (cleaned) return
  cleaned = true
  for (const c of clusters) for (const p of c.everything()) p.kill9Now()
  for (const p of peerProcs) killNow(p)
  killNow(bare?.child)
  if (failed) return
  for (const c of clusters) rmSync(c.root, { recursive: true, force: true, maxRetries: 5 })
  rmSync(root, { recursive: true, force: true, maxRetries: 5 })
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    progress.clear()
    console.error(`\n${signal}: stopping every process this benchmark started`)
    killEverythingNow()
    process.exit(code)
  })
}
process.on('exit', killEverythingNow)

/** ourCpuMs is the CPU time used so far by this process and every server it started. */
function ourCpuMs(): number {
  const gen = process.cpuUsage()
  let ms = (gen.user + gen.system) / 1000 + procCpuMs(bare?.child.pid)
  for (const p of peerProcs) ms += procCpuMs(p.pid)
  for (const c of clusters) for (const p of c.everything()) ms += procCpuMs(p.pid)
  return ms
}

const say = (line: string): void => {
  progress.clear()
  console.log(line)
}

// ------------------------------------------------------------------ clients

// The etcd and Redis clients are devDependencies loaded by name at run time: a checkout
// without them (no `npm ci` yet) skips those systems with the reason instead of failing.

interface EtcdClient {
  if(key: string, column: 'Create', cmp: '==', value: number): EtcdTxn
  put(key: string): { value(v: Buffer): PromiseLike<unknown> }
  get(key: string): { serializable(on: boolean): EtcdGet; buffer(): Promise<Buffer | null> }
  close(): void
}
interface EtcdTxn {
  then(...ops: unknown[]): { commit(): Promise<{ succeeded: boolean }> }
}
interface EtcdGet {
  buffer(): Promise<Buffer | null>
}
interface RedisClient {
  set(key: string, value: Buffer, nx: 'NX'): Promise<string | null>
  getBuffer(key: string): Promise<Buffer | null>
  quit(): Promise<unknown>
  disconnect(): void
}

async function loadModule<T>(name: string): Promise<T> {
  const specifier = name // a variable: tsc does not need the package's types
  return (await import(specifier)) as T
}

async function etcdClient(endpoints: readonly string[]): Promise<EtcdClient> {
  const { Etcd3 } = await loadModule<{ Etcd3: new (o: unknown) => EtcdClient }>('etcd3')
  return new Etcd3({
    hosts: [...endpoints],
    defaultCallOptions: (ctx: { isStream: boolean }) =>
      ctx.isStream ? {} : { deadline: Date.now() + OP_TIMEOUT_MS },
  })
}

/** etcdLeader asks each member's status (etcd's JSON gateway) for the leader's endpoint. */
async function etcdLeader(endpoints: readonly string[]): Promise<string> {
  let leader: string | undefined
  await waitFor(
    'etcd to name its leader',
    async () => {
      for (const u of endpoints) {
        const res = await fetch(`${u}/v3/maintenance/status`, {
          method: 'POST',
          body: '{}',
          signal: AbortSignal.timeout(2_000),
        })
        const st = (await res.json()) as { header?: { member_id?: string }; leader?: string }
        if (st.leader && st.header?.member_id === st.leader) leader = u
      }
      return leader !== undefined
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  )
  return leader as string
}

async function redisClient(port: number): Promise<RedisClient> {
  const { Redis } = await loadModule<{ Redis: new (o: unknown) => RedisClient }>('ioredis')
  const client = new Redis({
    host: '127.0.0.1',
    port,
    commandTimeout: OP_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
  })
  return client
}

/** pool is an undici pool of up to `connections` keep-alive connections to url. */
function pool(url: string, connections: number): Pool {
  return new Pool(url, {
    connections,
    pipelining: 1,
    headersTimeout: OP_TIMEOUT_MS,
    bodyTimeout: OP_TIMEOUT_MS,
  })
}

async function httpStatus(
  p: Pool,
  path: string,
  method: 'GET' | 'PUT',
  body: Buffer | undefined,
  tally?: Map<string, number>,
): Promise<number> {
  const res = await p.request({ path, method, body })
  await res.body.dump()
  if (tally) {
    const source = res.headers['x-oncekv-source']
    const what = typeof source === 'string' ? source : String(res.statusCode)
    tally.set(what, (tally.get(what) ?? 0) + 1)
  }
  return res.statusCode
}

// ------------------------------------------------------------------ the systems

/** Oncekv is the running oncekv system and what the read runs need. */
interface Oncekv {
  readonly cluster: Cluster
  readonly caches: readonly CacheProcess[]
  readonly leader: DbProcess
  /** follower: the member the db-hit reads go to. */
  readonly follower: DbProcess
  /** c1: the cache node the cache-hit reads go to; c1Keys[size] the read keys it owns. */
  readonly c1: CacheProcess
  readonly c1Keys: Map<number, string[]>
  readonly pids: () => (number | undefined)[]
}

interface Systems {
  oncekv?: Oncekv
  /** client: of every member (reads); writeClient: of the leader alone (writes). */
  etcd?: { cluster: EtcdCluster; client: EtcdClient; writeClient: EtcdClient; version: string }
  redis: Partial<Record<'always' | 'everysec', { server: RedisServer; client: RedisClient }>>
  redisVersion?: string
  bare?: BareServer
  skipped: Partial<Record<System, string>>
}

const readKey = (size: number, i: number): string => `r${size}-${i}`

/** memberCounts reads, from a member's /metrics, the reads it answered and the ReadIndex
 * rounds it ran. */
async function memberCounts(m: DbProcess): Promise<{ reads: number; readIndex: number }> {
  const text = await (await fetch(`${m.url}/metrics`)).text()
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN)
  return {
    reads: value(/^oncekv_reads_total ([0-9.e+]+)$/m),
    readIndex: value(/^oncekv_op_duration_seconds_count\{op="read_index"\} ([0-9.e+]+)$/m) || 0,
  }
}

/** localReadsCheck makes sure a db-hit run measured local hits: the member answered at least
 * as many reads as the run made, and ran no ReadIndex round for them (a key it holds is
 * final, so it answers from its store). */
async function localReadsCheck(
  m: DbProcess,
): Promise<(ops: number) => Promise<string | undefined>> {
  const before = await memberCounts(m)
  return async (ops) => {
    const after = await memberCounts(m)
    const reads = after.reads - before.reads
    const rounds = after.readIndex - before.readIndex
    if (!(reads >= ops)) return `not all local: the member answered ${reads} reads of ${ops}`
    if (rounds > 0) return `not all local: ${rounds} ReadIndex`
    return undefined
  }
}

async function startOncekv(name: string): Promise<Oncekv> {
  const cluster = await Cluster.start({ name, size: 3, tickMs: 50 })
  clusters.push(cluster)
  await cluster.startAdmin()
  const caches = await cluster.startCaches(3)
  const { node: leader } = await cluster.leader()
  const follower = cluster.all().find((n) => n.id !== leader.id) as DbProcess
  return {
    cluster,
    caches,
    leader,
    follower,
    c1: caches[0] as CacheProcess,
    c1Keys: new Map(),
    pids: () => cluster.everything().map((p) => p.pid),
  }
}

/** writeAll runs write(i) for i < count with `inFlight` at a time, retrying a failed one a
 * few times; it throws unless every write succeeded. */
async function writeAll(
  label: string,
  count: number,
  inFlight: number,
  write: (i: number) => Promise<boolean>,
): Promise<number> {
  const r = await forEachBounded({
    count,
    concurrency: inFlight,
    seconds: 1_800,
    fn: async (i) => {
      for (let attempt = 0; attempt < 5; attempt++)
        if (await write(i).catch(() => false)) return true
      return false
    },
    progress,
    label,
  })
  progress.clear()
  if (r.ok !== count) throw new Error(`${label}: ${JSON.stringify(r)}`)
  return r.elapsedSec
}

/** seedOncekv writes the read keys of every size through the leader and warms cache node
 * c1 with the ones it owns, so that the cache-hit runs read main-cache hits only. */
async function seedOncekv(o: Oncekv): Promise<void> {
  const lp = pool(o.leader.url, 64)
  const ring = new HashRing(o.caches.map((c) => c.peerUrl))
  const c1p = pool(o.c1.url, 32)
  try {
    for (const size of sizes) {
      const value = Buffer.alloc(size, 'o')
      const sec = await writeAll(
        `oncekv: writing ${readKeys} read keys of ${size} B`,
        readKeys,
        64,
        async (i) => {
          const s = await httpStatus(lp, `/keys/${readKey(size, i)}`, 'PUT', value)
          return s === 201 || s === 200
        },
      )
      const mine = Array.from({ length: readKeys }, (_, i) => readKey(size, i)).filter(
        (k) => ring.owner(k) === o.c1.peerUrl,
      )
      o.c1Keys.set(size, mine)
      for (const pass of ['fill', 'check']) {
        const tally = new Map<string, number>()
        await forEachBounded({
          count: mine.length,
          concurrency: 32,
          seconds: 300,
          fn: async (i) =>
            (await httpStatus(c1p, `/keys/${mine[i]}`, 'GET', undefined, tally)) === 200,
          progress,
          label: `oncekv: warming c1 with its ${mine.length} keys (${pass})`,
        })
        progress.clear()
        if (pass === 'check' && (tally.get('main') ?? 0) !== mine.length)
          say(`  note: after warming, c1 answered ${JSON.stringify(Object.fromEntries(tally))}`)
      }
      say(
        `oncekv: ${readKeys} keys of ${size} B written in ${sec.toFixed(1)} s; c1 holds its ${mine.length}`,
      )
    }
    await o.cluster.waitCaughtUp(undefined, { timeoutMs: 60_000 })
  } finally {
    await lp.close()
    await c1p.close()
  }
}

async function seedEtcd(client: EtcdClient): Promise<void> {
  for (const size of sizes) {
    const value = Buffer.alloc(size, 'e')
    const sec = await writeAll(
      `etcd: writing ${readKeys} read keys of ${size} B`,
      readKeys,
      64,
      async (i) => {
        await client.put(readKey(size, i)).value(value)
        return true
      },
    )
    say(`etcd: ${readKeys} keys of ${size} B written in ${sec.toFixed(1)} s`)
  }
}

async function seedRedis(client: RedisClient): Promise<void> {
  for (const size of sizes) {
    const value = Buffer.alloc(size, 'r')
    await writeAll(`redis: writing ${readKeys} read keys of ${size} B`, readKeys, 64, async (i) => {
      await client.set(readKey(size, i), value, 'NX')
      return true
    })
  }
}

/** startSystems starts every wanted system; one that cannot start is skipped with why. */
async function startSystems(): Promise<Systems> {
  const sys: Systems = { redis: {}, skipped: {} }
  const skip = (s: System, why: string): void => {
    sys.skipped[s] = why
    say(`SKIPPING ${s}: ${why}`)
  }
  const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e))

  if (wanted.has('etcd')) {
    const bin = ensureBinary('etcd', 'etcd-server', say, !args['no-install'])
    if ('skip' in bin) skip('etcd', bin.skip)
    else {
      const version = versionOf(bin.path)
      progress.set(`starting a 3-member etcd cluster (${version})`)
      try {
        const cluster = await startEtcd(bin.path, root, 3)
        peerProcs.push(...cluster.procs)
        const clients: EtcdClient[] = []
        try {
          const leader = await etcdLeader(cluster.endpoints).catch((e: unknown) => {
            throw new Error(`etcd named no leader through its JSON gateway: ${errText(e)}`)
          })
          const client = await etcdClient(cluster.endpoints)
          clients.push(client)
          const writeClient = await etcdClient([leader])
          clients.push(writeClient)
          say(`etcd: writes go to its leader, ${leader}; reads to every member`)
          sys.etcd = { cluster, client, writeClient, version }
          if (wantedOps.has('read')) await seedEtcd(client)
        } catch (e) {
          sys.etcd = undefined
          for (const c of clients) c.close()
          await cluster.stop()
          const why = errText(e)
          skip(
            'etcd',
            why.startsWith('etcd named') ? why : `the etcd3 client failed (run npm ci?): ${why}`,
          )
        }
      } catch (e) {
        skip('etcd', errText(e))
      }
    }
  }

  if (wanted.has('redis')) {
    const bin = ensureBinary('redis-server', 'redis-server', say, !args['no-install'])
    if ('skip' in bin) {
      skip('redis-always', bin.skip)
      skip('redis-everysec', bin.skip)
    } else {
      sys.redisVersion = versionOf(bin.path)
      for (const fsync of ['always', 'everysec'] as const) {
        const name: System = `redis-${fsync}`
        try {
          progress.set(`starting redis-server (appendfsync ${fsync})`)
          const server = await startRedis(bin.path, root, fsync, fsync)
          peerProcs.push(...server.procs)
          try {
            const client = await redisClient(server.port)
            sys.redis[fsync] = { server, client }
            if (fsync === 'always' && wantedOps.has('read')) await seedRedis(client)
          } catch (e) {
            delete sys.redis[fsync]
            await server.stop()
            skip(name, `the ioredis client failed (run npm ci?): ${errText(e)}`)
          }
        } catch (e) {
          skip(name, errText(e))
        }
      }
    }
  }

  if (wanted.has('bare')) {
    sys.bare = await startBare()
    bare = sys.bare
  }

  if (wanted.has('oncekv')) {
    progress.set('starting oncekv: 3 db members, the admin, 3 cache nodes')
    sys.oncekv = await startOncekv('compare')
    progress.clear()
    if (wantedOps.has('read')) await seedOncekv(sys.oncekv)
  }
  return sys
}

// ------------------------------------------------------------------ cases

function casesOfRound(sys: Systems, round: number): Case[] {
  const has = (s: System): boolean =>
    s === 'oncekv'
      ? sys.oncekv !== undefined
      : s === 'etcd'
        ? sys.etcd !== undefined
        : s === 'bare'
          ? sys.bare !== undefined
          : sys.redis[s === 'redis-always' ? 'always' : 'everysec'] !== undefined
  const cases: Case[] = []
  // Later rounds take each case's systems in the reverse order, so drift over a case (the
  // machine's other load, the store's growth) does not always favour the same system.
  const order = <T>(xs: T[]): T[] => (round % 2 === 0 ? xs.reverse() : xs)
  for (const size of wantedOps.has('write') ? sizes : [])
    for (const concurrency of concurrencies) {
      const writes: Case[] = [
        { op: 'write', system: 'oncekv', how: 'put', size, concurrency },
        { op: 'write', system: 'etcd', how: 'put-if-absent txn', size, concurrency },
        { op: 'write', system: 'redis-always', how: 'SET NX', size, concurrency },
        { op: 'write', system: 'redis-everysec', how: 'SET NX', size, concurrency },
      ]
      cases.push(...order(writes.filter((c) => has(c.system))))
    }
  for (const size of wantedOps.has('read') ? sizes : [])
    for (const concurrency of concurrencies) {
      const reads: Case[] = [
        { op: 'read', system: 'bare', how: 'fixed body', size, concurrency },
        { op: 'read', system: 'oncekv', how: 'cache hit', size, concurrency },
        { op: 'read', system: 'oncekv', how: 'db hit', size, concurrency },
        { op: 'read', system: 'etcd', how: 'linearizable', size, concurrency },
        { op: 'read', system: 'etcd', how: 'serializable', size, concurrency },
        { op: 'read', system: 'redis-always', how: 'GET', size, concurrency },
      ]
      cases.push(...order(reads.filter((c) => has(c.system))))
    }
  if (has('oncekv') && wantedOps.has('missing'))
    for (const concurrency of concurrencies)
      cases.push({ op: 'read', system: 'oncekv', how: 'missing', size: 0, concurrency })
  return cases
}

const runTag = Date.now().toString(36)

/** runner makes a case ready to run (pools for its C). */
function runner(sys: Systems, c: Case, round: number): Runner {
  const conc = c.concurrency
  const value = Buffer.alloc(Math.max(c.size, 1), 'w')
  // A key space per run (the warm-up's ops count from MAX_OPS up, so they have their own).
  const prefix = (): string => `${runTag}-${round}-${c.size}-${conc}-`
  if (c.system === 'oncekv') {
    const o = sys.oncekv as Oncekv
    if (c.op === 'write' || c.how === 'missing') {
      const pools = o.cluster.all().map((n) => pool(n.url, conc))
      const close = async (): Promise<void> => {
        await Promise.all(pools.map((p) => p.close()))
      }
      if (c.op === 'write') {
        // As the client library does: any member until a follower's answer names the leader
        // (x-oncekv-leader), then the leader; any member again after a failure there.
        const byUrl = new Map(o.cluster.all().map((n, k) => [n.url, pools[k] as Pool]))
        let leaderPool: Pool | undefined
        return {
          pids: o.pids,
          close,
          op: async (i) => {
            const p = leaderPool ?? (pools[i % 3] as Pool)
            let ok = false
            try {
              const res = await p.request({
                path: `/keys/w-${prefix()}${i}`,
                method: 'PUT',
                body: value,
              })
              await res.body.dump()
              const named = res.headers['x-oncekv-leader']
              if (typeof named === 'string') {
                leaderPool = byUrl.get(named)
                // A name no pool has would silently measure forwarded writes instead.
                if (leaderPool === undefined)
                  throw new Error(`x-oncekv-leader names ${named}, not a member`)
              }
              ok = res.statusCode === 201
              return ok
            } finally {
              if (!ok && p === leaderPool) leaderPool = undefined
            }
          },
        }
      }
      return {
        pids: o.pids,
        close,
        op: async (i, tally) =>
          (await httpStatus(
            pools[i % 3] as Pool,
            `/keys/absent-${prefix()}${i}`,
            'GET',
            undefined,
            tally,
          )) === 404,
      }
    }
    if (c.how === 'cache hit') {
      const p = pool(o.c1.url, conc)
      const keys = o.c1Keys.get(c.size) as string[]
      return {
        pids: o.pids,
        close: () => p.close(),
        wantSource: 'main',
        op: async (i, tally) =>
          (await httpStatus(p, `/keys/${keys[i % keys.length]}`, 'GET', undefined, tally)) === 200,
      }
    }
    const p = pool(o.follower.url, conc)
    return {
      pids: o.pids,
      close: () => p.close(),
      check: () => localReadsCheck(o.follower),
      op: async (i) =>
        (await httpStatus(p, `/keys/${readKey(c.size, i % readKeys)}`, 'GET', undefined)) === 200,
    }
  }
  if (c.system === 'etcd') {
    const e = sys.etcd as NonNullable<Systems['etcd']>
    const pids = (): (number | undefined)[] => e.cluster.procs.map((p) => p.pid)
    if (c.op === 'write')
      return {
        pids,
        op: async (i) => {
          const key = `w-${prefix()}${i}`
          const r = await e.writeClient
            .if(key, 'Create', '==', 0)
            .then(e.writeClient.put(key).value(value))
            .commit()
          return r.succeeded
        },
      }
    const serializable = c.how === 'serializable'
    return {
      pids,
      op: async (i) => {
        const get = e.client.get(readKey(c.size, i % readKeys))
        const v = await (serializable ? get.serializable(true) : get).buffer()
        return v !== null && v.length === c.size
      },
    }
  }
  if (c.system === 'redis-always' || c.system === 'redis-everysec') {
    const r = sys.redis[c.system === 'redis-always' ? 'always' : 'everysec'] as NonNullable<
      Systems['redis']['always']
    >
    const pids = (): (number | undefined)[] => r.server.procs.map((p) => p.pid)
    if (c.op === 'write')
      return {
        pids,
        op: async (i) => (await r.client.set(`w-${prefix()}${i}`, value, 'NX')) === 'OK',
      }
    return {
      pids,
      op: async (i) => {
        const v = await r.client.getBuffer(readKey(c.size, i % readKeys))
        return v !== null && v.length === c.size
      },
    }
  }
  const b = sys.bare as BareServer
  const p = pool(b.url, conc)
  return {
    pids: () => [b.child.pid],
    close: () => p.close(),
    op: async () => (await httpStatus(p, `/bytes/${c.size}`, 'GET', undefined)) === 200,
  }
}

// ------------------------------------------------------------------ one run

/** warmUp runs a case's load for `secs` seconds, unmeasured, on keys of its own (indexes from
 * MAX_OPS up). */
async function warmUp(r: Runner, c: Case, secs: number, label: string): Promise<LoopResult> {
  const tally = new Map<string, number>()
  return closedLoop({
    concurrency: c.concurrency,
    seconds: secs,
    maxOps: MAX_OPS,
    op: (i) => r.op(MAX_OPS + i, tally),
    progress,
    label,
  })
}

/** prime runs every case of the first round once for --prime seconds, unmeasured, before
 * anything is measured (its runs are round 0: keys of their own). oncekv runs on V8, whose
 * optimizing compiler needs 10-15 s of load after a start before a path runs at its steady
 * speed (a fresh member's CPU per write falls from ~1,000 to ~400 µs over its first 12 s of
 * writes at C=16); etcd and Redis are compiled ahead and lose nothing by it. Without it the
 * first round measures processes still being compiled: the figure of the first seconds after
 * a restart, not of a running database. --prime is per case: oncekv's six write cases give
 * its write path 12 s at the default. */
async function prime(sys: Systems): Promise<void> {
  const cases = casesOfRound(sys, 1)
  if (primeSeconds <= 0 || cases.length === 0) return
  let ops = 0
  let errors = 0
  for (const [k, c] of cases.entries()) {
    const r = runner(sys, c, 0)
    try {
      const label = `priming [${k + 1}/${cases.length}]: ${c.op} ${c.system} ${c.how} ${sizeText(c.size)} C=${c.concurrency}`
      const loop = await warmUp(r, c, primeSeconds, label)
      ops += loop.ops
      errors += loop.errors
    } finally {
      await r.close?.()
    }
  }
  // Let the members catch up and the burst's aftermath (collections, flushes) pass before the
  // idle CPU is measured.
  if (sys.oncekv) await sys.oncekv.cluster.waitCaughtUp(undefined, { timeoutMs: 60_000 })
  await new Promise((res) => setTimeout(res, 2_000))
  progress.clear()
  say(
    `primed: ${cases.length} cases run once for ${primeSeconds} s each, unmeasured ` +
      `(${ops} ops, ${errors} errors)`,
  )
}

async function measure(sys: Systems, c: Case, round: number, label: string): Promise<Result> {
  const quietWaitSec = quietWait > 0 ? await waitQuiet(quietWait, ourCpuMs, progress, label) : 0
  const r = runner(sys, c, round)
  const serverCpu = (): number => r.pids().reduce((s: number, pid) => s + procCpuMs(pid), 0)
  try {
    if (warmupSeconds > 0) await warmUp(r, c, warmupSeconds, `${label} warm-up`)
    const tally = new Map<string, number>()
    const checked = await r.check?.()
    const cpu0 = serverCpu()
    const machine0 = machineBusyMs()
    const ours0 = ourCpuMs()
    const loop = await closedLoop({
      concurrency: c.concurrency,
      seconds,
      maxOps: MAX_OPS,
      op: (i) => r.op(i, tally),
      progress,
      label,
    })
    const cpu = serverCpu() - cpu0
    const wallMs = loop.elapsedSec * 1000
    const otherCores = Math.max(0, (machineBusyMs() - machine0 - (ourCpuMs() - ours0)) / wallMs)
    progress.clear()
    const serverCpuShare = cpu / wallMs
    const notes: string[] = []
    if (loop.genCpuShare >= GEN_BOUND) notes.push('generator-bound')
    if (otherCores >= QUIET) notes.push(`others ${otherCores.toFixed(1)} cores`)
    else if (loop.genCpuShare + serverCpuShare >= 0.9 * cpus().length) notes.push('cores full')
    if (r.wantSource && (tally.get(r.wantSource) ?? 0) !== loop.ops)
      notes.push(`not all ${r.wantSource}`)
    const wrong = await checked?.(loop.ops)
    if (wrong) notes.push(wrong)
    return {
      ...c,
      ...loop,
      round,
      serverCpuMsPerOp: loop.ops > 0 ? cpu / loop.ops : 0,
      serverCpuShare,
      otherCores,
      quietWaitSec,
      sources: c.system === 'oncekv' && tally.size > 0 ? Object.fromEntries(tally) : undefined,
      notes,
    }
  } finally {
    await r.close?.()
  }
}

// ------------------------------------------------------------------ report

/** Summary is a case over every round: means of the rates, latencies and CPU, the worst max. */
interface Summary extends Case {
  readonly rounds: number
  readonly opsPerSec: number
  /** spread: (highest - lowest ops/s) / mean over the rounds. */
  readonly spread: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly errors: number
  readonly serverCpuMsPerOp: number
  readonly serverCpuShare: number
  readonly genCpuShare: number
  readonly otherCores: number
  readonly notes: string[]
}

function summarize(results: readonly Result[]): Summary[] {
  const groups = new Map<string, Result[]>()
  for (const r of results) groups.set(caseKey(r), [...(groups.get(caseKey(r)) ?? []), r])
  const mean = (rs: Result[], f: (r: Result) => number): number =>
    rs.reduce((s, r) => s + f(r), 0) / rs.length
  const out: Summary[] = []
  for (const rs of groups.values()) {
    const first = rs[0] as Result
    const ops = rs.map((r) => r.opsPerSec)
    const m = mean(rs, (r) => r.opsPerSec)
    out.push({
      op: first.op,
      system: first.system,
      how: first.how,
      size: first.size,
      concurrency: first.concurrency,
      rounds: rs.length,
      opsPerSec: Math.round(m),
      spread: m > 0 ? (Math.max(...ops) - Math.min(...ops)) / m : 0,
      p50Ms: mean(rs, (r) => r.p50Ms),
      p99Ms: mean(rs, (r) => r.p99Ms),
      maxMs: Math.max(...rs.map((r) => r.maxMs)),
      errors: rs.reduce((s, r) => s + r.errors, 0),
      serverCpuMsPerOp: mean(rs, (r) => r.serverCpuMsPerOp),
      serverCpuShare: mean(rs, (r) => r.serverCpuShare),
      genCpuShare: mean(rs, (r) => r.genCpuShare),
      otherCores: mean(rs, (r) => r.otherCores),
      // The others column has the mean; the notes keep what it cannot show.
      notes: [
        ...new Set(
          rs.flatMap((r) =>
            r.notes
              .filter((n) => !n.startsWith('others'))
              .map((n) => (rs.length > 1 ? `r${r.round}: ${n}` : n)),
          ),
        ),
      ],
    })
  }
  return out
}

const sizeText = (n: number): string => (n === 0 ? '-' : n >= 1024 ? `${n / 1024} KiB` : `${n} B`)
const int = (n: number): string => Math.round(n).toLocaleString('en-US')

const TABLE_HEAD =
  '| op | system | how | value | C | ops/s | spread | p50 ms | p99 ms | max ms | errors | server µs/op | server cores | generator | others | notes |'

function row(s: Summary | Result): string {
  const spread = 'spread' in s ? `${Math.round(s.spread * 100)} %` : '-'
  const others = 'otherCores' in s ? s.otherCores.toFixed(2) : '-'
  return `| ${[
    s.op,
    s.system,
    s.how,
    sizeText(s.size),
    s.concurrency,
    int(s.opsPerSec),
    spread,
    s.p50Ms.toFixed(2),
    s.p99Ms.toFixed(2),
    s.maxMs.toFixed(1),
    s.errors,
    int(s.serverCpuMsPerOp * 1000),
    s.serverCpuShare.toFixed(2),
    `${Math.round(s.genCpuShare * 100)} %`,
    others,
    s.notes.join('; '),
  ].join(' | ')} |`
}

/** Ratio is one comparison against a target of issue 7 (or an informative one). */
interface Ratio {
  readonly what: string
  readonly value: number
  /** target: ">= 3", "<= 0.5", or undefined for an informative ratio. */
  readonly target?: string
  readonly met?: boolean
}

function ratios(sum: readonly Summary[]): Ratio[] {
  const find = (
    op: string,
    system: System,
    how: string,
    size: number,
    c: number,
  ): Summary | undefined =>
    sum.find(
      (s) =>
        s.op === op &&
        s.system === system &&
        s.how === how &&
        s.size === size &&
        s.concurrency === c,
    )
  const out: Ratio[] = []
  const add = (
    what: string,
    a: number,
    b: number,
    target?: { min?: number; max?: number },
  ): void => {
    if (!(b > 0)) return
    const value = a / b
    if (!target) out.push({ what, value })
    else if (target.min !== undefined)
      out.push({ what, value, target: `>= ${target.min}`, met: value >= target.min })
    else if (target.max !== undefined)
      out.push({ what, value, target: `<= ${+target.max.toFixed(2)}`, met: value <= target.max })
  }
  for (const size of sizes)
    for (const c of concurrencies) {
      const o = find('write', 'oncekv', 'put', size, c)
      const e = find('write', 'etcd', 'put-if-absent txn', size, c)
      const tag = `writes ${sizeText(size)} C=${c}`
      const targeted = c === 16 || c === 128
      if (o && e) {
        add(
          `${tag}: ops/s oncekv/etcd`,
          o.opsPerSec,
          e.opsPerSec,
          targeted ? { min: 3 } : undefined,
        )
        add(`${tag}: p99 oncekv/etcd`, o.p99Ms, e.p99Ms, targeted ? { max: 0.5 } : undefined)
        add(
          `${tag}: server CPU/op oncekv/etcd`,
          o.serverCpuMsPerOp,
          e.serverCpuMsPerOp,
          targeted ? { max: 1 / 3 } : undefined,
        )
      }
      for (const r of ['redis-always', 'redis-everysec'] as const) {
        const x = find('write', r, 'SET NX', size, c)
        if (o && x) {
          add(`${tag}: ops/s oncekv/${r}`, o.opsPerSec, x.opsPerSec)
          add(`${tag}: server CPU/op oncekv/${r}`, o.serverCpuMsPerOp, x.serverCpuMsPerOp)
        }
      }
    }
  for (const size of sizes)
    for (const c of concurrencies) {
      const b = find('read', 'bare', 'fixed body', size, c)
      const tag = `reads ${sizeText(size)} C=${c}`
      for (const how of ['cache hit', 'db hit']) {
        const o = find('read', 'oncekv', how, size, c)
        if (o && b) {
          add(`${tag}: ${how} ops/s oncekv/bare`, o.opsPerSec, b.opsPerSec, { min: 0.85 })
          add(`${tag}: ${how} server CPU/op oncekv/bare`, o.serverCpuMsPerOp, b.serverCpuMsPerOp, {
            max: 2,
          })
        }
      }
      const hit = find('read', 'oncekv', 'cache hit', size, c)
      const g = find('read', 'redis-always', 'GET', size, c)
      if (hit && g) add(`${tag}: cache hit ops/s oncekv/redis GET`, hit.opsPerSec, g.opsPerSec)
      const el = find('read', 'etcd', 'linearizable', size, c)
      if (hit && el)
        add(`${tag}: cache hit ops/s oncekv/etcd linearizable`, hit.opsPerSec, el.opsPerSec)
    }
  for (const c of concurrencies) {
    const m = find('read', 'oncekv', 'missing', 0, c)
    const el = find('read', 'etcd', 'linearizable', sizes[0] as number, c)
    if (m && el)
      add(
        `missing-key reads C=${c}: ops/s oncekv/etcd linearizable (${sizeText(sizes[0] as number)})`,
        m.opsPerSec,
        el.opsPerSec,
        { min: 2 },
      )
  }
  return out
}

function ratioLine(r: Ratio): string {
  const mark = r.met === undefined ? '' : r.met ? '  met' : '  MISSED'
  return `  ${r.what}: ${r.value.toFixed(2)}${r.target ? ` (target ${r.target})` : ''}${mark}`
}

// ------------------------------------------------------------------ memory

interface MemoryRow {
  readonly id: string
  readonly kind: 'db' | 'cache' | 'admin'
  /** The resident set (VmRSS) at each point; anonMiB and fileMiB split it (procRss). */
  readonly idleMiB: number
  readonly afterWritesMiB: number
  readonly afterReadsMiB: number
  readonly anonMiB: {
    readonly idle: number
    readonly afterWrites: number
    readonly afterReads: number
  }
  readonly fileMiB: {
    readonly idle: number
    readonly afterWrites: number
    readonly afterReads: number
  }
  /** limitMiB: the issue's bound (a member under 300 MiB, a cache within --cache-bytes + 64). */
  readonly limitMiB?: number
}

interface MemoryReport {
  readonly keys: number
  readonly written: number
  readonly writeSec: number
  readonly read: number
  readonly readSec: number
  readonly readSources: Record<string, number>
  readonly rows: MemoryRow[]
}

async function memoryPhase(): Promise<MemoryReport> {
  progress.set('memory: starting a fresh oncekv system')
  const o = await startOncekv('compare-memory')
  progress.clear()
  const procs = o.cluster.everything()
  const rss = (): Map<string, ProcRss> => new Map(procs.map((p) => [p.id, procRss(p.pid)]))
  await new Promise((r) => setTimeout(r, 3_000))
  const idle = rss()
  const value = Buffer.alloc(100, 'm')
  const lp = pool(o.leader.url, 128)
  const w = await forEachBounded({
    count: memoryKeys,
    concurrency: 128,
    seconds: 3_600,
    fn: async (i) => {
      for (let a = 0; a < 5; a++) {
        const s = await httpStatus(lp, `/keys/m-${i}`, 'PUT', value).catch(() => 0)
        if (s === 201 || s === 200) return true
      }
      return false
    },
    progress,
    label: `memory: writing ${memoryKeys} keys of 100 B through the leader`,
  }).finally(() => lp.close())
  progress.clear()
  say(
    `memory: wrote ${int(w.ok)} keys in ${w.elapsedSec.toFixed(0)} s ` +
      `(${int(w.ok / w.elapsedSec)}/s at 128 in flight), ${w.failed} failed`,
  )
  await o.cluster.waitCaughtUp(undefined, { timeoutMs: 300_000 })
  const afterWrites = rss()
  const sources = new Map<string, number>()
  const cps = o.caches.map((c) => pool(c.url, 43))
  const r = await forEachBounded({
    count: memoryKeys,
    concurrency: 128,
    seconds: 3_600,
    fn: async (i) =>
      (await httpStatus(cps[i % cps.length] as Pool, `/keys/m-${i}`, 'GET', undefined, sources)) ===
      200,
    progress,
    label: `memory: reading the ${memoryKeys} keys through the 3 caches`,
  }).finally(() => Promise.all(cps.map((p) => p.close())))
  progress.clear()
  say(
    `memory: read ${int(r.ok)} keys in ${r.elapsedSec.toFixed(0)} s ` +
      `(${int(r.ok / r.elapsedSec)}/s), ${r.failed} failed`,
  )
  const afterReads = rss()
  const cacheLimit = (await o.c1.stats()).cache_bytes_limit / 2 ** 20 + 64
  const rows = procs.map((p): MemoryRow => {
    const kind = p.id === 'admin' ? 'admin' : p.id.startsWith('c') ? 'cache' : 'db'
    const mib = (at: Map<string, ProcRss>, part: keyof ProcRss): number =>
      (at.get(p.id)?.[part] ?? 0) / 2 ** 20
    const parts = (part: keyof ProcRss) => ({
      idle: mib(idle, part),
      afterWrites: mib(afterWrites, part),
      afterReads: mib(afterReads, part),
    })
    return {
      id: p.id,
      kind,
      idleMiB: mib(idle, 'total'),
      afterWritesMiB: mib(afterWrites, 'total'),
      afterReadsMiB: mib(afterReads, 'total'),
      anonMiB: parts('anon'),
      fileMiB: parts('file'),
      limitMiB: kind === 'db' ? 300 : kind === 'cache' ? cacheLimit : undefined,
    }
  })
  await o.cluster.closeGracefully()
  return {
    keys: memoryKeys,
    written: w.ok,
    writeSec: w.elapsedSec,
    read: r.ok,
    readSec: r.elapsedSec,
    readSources: Object.fromEntries(sources),
    rows,
  }
}

/** memoryTable shows each figure as "resident (anonymous + file-backed)" in MiB; the bound
 * is judged on the resident set, and on its anonymous part alone for information. */
function memoryTable(m: MemoryReport): string[] {
  const lines = [
    `| process | idle MiB | after ${int(m.written)} writes MiB | after reading them MiB | bound MiB |`,
    '| --- | --- | --- | --- | --- |',
  ]
  for (const r of m.rows) {
    const worst = Math.max(r.idleMiB, r.afterWritesMiB, r.afterReadsMiB)
    const worstAnon = Math.max(r.anonMiB.idle, r.anonMiB.afterWrites, r.anonMiB.afterReads)
    const bound =
      r.limitMiB === undefined
        ? '-'
        : `${r.limitMiB.toFixed(0)} ${worst <= r.limitMiB ? 'met' : 'MISSED'}` +
          ` (anonymous part: ${worstAnon <= r.limitMiB ? 'within' : 'over'})`
    const cell = (total: number, anon: number, file: number): string =>
      `${total.toFixed(0)} (${anon.toFixed(0)} + ${file.toFixed(0)})`
    lines.push(
      `| ${r.kind} ${r.id} | ${cell(r.idleMiB, r.anonMiB.idle, r.fileMiB.idle)} | ` +
        `${cell(r.afterWritesMiB, r.anonMiB.afterWrites, r.fileMiB.afterWrites)} | ` +
        `${cell(r.afterReadsMiB, r.anonMiB.afterReads, r.fileMiB.afterReads)} | ${bound} |`,
    )
  }
  lines.push(
    '',
    'each figure: resident set (anonymous + file-backed). File-backed pages are the Node.js ' +
      "binary's (shared by every process running it) and, on members, the memory-mapped data file's.",
  )
  return lines
}

// ------------------------------------------------------------------ main

/** Throughput is what the rounds measured. */
interface Throughput {
  readonly versions: Record<string, string | undefined>
  readonly skipped: Systems['skipped']
  readonly idle: Record<string, number>
  readonly results: Result[]
  readonly summary: Summary[]
  readonly ratioList: Ratio[]
}

/** throughputRounds starts every system, runs every case --rounds times, reports, and stops
 * the systems again. */
async function throughputRounds(): Promise<Throughput> {
  const sys = await startSystems()
  const versions = {
    node: process.version,
    etcd: sys.etcd?.version,
    redis: sys.redisVersion,
  }

  // Idle CPU of each system (heartbeats, ticks): it is inside every per-op figure.
  const idlePids: Partial<Record<System, () => (number | undefined)[]>> = {
    oncekv: sys.oncekv?.pids,
    etcd: sys.etcd ? () => sys.etcd?.cluster.procs.map((p) => p.pid) ?? [] : undefined,
  }
  const idle: Record<string, number> = {}
  await prime(sys)
  progress.set('measuring idle CPU (2 s)')
  const idle0 = Object.entries(idlePids)
    .filter(([, f]) => f !== undefined)
    .map(([s, f]) => [s, (f?.() ?? []).reduce((a: number, p) => a + procCpuMs(p), 0)] as const)
  await new Promise((r) => setTimeout(r, 2_000))
  for (const [s, before] of idle0) {
    const f = idlePids[s as System]
    idle[s] = ((f?.() ?? []).reduce((a: number, p) => a + procCpuMs(p), 0) - before) / 2
  }
  progress.clear()
  say(
    `idle CPU: ${Object.entries(idle)
      .map(([s, ms]) => `${s} ${ms.toFixed(0)} ms/s`)
      .join(', ')} (in the per-op figures)`,
  )

  const results: Result[] = []
  const perRound = casesOfRound(sys, 1).length
  const total = perRound * rounds
  const etaSec = total * (seconds + warmupSeconds + 0.5)
  const eta = etaSec < 120 ? `${Math.round(etaSec)} s` : `${Math.round(etaSec / 60)} min`
  say(`${total} runs (${perRound} per round), about ${eta} without waits for a quiet machine\n`)
  say(TABLE_HEAD)
  say(`|${' --- |'.repeat(16)}`)
  let n = 0
  for (let round = 1; round <= rounds; round++) {
    for (const c of casesOfRound(sys, round)) {
      n++
      const label = `[${n}/${total}] round ${round}: ${c.op} ${c.system} ${c.how} ${sizeText(c.size)} C=${c.concurrency}`
      const r = await measure(sys, c, round, label)
      results.push(r)
      say(row(r))
    }
  }

  const summary = summarize(results)
  const ratioList = ratios(summary)
  say(
    `\nall ${rounds} round(s): mean ops/s, spread (highest - lowest) / mean, mean p50/p99, worst max`,
  )
  say(TABLE_HEAD)
  say(`|${' --- |'.repeat(16)}`)
  for (const s of summary) say(row(s))
  say('\nratios (from the means over the rounds; targets of issue 7):')
  for (const r of ratioList) say(ratioLine(r))
  for (const [s, why] of Object.entries(sys.skipped)) say(`  ${s} was skipped: ${why}`)

  // The other systems are stopped before the memory phase: it runs on a fresh oncekv alone.
  progress.set('stopping etcd, Redis, the bare server and oncekv')
  sys.etcd?.client.close()
  sys.etcd?.writeClient.close()
  for (const r of Object.values(sys.redis)) r.client.disconnect()
  await sys.etcd?.cluster.stop()
  for (const r of Object.values(sys.redis)) await r.server.stop()
  await stopChild(sys.bare?.child)
  await sys.oncekv?.cluster.closeGracefully()
  progress.clear()

  return { versions, skipped: sys.skipped, idle, results, summary, ratioList }
}

async function main(): Promise<void> {
  const startedAt = new Date()
  console.log(
    `oncekv compared with etcd and Redis on loopback: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ` +
      `node ${process.version}; ${seconds} s per run after ${warmupSeconds} s warm-up, ${rounds} round(s), ` +
      `every case primed for ${primeSeconds} s first, ` +
      `C = ${concurrencies.join(', ')}, values ${sizes.map(sizeText).join(', ')}${quick ? ' (--quick)' : ''}`,
  )
  console.log(`temp folder ${root}`)
  const t: Throughput | undefined = rounds > 0 ? await throughputRounds() : undefined
  const save = (memory?: MemoryReport): Promise<void> =>
    writeJson(jsonPath, {
      bench: 'compare',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      versions: t?.versions ?? { node: process.version },
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      options: {
        quick,
        seconds,
        warmupSeconds,
        rounds,
        concurrencies,
        sizes,
        readKeys,
        memoryKeys,
        quietWait,
        primeSeconds,
        systems: [...wanted],
        // Where each client sends writes (etcd's went to a random member before 2026-11-29).
        writesTo: { oncekv: 'leader', etcd: 'leader' },
      },
      skipped: t?.skipped,
      idleCpuMsPerSec: t?.idle,
      summary: t?.summary,
      ratios: t?.ratioList,
      memory,
      results: t?.results,
    })
  // Written now and again with the memory figures: a failed memory phase keeps the rest.
  await save()
  if (memoryKeys > 0 && wanted.has('oncekv')) {
    const memory = await memoryPhase()
    say(
      `\nresident memory of each oncekv process (fresh system, ${int(memory.keys)} keys of 100 B):`,
    )
    for (const line of memoryTable(memory)) say(line)
    say(`answers of the read-back: ${JSON.stringify(memory.readSources)}`)
    await save(memory)
  }

  say(
    `\nresults written to ${jsonPath} (${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min in all)`,
  )
}

try {
  await main()
} catch (e) {
  progress.clear()
  failed = true
  for (const c of clusters) c.reportFailure('bench:compare')
  console.error(e)
  console.error(`etcd and Redis logs kept in ${join(root, 'logs')}`)
  process.exitCode = 1
} finally {
  progress.clear()
  for (const c of clusters) await c.close()
  killEverythingNow()
}
