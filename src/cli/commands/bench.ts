// `oncekv bench`: a quick load test through the client library: N puts of new keys with C
// calls in flight, then N gets of the same keys (each value checked), and a summary of ops/s,
// p50/p99/max latency and errors per phase. A progress bar goes to stderr on a terminal, one
// line per phase otherwise. Keys carry a random run id, so runs never conflict.
import type { Command } from 'commander'
import { randomBytes } from 'node:crypto'
import { OnceKV } from '../../client/index.ts'
import { intOption } from '../options.ts'
import {
  addClientFlags,
  clientOptions,
  EXIT,
  positiveIntOption,
  where,
  writeOut,
  type ClientFlags,
} from './client-flags.ts'

interface BenchFlags extends ClientFlags {
  count: number
  concurrency: number
  size: number
  prefix: string
}

/** PhaseResult is one phase's figures. */
interface PhaseResult {
  readonly name: string
  readonly ops: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly seconds: number
  /** latencies in ms, sorted. */
  readonly latencies: Float64Array
}

/** registerBench adds the bench command. */
export function registerBench(program: Command): void {
  addClientFlags(
    program
      .command('bench')
      .description('a quick load test: N puts of new keys, then N gets of them, C at a time')
      .option('-n, --count <n>', 'keys to put, then get', positiveIntOption, 1000)
      .option('-c, --concurrency <n>', 'calls in flight', positiveIntOption, 16)
      .option('--size <bytes>', 'value size in bytes', intOption, 100)
      .option('--prefix <prefix>', 'key prefix (a random run id follows)', 'bench/'),
  ).action(async (flags: BenchFlags) => {
    const opts = clientOptions(flags, 'bench')
    const client = new OnceKV({ ...opts, concurrency: flags.concurrency })
    const run = randomBytes(6).toString('hex')
    const keyOf = (i: number): string => `${flags.prefix}${run}/${i}`
    const base = randomBytes(flags.size)
    const valueOf = (i: number): Uint8Array => {
      const v = Buffer.from(base)
      // Each value differs from the others in its first bytes (its index).
      for (let b = 0; b < Math.min(4, v.length); b++) v[b] = (i >>> (8 * b)) & 0xff
      return v
    }
    console.error(
      `oncekv bench: ${flags.count} keys of ${flags.size} B, ${flags.concurrency} in flight, through ${where(opts)}`,
    )
    const puts = await phase('put', flags.count, flags.concurrency, async (i) => {
      await client.put(keyOf(i), valueOf(i))
    })
    const gets = await phase('get', flags.count, flags.concurrency, async (i) => {
      const v = await client.get(keyOf(i))
      if (v === undefined) throw new Error(`${keyOf(i)} not found`)
      if (!Buffer.from(v).equals(valueOf(i))) throw new Error(`${keyOf(i)} has other bytes`)
    })
    await writeOut(summary([puts, gets]))
    const errors = puts.errors + gets.errors
    if (errors > 0) {
      const first = puts.firstError ?? gets.firstError
      console.error(`oncekv bench: ${errors} errors; the first: ${first}`)
      process.exitCode = EXIT.error
    }
  })
}

/** phase runs op(0) … op(n - 1), c at a time, and measures each. */
async function phase(
  name: string,
  n: number,
  c: number,
  op: (i: number) => Promise<void>,
): Promise<PhaseResult> {
  const latencies = new Float64Array(n)
  let errors = 0
  let firstError: string | undefined
  let done = 0
  let next = 0
  const progress = new Progress(name, n, () => done)
  const started = performance.now()
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) {
      const t = performance.now()
      try {
        await op(i)
      } catch (e) {
        errors++
        firstError ??= e instanceof Error ? e.message : String(e)
      }
      latencies[i] = performance.now() - t
      done++
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(c, n) }, worker))
  } finally {
    progress.stop()
  }
  const seconds = (performance.now() - started) / 1000
  return { name, ops: n, errors, firstError, seconds, latencies: latencies.sort() }
}

/** Progress draws a bar on stderr when it is a terminal (else it says nothing until done). */
class Progress {
  private readonly timer: NodeJS.Timeout | undefined
  private readonly started = performance.now()

  constructor(
    private readonly name: string,
    private readonly total: number,
    private readonly done: () => number,
  ) {
    if (process.stderr.isTTY) this.timer = setInterval(() => this.draw(), 100)
  }

  private draw(): void {
    const width = 30
    const done = this.done()
    const filled = Math.round((width * done) / this.total)
    const pct = Math.floor((100 * done) / this.total)
    process.stderr.write(
      `\r${this.name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${done}/${this.total}`,
    )
  }

  stop(): void {
    const seconds = ((performance.now() - this.started) / 1000).toFixed(2)
    if (this.timer) {
      clearInterval(this.timer)
      this.draw()
      process.stderr.write(` ${seconds} s\n`)
    } else {
      process.stderr.write(`${this.name}: ${this.done()} of ${this.total} in ${seconds} s\n`)
    }
  }
}

/** percentile is the nearest-rank percentile p (0-100) of sorted values. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] as number
}

function summary(results: readonly PhaseResult[]): string {
  const head = ['phase', 'ops', 'errors', 'seconds', 'ops/s', 'p50 ms', 'p99 ms', 'max ms']
  const rows = results.map((r) => [
    r.name,
    String(r.ops),
    String(r.errors),
    r.seconds.toFixed(2),
    String(Math.round(r.ops / Math.max(r.seconds, 1e-9))),
    percentile(r.latencies, 50).toFixed(2),
    percentile(r.latencies, 99).toFixed(2),
    percentile(r.latencies, 100).toFixed(2),
  ])
  const all = [head, ...rows]
  const widths = head.map((_, i) => Math.max(...all.map((c) => (c[i] as string).length)))
  return all
    .map(
      (c) =>
        c
          .map((v, i) =>
            i === 0 ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number),
          )
          .join('  ') + '\n',
    )
    .join('')
}
