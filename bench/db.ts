// The database tier's benchmark: a 3-member cluster on loopback (real processes, real fsync),
// writes and reads at 1, 16 and 128 concurrent clients with 100 B and 4 KiB values, spread
// over all members (followers forward writes to the leader), then resident memory per member
// before and after loading many keys. Every loop is bounded in time and count.
//
//   npm run bench:db -- [--seconds 5] [--load-keys 1000000] [--concurrency 1,16,128]
//
// The load generator runs on the same 2 cores as the cluster: figures are a floor, and the
// CPU each member used per operation is printed beside them.
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { Cluster, type DbProcess } from '../test/e2e/cluster.ts'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    'load-keys': { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '1,16,128' },
    sizes: { type: 'string', default: '100,4096' },
  },
})
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

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
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

/** run drives `clients` concurrent loops of op for the given time; each loop is bounded. */
async function run(
  name: string,
  size: number,
  clients: number,
  pools: readonly Pool[],
  nodes: readonly DbProcess[],
  op: (pool: Pool, i: number) => Promise<boolean>,
): Promise<Result> {
  const latencies: number[] = []
  let errors = 0
  let seq = 0
  const cpuBefore = await cpuMs(nodes)
  const started = performance.now()
  const deadline = started + seconds * 1000
  const maxOps = 5_000_000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < deadline && seq < maxOps) {
        const i = seq++
        const pool = pools[(c + i) % pools.length] as Pool
        const t0 = performance.now()
        const ok = await op(pool, i).catch(() => false)
        latencies.push(performance.now() - t0)
        if (!ok) errors++
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  const cpuAfter = await cpuMs(nodes)
  const sorted = Float64Array.from(latencies).sort()
  return {
    op: name,
    size,
    clients,
    ops: latencies.length,
    errors,
    opsPerSec: Math.round(latencies.length / elapsed),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuMsPerOp: latencies.length ? (cpuAfter - cpuBefore) / latencies.length : 0,
  }
}

async function rssMiB(nodes: readonly DbProcess[]): Promise<string[]> {
  const out: string[] = []
  for (const n of nodes)
    out.push(`${n.id} ${((await n.stats()).rss_bytes / 2 ** 20).toFixed(0)} MiB`)
  return out
}

async function main(): Promise<void> {
  console.log(`oncekv db benchmark: 3 members on loopback, ${seconds} s per case`)
  const cluster = await Cluster.start({
    name: 'bench',
    size: 3,
    tickMs: 50,
    snapshotEntries: 100_000,
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
        `\nresident memory before loading ${loadKeys} keys: ${(await rssMiB(nodes)).join(', ')}`,
      )
      // Loading goes to the leader directly: it measures the store, not the forwarding hop.
      const leaderId = (await (nodes[0] as DbProcess).stats()).leader
      const leaderPool = pools[nodes.findIndex((n) => n.id === leaderId)] ?? (pools[0] as Pool)
      const value = Buffer.alloc(100, 'v')
      let next = 0
      let acked = 0
      const t0 = performance.now()
      let lastReport = t0
      await Promise.all(
        Array.from({ length: 128 }, async () => {
          while (next < loadKeys) {
            const i = next++
            const res = await leaderPool
              .request({ path: `/keys/load-${i}`, method: 'PUT', body: value })
              .catch(() => undefined)
            if (res) {
              await res.body.dump()
              if (res.statusCode < 300) acked++
            }
            const now = performance.now()
            if (now - lastReport > 10_000) {
              lastReport = now
              console.log(`  loaded ${acked} keys (${Math.round(acked / ((now - t0) / 1000))}/s)`)
            }
          }
        }),
      )
      const loadSecs = (performance.now() - t0) / 1000
      console.log(
        `loaded ${acked} keys in ${loadSecs.toFixed(0)} s (${Math.round(acked / loadSecs)} writes/s at 128 clients)`,
      )
      await cluster.waitCaughtUp(undefined, { timeoutMs: 120_000 })
      console.log(`resident memory after: ${(await rssMiB(nodes)).join(', ')}`)
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
