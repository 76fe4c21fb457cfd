// One chaos run: start 3 or 5 `oncekv db` members behind link proxies, the admin and 3 cache
// nodes; let the clients work while the nemesis injects faults; then heal everything, wait
// until every member has applied the same log, stop them, read every member's whole data
// set from its store, and check the history and the data (checker.ts). The history, the
// fault log and the summary are kept in the output directory.
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SeededRng } from '../../src/base/index.ts'
import { LmdbStore } from '../../src/storage/index.ts'
import { Cluster, freePort, waitFor } from '../e2e/cluster.ts'
import { check, summarize, type Violation } from './checker.ts'
import type { FinalData, Op } from './history.ts'
import { Network } from './link-proxy.ts'
import { FAULT_KINDS, Nemesis, type FaultKind, type NemesisEvent } from './nemesis.ts'
import { Workload } from './workload.ts'

export interface ChaosOptions {
  readonly seed: number
  readonly durationMs: number
  /** members is 3 or 5. */
  readonly members?: number
  readonly caches?: number
  readonly clients?: number
  readonly kinds?: readonly FaultKind[]
  /** bug switches on a deliberate fault in the members (see src/db/server.ts). */
  readonly bug?: 'skip-read-index'
  /** outDir keeps history.jsonl, faults.jsonl and summary.json. */
  readonly outDir: string
  /** progress receives a line now and then. */
  readonly progress?: (line: string) => void
}

export interface ChaosResult {
  readonly seed: number
  readonly ops: number
  readonly outcomes: Record<string, number>
  readonly faults: Record<string, number>
  readonly violations: Violation[]
  readonly keysPerMember: Record<string, number>
  readonly outDir: string
  readonly summary: ReturnType<typeof summarize>
}

/** finalData reads a stopped member's whole key/value data from its store. */
async function finalData(member: string, dir: string): Promise<FinalData> {
  const store = LmdbStore.open(dir)
  const data = new Map<string, string>()
  const dec = new TextDecoder()
  try {
    const source = store.snapshotSource()
    try {
      for await (const chunk of source.chunks(1 << 20))
        for (const p of chunk) data.set(dec.decode(p.key), dec.decode(p.value))
    } finally {
      source.close()
    }
  } finally {
    await store.close()
  }
  return { member, data }
}

/** runChaos runs one seeded chaos run to its end and checks it. It throws only when the
 * system could not be brought back together after healing (which is itself a failure). */
export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const say = opts.progress ?? (() => {})
  mkdirSync(opts.outDir, { recursive: true })
  const rng = new SeededRng(opts.seed)
  const net = new Network()
  if (opts.bug) process.env.ONCEKV_TEST_ONLY_BUG = opts.bug
  const cluster = await Cluster.start({
    name: 'chaos',
    size: opts.members ?? 3,
    snapshotEntries: 2_000,
    startTimeoutMs: 60_000,
    raftProxy: async (id, raftPort) => {
      const port = await freePort()
      await net.proxy(id, port, raftPort)
      return port
    },
  })
  const faultLog = createWriteStream(join(opts.outDir, 'faults.jsonl'))
  try {
    await cluster.startAdmin()
    await cluster.startCaches(opts.caches ?? 3)
    const startedAt = performance.now()
    const until = startedAt + opts.durationMs
    const workload = new Workload({
      clients: opts.clients ?? 16,
      rng: rng.child(),
      dbs: () => cluster.running().map((n) => n.url),
      caches: () => cluster.runningCaches().map((c) => c.url),
      until,
    })
    const nemesis = new Nemesis({
      cluster,
      net,
      rng: rng.child(),
      until,
      startedAt,
      kinds: opts.kinds ?? FAULT_KINDS,
      log: (e: NemesisEvent) => {
        faultLog.write(JSON.stringify(e) + '\n')
        say(`  ${(e.at / 1000).toFixed(1)} s  ${e.what}`)
      },
    })
    const ticker = setInterval(() => {
      const done = ((performance.now() - startedAt) / opts.durationMs) * 100
      say(`  ${Math.min(100, done).toFixed(0)} %  ${workload.history.length} operations`)
    }, 10_000)
    try {
      await Promise.all([workload.run(), nemesis.run()])
    } finally {
      clearInterval(ticker)
    }

    // The history is kept first, so that a run whose system does not come back together
    // still leaves it for inspection.
    const history: Op[] = workload.history
    writeFileSync(
      join(opts.outDir, 'history.jsonl'),
      history.map((o) => JSON.stringify(o)).join('\n') + '\n',
    )

    // Heal: every member and cache running, nothing paused or cut, one log everywhere.
    net.heal()
    for (const n of cluster.everything()) n.resume()
    for (const n of cluster.all()) if (!n.running) cluster.restart(n.id)
    for (const c of cluster.caches()) if (!c.running) cluster.restart(c.id)
    say('  healed; waiting for the members to converge')
    await cluster.waitVoters(
      cluster.all().map((n) => n.id),
      { timeoutMs: 60_000 },
    )
    await cluster.waitAllReady({ timeoutMs: 60_000 })
    await waitFor(
      'every member to apply the same index',
      async () => {
        const stats = await Promise.all(cluster.all().map((n) => n.stats()))
        const applied = new Set(stats.map((s) => s.applied_index))
        const last = new Set(stats.map((s) => s.last_log_index))
        // Writes whose client gave up may still be retried inside a member, or sit in a log
        // uncommitted: wait them out.
        return (
          applied.size === 1 &&
          last.size === 1 &&
          stats.every(
            (s) =>
              s.commit_index === s.applied_index &&
              s.last_log_index === s.commit_index &&
              s.writes_in_flight === 0,
          )
        )
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    )

    // Stop every member gracefully and read what each one holds.
    for (const n of cluster.all()) await cluster.terminate(n.id)
    const finals = await Promise.all(cluster.all().map((n) => finalData(n.id, n.dataDir)))
    const violations = check(history, finals)
    const summary = summarize(history, violations)
    const result: ChaosResult = {
      seed: opts.seed,
      ops: history.length,
      outcomes: countOutcomes(history),
      faults: Object.fromEntries(nemesis.counts),
      violations,
      keysPerMember: Object.fromEntries(finals.map((f) => [f.member, f.data.size])),
      outDir: opts.outDir,
      summary,
    }
    writeFileSync(
      join(opts.outDir, 'summary.json'),
      JSON.stringify({ ...result, violations: violations.slice(0, 50) }, null, 2) + '\n',
    )
    return result
  } catch (e) {
    cluster.reportFailure(`chaos run, seed ${opts.seed}`)
    throw e
  } finally {
    // Kept until here: members restarted during the run carry the bug too.
    if (opts.bug) delete process.env.ONCEKV_TEST_ONLY_BUG
    faultLog.end()
    await cluster.close()
    await net.close()
  }
}

function countOutcomes(history: readonly Op[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const op of history) {
    const k = `${op.kind} ${op.outcome}${op.kind === 'read' ? ` (${op.via})` : ''}`
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}
