// The simulator's command line: `npm run sim -- --seeds N [--seed S] [--nodes 3|5] [--ticks T]
// [--bug voteTwice|commitOldTermByCounting] [--profile swarm|aggressive] [--jobs J]`. It runs
// seeds S..S+N-1 (S random when not given, and printed), prints progress every ~1000 seeds,
// the total time and seeds/s, and on a failure prints it with its replay line and exits 1.
// Wall-clock time is read here only, for the throughput printout; runs never see it.
import { randomInt } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { runPool, type WorkerReport } from './sim-pool.ts'
import { SimFailure } from './sim-trace.ts'
import { runSeed, type RunSummary, type SimulationOptions } from './simulation.ts'

const USAGE =
  'usage: npm run sim -- [--seeds N] [--seed S] [--nodes 3|5] [--ticks T] ' +
  '[--bug voteTwice|commitOldTermByCounting] [--profile swarm|aggressive] [--jobs J] [--verbose]'

class UsageError extends Error {}

function intArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a non-negative integer`)
  return Number(v)
}

function parse():
  { runs: SimulationOptions[]; jobs: number; verbose: boolean; first: number } | undefined {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      ticks: { type: 'string' },
      bug: { type: 'string' },
      profile: { type: 'string' },
      jobs: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) return undefined
  const seeds = intArg(values.seeds, 'seeds') ?? (values.seed !== undefined ? 1 : 100)
  const first = intArg(values.seed, 'seed') ?? randomInt(1, 2 ** 31)
  const nodes = intArg(values.nodes, 'nodes')
  if (nodes !== undefined && nodes !== 3 && nodes !== 5)
    throw new UsageError('--nodes must be 3 or 5')
  const ticks = intArg(values.ticks, 'ticks')
  const bug = values.bug
  if (bug !== undefined && bug !== 'voteTwice' && bug !== 'commitOldTermByCounting') {
    throw new UsageError('--bug must be voteTwice or commitOldTermByCounting')
  }
  const profile = values.profile
  if (profile !== undefined && profile !== 'swarm' && profile !== 'aggressive') {
    throw new UsageError('--profile must be swarm or aggressive')
  }
  const jobs =
    intArg(values.jobs, 'jobs') ?? (seeds >= 50 ? Math.min(2, availableParallelism()) : 1)
  const runs: SimulationOptions[] = []
  for (let i = 0; i < seeds; i++) {
    runs.push({
      seed: (first + i) >>> 0,
      ...(nodes !== undefined ? { nodes: nodes as 3 | 5 } : {}),
      ...(ticks !== undefined ? { ticks } : {}),
      ...(bug !== undefined ? { bug } : {}),
      ...(profile !== undefined ? { profile } : {}),
    })
  }
  return { runs, jobs: Math.max(1, jobs), verbose: values.verbose, first }
}

function describe(s: RunSummary): string {
  return (
    `seed ${s.seed}: ok, ${s.nodes} nodes, ${s.events} events, ${s.virtualMs} virtual ms, ` +
    `${s.acked} puts acknowledged, ${s.reads} reads, ${s.leaders} leaders, ${s.crashes} crashes, ` +
    `${s.snapshotsInstalled} snapshots installed, liveness ${s.liveness}, ` +
    `${s.confIgnored} conf changes ignored under a restored snapshot`
  )
}

async function main(): Promise<number> {
  const args = parse()
  if (args === undefined) {
    console.log(USAGE)
    return 0
  }
  const { runs, jobs, verbose, first } = args
  const bug = runs[0]?.bug
  console.log(
    `sim: seeds ${first}..${first + runs.length - 1}${bug ? ` with bug ${bug}` : ''}, ${jobs} job(s)`,
  )
  const t0 = performance.now()
  let done = 0
  let events = 0
  let acked = 0
  const failures: string[] = []
  const onPassed = (s: RunSummary): void => {
    done++
    events += s.events
    acked += s.acked
    if (verbose) console.log(describe(s))
    if (done % 1000 === 0) {
      const secs = (performance.now() - t0) / 1000
      console.log(
        `  ${done}/${runs.length} seeds ok, ${secs.toFixed(1)} s, ${(done / secs).toFixed(1)} seeds/s`,
      )
    }
  }
  if (jobs === 1) {
    for (const options of runs) {
      try {
        onPassed(runSeed(options))
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err
        console.error(err.message)
        failures.push(err.replay)
        break
      }
    }
  } else {
    const { failures: failed } = await runPool(runs, {
      workers: jobs,
      onReport: (r: WorkerReport) => {
        if (r.kind === 'ok') onPassed(r.summary)
        else if (r.kind === 'fail') console.error(r.message)
        else if (r.kind === 'error') console.error(`seed ${r.seed}: ${r.message}`)
      },
    })
    for (const f of failed)
      failures.push(f.kind === 'fail' ? f.replay : `npm run sim -- --seed ${f.seed}`)
  }
  const secs = (performance.now() - t0) / 1000
  const rate = `${(done / secs).toFixed(1)} seeds/s, ${Math.round(events / secs)} events/s`
  if (failures.length > 0) {
    console.error(`\nFAILED: ${done} seeds passed in ${secs.toFixed(2)} s (${rate}); replay:`)
    for (const f of failures) console.error(`  ${f}`)
    return 1
  }
  console.log(`sim: ${done} seeds ok in ${secs.toFixed(2)} s: ${rate}, ${acked} puts acknowledged`)
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      console.error(`${err.message}\n${USAGE}`)
      process.exitCode = 2
    } else {
      console.error(err)
      process.exitCode = 1
    }
  },
)
