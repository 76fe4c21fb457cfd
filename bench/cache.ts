// The cache tier's benchmark: the read path of `oncekv cache` on loopback with real
// processes (a 3-member database cluster, the admin and 3 cache nodes from the e2e harness),
// beside a bare node:http server answering a fixed 100-byte body: the ceiling for any Node
// HTTP server on this machine. At each concurrency C (a closed loop, C requests in flight
// over keep-alive connections), after a short warm-up:
//
//   bare    the bare server (in its own process)
//   hit-1   one cache node, keys it owns and holds in its main cache (x-oncekv-source: main)
//   hit-3   the three cache nodes, each request to the owner of its key (all main-cache hits)
//   miss    keys written before but never read: the cache fills from the owner peer or the
//           database (round-robin over the nodes; each key read once)
//   absent  keys never written: 404, confirmed by the database (round-robin over the nodes)
//
// Each run reports ops/s, p50/p99/max latency, errors, the servers' CPU per op (cache and
// database processes, from /proc/<pid>/stat) and the generator's own CPU share: the load
// generator runs on the same cores, so a run whose generator is near 100 % of a core measures
// the generator, and server CPU per op is the figure to compare then.
//
//   npm run bench:cache -- [--seconds 5] [--warmup 1] [--concurrency 1,16,128] [--keys 10000]
//                          [--miss-keys 15000] [--runs bare,hit-1,hit-3,miss,absent]
//                          [--quiet-wait 15] [--json bench-results/cache.json]
//
// On a shared machine, other processes skew every figure: before each run it waits (up to
// --quiet-wait seconds) until they use under a quarter of a core, and each run notes how much
// they took while it ran. Every loop is bounded in time and in count. Ctrl-C stops every
// process it started.
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { cpus } from 'node:os'
import { scriptArgs, usageError } from '../test/script-args.ts'
import { Pool } from 'undici'
import { HashRing } from '../src/cache/ring.ts'
import { Cluster, type CacheProcess } from '../test/e2e/cluster.ts'
import {
  closedLoop,
  forEachBounded,
  machineBusyMs,
  procCpuMs,
  Progress,
  type LoopResult,
} from './load-loop.ts'
import {
  killNow,
  QUIET,
  startBare,
  stopChild,
  waitQuiet as waitQuietFor,
  writeJson,
} from './servers.ts'

const args = scriptArgs(
  'usage: npm run bench:cache -- [--seconds 5] [--warmup 1] [--concurrency 1,16,128] ' +
    '[--keys 10000] [--miss-keys 15000] [--runs bare,hit-1,hit-3,miss,absent] ' +
    '[--json bench-results/cache.json] [--quiet-wait 15]',
  {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '1,16,128' },
    keys: { type: 'string', default: '10000' },
    'miss-keys': { type: 'string', default: '15000' },
    runs: { type: 'string', default: 'bare,hit-1,hit-3,miss,absent' },
    json: { type: 'string', default: 'bench-results/cache.json' },
    'quiet-wait': { type: 'string', default: '15' },
  },
)
const seconds = Number(args.seconds)
const warmupSeconds = Number(args.warmup)
const concurrencies = args.concurrency.split(',').map(Number)
const keyCount = Number(args.keys)
const missKeys = Number(args['miss-keys'])
const quietWait = Number(args['quiet-wait'])
const RUN_KINDS = ['bare', 'hit-1', 'hit-3', 'miss', 'absent'] as const
type RunKind = (typeof RUN_KINDS)[number]
const runs = args.runs.split(',').map((r) => r.trim()) as RunKind[]
for (const r of runs) if (!RUN_KINDS.includes(r)) usageError(`unknown run ${r}`)
for (const [name, n] of [
  ['--seconds', seconds],
  ['--warmup', warmupSeconds],
  ['--keys', keyCount],
  ['--miss-keys', missKeys],
  ['--quiet-wait', quietWait],
  ...concurrencies.map((c) => ['--concurrency', c] as const),
] as const) {
  if (!Number.isFinite(n) || n < 0) usageError(`${name} must be a non-negative number`)
}
if (!concurrencies.every((c) => Number.isInteger(c) && c >= 1))
  usageError('--concurrency must be a list of positive integers')

const VALUE_BYTES = 100
/** MAX_OPS bounds one run in count (hit and bare runs are bounded by time first). */
const MAX_OPS = 5_000_000
/** GEN_BOUND: a generator using this share of a core or more is the bottleneck. */
const GEN_BOUND = 0.9

/** Result is one run at one concurrency. */
interface Result extends LoopResult {
  readonly run: RunKind
  readonly concurrency: number
  /** serverCpuMsPerOp: CPU of the processes serving the run (caches + db members, or the
   * bare server) per op. */
  readonly serverCpuMsPerOp: number
  readonly cacheCpuMsPerOp: number | null
  /** c1CpuMsPerOp: CPU of cache node c1 alone per op (the node hit-1 reads from). */
  readonly c1CpuMsPerOp: number | null
  readonly dbCpuMsPerOp: number | null
  /** serverCpuShare: the servers' CPU time / wall time (1 = one core busy). */
  readonly serverCpuShare: number
  /** sources counts x-oncekv-source of the answers (or the status when it has none). */
  readonly sources: Record<string, number>
  /** otherCores: CPU used by processes this benchmark did not start (1 = one core). */
  readonly otherCores: number
  /** quietWaitSec: how long the run waited for other processes to quieten first. */
  readonly quietWaitSec: number
  readonly notes: string[]
}

const progress = new Progress()
let cluster: Cluster | undefined
let clusterClosed = false
let bare: ChildProcess | undefined

/** ourCpuMs is the CPU time used so far by every process of this benchmark. */
function ourCpuMs(): number {
  const gen = process.cpuUsage()
  let ms = (gen.user + gen.system) / 1000 + procCpuMs(bare?.pid)
  for (const p of cluster?.everything() ?? []) ms += procCpuMs(p.pid)
  return ms
}

// Ctrl-C or SIGTERM: kill what this run started and remove the cluster's temp directory,
// synchronously (the harness's own handler, which runs after this one, then exits).
function stopEverythingNow(): void {
  killNow(bare)
  if (cluster && !clusterClosed) {
    clusterClosed = true
    for (const p of cluster.everything()) p.kill9Now()
    rmSync(cluster.root, { recursive: true, force: true, maxRetries: 5 })
  }
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.once(signal, () => {
    progress.clear()
    console.error(`\n${signal}: stopping every process started`)
    stopEverythingNow()
    process.exit(code)
  })
}

/** waitQuiet waits (at most maxSec) until other processes use under QUIET cores. */
function waitQuiet(maxSec: number, label: string): Promise<number> {
  return waitQuietFor(maxSec, ourCpuMs, progress, label)
}

function count(tally: Map<string, number>, what: string): void {
  tally.set(what, (tally.get(what) ?? 0) + 1)
}

/** get reads path, counts where the answer came from, and says if the status was `want`. */
async function get(
  pool: Pool,
  path: string,
  want: number,
  tally: Map<string, number>,
): Promise<boolean> {
  const res = await pool.request({ path, method: 'GET' })
  await res.body.dump()
  const source = res.headers['x-oncekv-source']
  count(tally, typeof source === 'string' ? source : String(res.statusCode))
  return res.statusCode === want
}

/** ServerCpu reads the CPU time used so far by the processes serving a run. */
type ServerCpu = () => { cache: number; db: number; c1: number }

/** KeyStream hands out keys once each (the miss run reads every fresh key once). */
class KeyStream {
  private at = 0
  constructor(private readonly paths: readonly string[]) {}
  next(): string {
    return this.paths[this.at++] ?? (this.paths.at(-1) as string)
  }
  get remaining(): number {
    return this.paths.length - this.at
  }
}

interface RunSpec {
  readonly run: RunKind
  readonly concurrency: number
  /** op is one request; tally counts the answers' sources. */
  readonly op: (i: number, tally: Map<string, number>) => Promise<boolean>
  readonly cpu: ServerCpu
  /** warmupOps bounds the warm-up in count; maxOps the run (asked after the warm-up). */
  readonly warmupOps: number
  readonly maxOps: () => number
  readonly isBare?: boolean
}

async function measure(spec: RunSpec): Promise<Result> {
  const label = `${spec.run} C=${spec.concurrency}`
  const quietWaitSec = quietWait > 0 ? await waitQuiet(quietWait, label) : 0
  let tally = new Map<string, number>()
  if (warmupSeconds > 0 && spec.warmupOps > 0) {
    await closedLoop({
      concurrency: spec.concurrency,
      seconds: warmupSeconds,
      maxOps: spec.warmupOps,
      op: (i) => spec.op(i, tally),
      progress,
      label: `${label} warm-up`,
    })
  }
  tally = new Map()
  const maxOps = spec.maxOps()
  const before = spec.cpu()
  const machine0 = machineBusyMs()
  const ours0 = ourCpuMs()
  const r = await closedLoop({
    concurrency: spec.concurrency,
    seconds,
    maxOps,
    op: (i) => spec.op(i, tally),
    progress,
    label,
  })
  const after = spec.cpu()
  const otherCores = Math.max(
    0,
    (machineBusyMs() - machine0 - (ourCpuMs() - ours0)) / (r.elapsedSec * 1000),
  )
  progress.clear()
  const cache = after.cache - before.cache
  const db = after.db - before.db
  const c1 = after.c1 - before.c1
  const perOp = (ms: number): number => (r.ops > 0 ? ms / r.ops : 0)
  const serverCpuShare = (cache + db) / (r.elapsedSec * 1000)
  const notes: string[] = []
  if (r.genCpuShare >= GEN_BOUND) notes.push('generator-bound')
  if (otherCores >= QUIET) notes.push(`others used ${otherCores.toFixed(1)} cores`)
  else if (r.genCpuShare + serverCpuShare >= 0.9 * cpus().length) notes.push('all cores busy')
  if (r.elapsedSec < seconds * 0.95 && r.ops >= maxOps) notes.push('ran out of keys')
  if (spec.run.startsWith('hit') && (tally.get('main') ?? 0) !== r.ops) notes.push('NOT ALL MAIN')
  return {
    ...r,
    run: spec.run,
    concurrency: spec.concurrency,
    serverCpuMsPerOp: perOp(cache + db),
    cacheCpuMsPerOp: spec.isBare ? null : perOp(cache),
    c1CpuMsPerOp: spec.isBare ? null : perOp(c1),
    dbCpuMsPerOp: spec.isBare ? null : perOp(db),
    serverCpuShare,
    sources: Object.fromEntries([...tally].sort((a, b) => b[1] - a[1])),
    otherCores,
    quietWaitSec,
    notes,
  }
}

function sourcesText(r: Result): string {
  if (r.run === 'bare') return '-'
  return Object.entries(r.sources)
    .map(([s, n]) => `${s} ${Math.round((100 * n) / Math.max(1, r.ops))}%`)
    .join(', ')
}

const TABLE_HEAD =
  '| run | C | ops/s | p50 ms | p99 ms | max ms | errors | server CPU ms/op | cache / db ms/op | server CPU | generator CPU | answers | notes |'

function row(r: Result): string {
  const split =
    r.cacheCpuMsPerOp === null
      ? '-'
      : `${r.cacheCpuMsPerOp.toFixed(3)} / ${(r.dbCpuMsPerOp ?? 0).toFixed(3)}`
  const cells = [
    r.run,
    r.concurrency,
    r.opsPerSec,
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.maxMs.toFixed(1),
    r.errors,
    r.serverCpuMsPerOp.toFixed(3),
    split,
    `${Math.round(r.serverCpuShare * 100)} %`,
    `${Math.round(r.genCpuShare * 100)} %`,
    sourcesText(r),
    r.notes.join(', '),
  ]
  return `| ${cells.join(' | ')} |`
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString()
  console.log(
    `oncekv cache benchmark: 3 db members, admin, 3 cache nodes on loopback; ${cpus().length} cores; ` +
      `${seconds} s per run after ${warmupSeconds} s warm-up; C = ${concurrencies.join(', ')}`,
  )
  const needFresh = runs.includes('miss')
  const totalWrites = keyCount + (needFresh ? missKeys * concurrencies.length : 0)

  progress.set('starting the database cluster, the admin and 3 cache nodes')
  const c = await Cluster.start({ name: 'bench-cache', size: 3, tickMs: 50 })
  cluster = c
  const pools: Pool[] = []
  try {
    await c.startAdmin()
    const caches = await c.startCaches(3)
    const { url: bareUrl, child: bareChild } = await startBare()
    bare = bareChild
    progress.clear()

    const peerUrls = caches.map((n) => n.peerUrl)
    const ring = new HashRing(peerUrls)
    const seen = (await (caches[0] as CacheProcess).stats()).peers
    if (!ring.samePeers(seen)) throw new Error(`ring mismatch: ${seen.join(', ')}`)
    const c1 = c.cache('c1')

    // ---- data: K keys for the hit runs, fresh keys for each miss run, through the leader.
    const hitKeys = Array.from({ length: keyCount }, (_, i) => `hit-${i}`)
    const freshKeys = concurrencies.map((conc) =>
      Array.from({ length: needFresh ? missKeys : 0 }, (_, i) => `fresh-${conc}-${i}`),
    )
    const toWrite = [...hitKeys, ...freshKeys.flat()]
    const { node: leader } = await c.leader()
    const leaderPool = new Pool(leader.url, { connections: 64 })
    pools.push(leaderPool)
    const value = Buffer.alloc(VALUE_BYTES, 'v')
    const wrote = await forEachBounded({
      count: totalWrites,
      concurrency: 64,
      seconds: 600,
      fn: async (i) => {
        for (let attempt = 0; attempt < 5; attempt++) {
          const res = await leaderPool
            .request({ path: `/keys/${toWrite[i]}`, method: 'PUT', body: value })
            .catch(() => undefined)
          if (!res) continue
          await res.body.dump()
          if (res.statusCode === 200 || res.statusCode === 201) return true
          if (res.statusCode < 500) return false
        }
        return false
      },
      progress,
      label: `writing ${totalWrites} keys (${VALUE_BYTES} B) through the leader ${leader.id}`,
    })
    progress.clear()
    if (wrote.ok !== totalWrites) throw new Error(`writes failed: ${JSON.stringify(wrote)}`)
    console.log(
      `wrote ${wrote.ok} keys in ${wrote.elapsedSec.toFixed(1)} s ` +
        `(${Math.round(wrote.ok / wrote.elapsedSec)}/s at 64 in flight)`,
    )
    await c.waitCaughtUp(undefined, { timeoutMs: 60_000 })

    // ---- warm the caches: every hit key once through its owner (a fill from the database),
    // then once more, which must be a main-cache hit everywhere.
    const warmPools = new Map(
      caches.map((n) => [n.peerUrl, new Pool(n.url, { connections: 32 })] as const),
    )
    pools.push(...warmPools.values())
    const ownerOf = hitKeys.map((k) => ring.owner(k) as string)
    for (const pass of ['fill', 'check'] as const) {
      const tally = new Map<string, number>()
      const r = await forEachBounded({
        count: keyCount,
        concurrency: 32,
        seconds: 120,
        fn: (i) =>
          get(warmPools.get(ownerOf[i] as string) as Pool, `/keys/${hitKeys[i]}`, 200, tally),
        progress,
        label: `warming the caches (${pass})`,
      })
      progress.clear()
      const mains = tally.get('main') ?? 0
      console.log(
        `warm-up ${pass}: ${r.ok} of ${keyCount} read through their owner; answers ` +
          JSON.stringify(Object.fromEntries(tally)),
      )
      if (pass === 'check' && mains !== keyCount)
        throw new Error(`only ${mains} of ${keyCount} keys are main-cache hits after warming`)
    }
    const owned = new Map(caches.map((n) => [n.peerUrl, 0]))
    for (const o of ownerOf) owned.set(o, (owned.get(o) ?? 0) + 1)
    console.log(
      `keys per owner: ${caches.map((n) => `${n.id} ${owned.get(n.peerUrl)}`).join(', ')}`,
    )
    const c1Paths = hitKeys.filter((_, i) => ownerOf[i] === c1.peerUrl).map((k) => `/keys/${k}`)
    const hitPaths = hitKeys.map((k) => `/keys/${k}`)
    const cacheIndex = new Map(caches.map((n, i) => [n.peerUrl, i]))
    const hitOwnerIdx = Uint8Array.from(ownerOf, (o) => cacheIndex.get(o) as number)

    // ---- CPU accounting: caches and members (the admin is left out), or the bare server.
    const cacheCpu = (): number => caches.reduce((s, n) => s + procCpuMs(n.pid), 0)
    const dbCpu = (): number => c.all().reduce((s, n) => s + procCpuMs(n.pid), 0)
    const clusterCpu: ServerCpu = () => ({ cache: cacheCpu(), db: dbCpu(), c1: procCpuMs(c1.pid) })
    const bareCpu: ServerCpu = () => ({ cache: procCpuMs(bareChild.pid), db: 0, c1: 0 })
    const idle0 = clusterCpu()
    const idleT0 = performance.now()
    progress.set('measuring idle CPU (2 s)')
    await new Promise((r) => setTimeout(r, 2_000))
    progress.clear()
    const idle1 = clusterCpu()
    const idleSec = (performance.now() - idleT0) / 1000
    const idle = {
      cacheMsPerSec: (idle1.cache - idle0.cache) / idleSec,
      dbMsPerSec: (idle1.db - idle0.db) / idleSec,
    }
    console.log(
      `idle CPU: caches ${idle.cacheMsPerSec.toFixed(1)} ms/s, db members ${idle.dbMsPerSec.toFixed(1)} ms/s ` +
        '(heartbeats and ticks; included in the per-op figures)\n',
    )

    // ---- the runs
    const results: Result[] = []
    for (const [ci, conc] of concurrencies.entries()) {
      const cachePools = caches.map((n) => new Pool(n.url, { connections: conc }))
      const barePool = new Pool(bareUrl, { connections: conc })
      pools.push(...cachePools, barePool)
      const c1Pool = cachePools[caches.indexOf(c1)] as Pool
      const fresh = new KeyStream((freshKeys[ci] ?? []).map((k) => `/keys/${k}`))
      const warmupShare = warmupSeconds / (warmupSeconds + seconds)
      const specs: Record<RunKind, () => RunSpec> = {
        bare: () => ({
          run: 'bare',
          concurrency: conc,
          op: (_i, tally) => get(barePool, '/keys/x', 200, tally),
          cpu: bareCpu,
          warmupOps: MAX_OPS,
          maxOps: () => MAX_OPS,
          isBare: true,
        }),
        'hit-1': () => ({
          run: 'hit-1',
          concurrency: conc,
          op: (i, tally) => get(c1Pool, c1Paths[i % c1Paths.length] as string, 200, tally),
          cpu: clusterCpu,
          warmupOps: MAX_OPS,
          maxOps: () => MAX_OPS,
        }),
        'hit-3': () => ({
          run: 'hit-3',
          concurrency: conc,
          op: (i, tally) => {
            const k = i % hitPaths.length
            const pool = cachePools[hitOwnerIdx[k] as number] as Pool
            return get(pool, hitPaths[k] as string, 200, tally)
          },
          cpu: clusterCpu,
          warmupOps: MAX_OPS,
          maxOps: () => MAX_OPS,
        }),
        miss: () => ({
          run: 'miss',
          concurrency: conc,
          op: (i, tally) =>
            get(cachePools[i % cachePools.length] as Pool, fresh.next(), 200, tally),
          cpu: clusterCpu,
          // The warm-up reads its own share of the fresh keys; the run gets the rest.
          warmupOps: Math.floor(fresh.remaining * warmupShare),
          maxOps: () => fresh.remaining,
        }),
        absent: () => ({
          run: 'absent',
          concurrency: conc,
          op: (i, tally) =>
            get(cachePools[i % cachePools.length] as Pool, `/keys/absent-${conc}-${i}`, 404, tally),
          cpu: clusterCpu,
          warmupOps: MAX_OPS,
          maxOps: () => MAX_OPS,
        }),
      }
      for (const kind of runs) {
        const r = await measure(specs[kind]())
        results.push(r)
        console.log(row(r))
      }
      await Promise.all(cachePools.map((p) => p.close()))
      await barePool.close()
    }

    // ---- report
    console.log(`\n${TABLE_HEAD}`)
    console.log(`|${' --- |'.repeat(13)}`)
    const ordered = runs.flatMap((kind) => results.filter((r) => r.run === kind))
    for (const r of ordered) console.log(row(r))

    const ratios = concurrencies.flatMap((conc) => {
      const b = results.find((r) => r.run === 'bare' && r.concurrency === conc)
      const h = results.find((r) => r.run === 'hit-1' && r.concurrency === conc)
      if (!b || !h || b.opsPerSec === 0 || b.serverCpuMsPerOp === 0) return []
      return [
        {
          concurrency: conc,
          opsPerSecRatio: h.opsPerSec / b.opsPerSec,
          serverCpuPerOpRatio: h.serverCpuMsPerOp / b.serverCpuMsPerOp,
          c1CpuPerOpRatio: (h.c1CpuMsPerOp ?? 0) / b.serverCpuMsPerOp,
        },
      ]
    })
    if (ratios.length > 0) {
      console.log('\none-node hit path (hit-1) against the bare node:http server:')
      for (const q of ratios)
        console.log(
          `  C=${q.concurrency}: ops/s ${(q.opsPerSecRatio * 100).toFixed(0)} % of bare; ` +
            `server CPU per op ${q.serverCpuPerOpRatio.toFixed(2)}x bare ` +
            `(cache node c1 alone ${q.c1CpuPerOpRatio.toFixed(2)}x)`,
        )
    }

    await writeJson(args.json, {
      bench: 'cache',
      startedAt,
      node: process.version,
      cores: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      options: { seconds, warmupSeconds, concurrencies, keyCount, missKeys, runs, quietWait },
      valueBytes: VALUE_BYTES,
      keysPerOwner: Object.fromEntries(caches.map((n) => [n.id, owned.get(n.peerUrl)])),
      idleCpu: idle,
      results,
      ratios,
    })
    console.log(`\nresults written to ${args.json}`)
    await stopChild(bareChild)
  } catch (e) {
    progress.clear()
    c.reportFailure('bench:cache')
    throw e
  } finally {
    progress.clear()
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)))
    await stopChild(bare)
    // (A Ctrl-C during the graceful part still finds the cluster to stop and clean up.)
    await c.closeGracefully()
    clusterClosed = true
  }
}

await main()
