// `oncekv bench`: a quick load test through the client library: N puts of new keys with C
// calls in flight, then N gets of the same keys (each value checked), and a summary of ops/s,
// p50/p99/max latency and errors per phase. A progress bar goes to stderr on a terminal, one
// line per phase otherwise. Keys carry a random run id, so runs never conflict.
//
// Against nodes that do not answer it fails fast: a phase stops once its first calls (as many
// as run at once) all failed with UnavailableError or TimeoutError, and the get phase runs only
// if a put succeeded; the run exits 1 with the first error on one line.
import type { Command } from 'commander'
import { randomBytes } from 'node:crypto'
import { OnceKV, OnceKVError, TimeoutError, UnavailableError } from '../../client/index.ts'
import { intOption } from '../options.ts'
import {
  addClientFlags,
  clientOptions,
  EXIT,
  refusal,
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
export interface PhaseResult {
  readonly name: string
  /** ops counts the calls that ran to an end (all n, unless the phase stopped early). */
  readonly ops: number
  readonly errors: number
  readonly firstError: string | undefined
  /** stoppedAfter is set when the phase stopped early: its first stoppedAfter calls all
   * failed because nothing answered. */
  readonly stoppedAfter: number | undefined
  readonly seconds: number
  /** latencies in ms of the calls that ran to an end, sorted. */
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
    // Puts first, then gets of them: the write token (or the admin token) does both.
    const opts = clientOptions(flags, 'bench', 'write')
    const refused = (e: unknown): never => {
      const line =
        e instanceof OnceKVError ? refusal(e.status, 'write', opts.token !== undefined) : undefined
      throw line ? new Error(line) : e
    }
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
    const puts = await phase('put', flags.count, flags.concurrency, async (i, signal) => {
      await client.put(keyOf(i), valueOf(i), { signal }).catch(refused)
    })
    // Without a single key written there is nothing to read back.
    const gets =
      puts.ops > puts.errors
        ? await phase('get', flags.count, flags.concurrency, async (i, signal) => {
            const v = await client.get(keyOf(i), { signal }).catch(refused)
            if (v === undefined) throw new Error(`${keyOf(i)} not found`)
            if (!Buffer.from(v).equals(valueOf(i))) throw new Error(`${keyOf(i)} has other bytes`)
          })
        : undefined
    const phases = gets ? [puts, gets] : [puts]
    await writeOut(summary(phases))
    const failure = failureLine(phases)
    if (failure !== undefined) {
      console.error(`oncekv bench: ${failure}`)
      process.exitCode = EXIT.error
    }
  })
}

/** failureLine says in one line why a run failed, or undefined when no call failed. */
export function failureLine(phases: readonly PhaseResult[]): string | undefined {
  const stopped = phases.find((p) => p.stoppedAfter !== undefined)
  const first = phases.find((p) => p.firstError !== undefined)?.firstError
  if (stopped)
    return `the ${stopped.name} phase stopped: its first ${stopped.stoppedAfter} calls all failed; the first: ${first}`
  const [puts] = phases
  if (puts && puts.ops > 0 && puts.errors === puts.ops)
    return `no put succeeded (${puts.errors} errors), so no get ran; the first: ${first}`
  const errors = phases.reduce((n, p) => n + p.errors, 0)
  return errors > 0 ? `${errors} errors; the first: ${first}` : undefined
}

/** unreachable is true for the errors that say no node answered in time. */
function unreachable(e: unknown): boolean {
  return e instanceof UnavailableError || e instanceof TimeoutError
}

/** oneLine makes an error's message fit on one line. */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*[\r\n]+\s*/g, ' ')
}

/** phase runs op(0) … op(n - 1), c at a time, and measures each. It stops early, aborting the
 * calls in flight through op's signal, once its first min(c, n) calls have all failed with
 * UnavailableError or TimeoutError: nothing answers, and every other call would only wait out
 * its own deadline too. */
export async function phase(
  name: string,
  n: number,
  c: number,
  op: (i: number, signal: AbortSignal) => Promise<void>,
  opts: { quiet?: boolean } = {},
): Promise<PhaseResult> {
  const latencies: number[] = []
  const probe = Math.min(c, n)
  // One controller per call (a signal shared by every call would gather a listener per call
  // in flight); stopping aborts those running, and no call starts after it.
  const running = new Set<AbortController>()
  let stopped = false
  let errors = 0
  let unanswered = 0
  let firstError: string | undefined
  let stoppedAfter: number | undefined
  let done = 0
  let next = 0
  const progress = opts.quiet ? undefined : new Progress(name, n, () => done)
  const started = performance.now()
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n && !stopped; i = next++) {
      const t = performance.now()
      const ctl = new AbortController()
      running.add(ctl)
      try {
        await op(i, ctl.signal)
      } catch (e) {
        // A call aborted because the phase stopped did not run to an end: not counted.
        if (stopped) return
        errors++
        firstError ??= oneLine(e)
        if (unreachable(e)) unanswered++
      } finally {
        running.delete(ctl)
      }
      latencies.push(performance.now() - t)
      done++
      if (done === probe && unanswered === probe && probe < n) {
        stoppedAfter = probe
        stopped = true
        for (const other of running) other.abort(new Error(`the ${name} phase stopped`))
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: probe }, worker))
  } finally {
    progress?.stop()
  }
  const seconds = (performance.now() - started) / 1000
  return {
    name,
    ops: done,
    errors,
    firstError,
    stoppedAfter,
    seconds,
    latencies: Float64Array.from(latencies).sort(),
  }
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
