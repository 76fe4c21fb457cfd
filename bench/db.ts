// The database tier's benchmark: a 3-member cluster on loopback (real processes, real fsync),
// writes and reads at 1, 16 and 128 concurrent clients with 100 B and 4 KiB values, spread
// over all members (followers forward writes to the leader), then resident memory per member
// before and after loading many keys. Every loop is bounded in time and count.
//
//   npm run bench:db -- [--seconds 5] [--load-keys 1000000] [--concurrency 1,16,128]
//
// The load generator runs on the same 2 cores as the cluster: figures are a floor, and the
// CPU each member used per operation is printed beside them.
import { scriptArgs } from '../test/script-args.ts'
import { Pool } from 'undici'
import { Cluster, type DbProcess } from '../test/e2e/cluster.ts'
import { closedLoop, forEachBounded, procRss, Progress } from './load-loop.ts'

const args = scriptArgs(
  'usage: npm run bench:db -- [--seconds 5] [--load-keys 1000000] [--concurrency 1,16,128] ' +
    '[--sizes 100,4096]',
  {
    seconds: { type: 'string', default: '5' },
    'load-keys': { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '1,16,128' },
    sizes: { type: 'string', default: '100,4096' },
  },
)
const seconds = Number(args.seconds)
const loadKeys = Number(args['load-keys'])
const concurrencies = args.concurrency.split(',').map(Number)
const sizes = args.sizes.split(',').map(Number)

interface Result {
  op: string
  size: number
  clients: number
  ops: number
  errors: number
  opsPerSec: number
  p50Ms: number
  p99Ms: number
  cpuMsPerOp: number
}

async function cpuMs(nodes: readonly DbProcess[]): Promise<number> {
  let total = 0
  for (const n of nodes) {
    const res = await fetch(`${n.url}/metrics`)
    const text = await res.text()
    const m = /^oncekv_process_cpu_seconds_total ([0-9.e+-]+)$/m.exec(text)
    total += m ? Number(m[1]) * 1000 : 0
  }
  return total
}

const progress = new Progress()

/** run drives `clients` concurrent loops of op for the given time; each loop is bounded. */
async function run(
  name: string,
  size: number,
  clients: number,
  pools: readonly Pool[],
  nodes: readonly DbProcess[],
  op: (pool: Pool, i: number) => Promise<boolean>,
): Promise<Result> {
  const cpuBefore = await cpuMs(nodes)
  const r = await closedLoop({
    concurrency: clients,
    seconds,
    maxOps: 5_000_000,
    op: (i, c) => op(pools[(c + i) % pools.length] as Pool, i),
    progress,
    label: `${name} ${size} B, ${clients} clients`,
  })
  progress.clear()
  const cpuAfter = await cpuMs(nodes)
  return {
    op: name,
    size,
    clients,
    ops: r.ops,
    errors: r.errors,
    opsPerSec: r.opsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    cpuMsPerOp: r.ops ? (cpuAfter - cpuBefore) / r.ops : 0,
  }
}

// rssMiB is each member's resident set, and what it is made of: anonymous memory (V8's heap,
// as the member's /metrics gives it, and native allocations) and pages of mapped files (the
// Node.js binary and LMDB's data file, the pages of it the member has read).
async function rssMiB(nodes: readonly DbProcess[]): Promise<string[]> {
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)
  const out: string[] = []
  for (const n of nodes) {
    const rss = procRss(n.pid)
    const metrics = await (await fetch(`${n.url}/metrics`)).text()
    const metric = (name: string): number =>
      Number(new RegExp(`^oncekv_nodejs_${name} ([0-9.e+]+)$`, 'm').exec(metrics)?.[1] ?? NaN)
    out.push(
      `${n.id} ${mib(rss.total)} MiB (anonymous ${mib(rss.anon)}, V8 heap ` +
        `${mib(metric('heap_size_total_bytes'))} with ${mib(metric('heap_size_used_bytes'))} ` +
        `in use; files ${mib(rss.file)})`,
    )
  }
  return out
}

async function main(): Promise<void> {
  console.log(`oncekv db benchmark: 3 members on loopback, ${seconds} s per case`)
  const cluster = await Cluster.start({
    name: 'bench',
    size: 3,
    tickMs: 50,
  })
  const nodes = cluster.all()
  const pools = nodes.map((n) => new Pool(n.url, { connections: 128, pipelining: 1 }))
  const results: Result[] = []
  try {
    const runId = Date.now().toString(36)
    for (const size of sizes) {
      const value = Buffer.alloc(size, 'x')
      for (const clients of concurrencies) {
        const prefix = `w-${runId}-${size}-${clients}-`
        const w = await run('write', size, clients, pools, nodes, async (pool, i) => {
          const res = await pool.request({
            path: `/keys/${prefix}${i}`,
            method: 'PUT',
            body: value,
          })
          await res.body.dump()
          return res.statusCode === 201 || res.statusCode === 200
        })
        results.push(w)
        const written = w.ops
        results.push(
          await run('read', size, clients, pools, nodes, async (pool, i) => {
            const res = await pool.request({
              path: `/keys/${prefix}${i % Math.max(1, written)}`,
              method: 'GET',
            })
            await res.body.dump()
            return res.statusCode === 200
          }),
        )
        printRow(results.at(-2) as Result)
        printRow(results.at(-1) as Result)
      }
    }
    console.log('\n| op | value | clients | ops/s | p50 ms | p99 ms | member CPU ms/op | errors |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const r of results) printRow(r, true)

    if (loadKeys > 0) {
      console.log(
        `\nresident memory before loading ${loadKeys} keys:\n  ${(await rssMiB(nodes)).join('\n  ')}`,
      )
      // Loading goes to the leader directly: it measures the store, not the forwarding hop.
      const leaderId = (await (nodes[0] as DbProcess).stats()).leader
      const leaderPool = pools[nodes.findIndex((n) => n.id === leaderId)] ?? (pools[0] as Pool)
      const value = Buffer.alloc(100, 'v')
      const loaded = await forEachBounded({
        count: loadKeys,
        concurrency: 128,
        seconds: 3600,
        fn: async (i) => {
          const res = await leaderPool.request({
            path: `/keys/load-${i}`,
            method: 'PUT',
            body: value,
          })
          await res.body.dump()
          return res.statusCode < 300
        },
        progress,
        label: 'loading keys',
      })
      progress.clear()
      console.log(
        `loaded ${loaded.ok} keys in ${loaded.elapsedSec.toFixed(0)} s (${Math.round(loaded.ok / loaded.elapsedSec)} writes/s at 128 clients)`,
      )
      await cluster.waitCaughtUp(undefined, { timeoutMs: 120_000 })
      console.log(`resident memory after:\n  ${(await rssMiB(nodes)).join('\n  ')}`)
      const s = await (nodes[0] as DbProcess).stats()
      console.log(
        `keys ${s.keys}, store ${(s.db_bytes / 2 ** 20).toFixed(0)} MiB on disk per member`,
      )
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()))
    await cluster.close()
  }
}

function printRow(r: Result, table = false): void {
  const cells = [
    r.op,
    `${r.size} B`,
    r.clients,
    r.opsPerSec,
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    r.cpuMsPerOp.toFixed(3),
    r.errors,
  ]
  console.log(table ? `| ${cells.join(' | ')} |` : `  ${cells.join('  ')}`)
}

await main()
