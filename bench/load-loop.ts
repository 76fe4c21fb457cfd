// Load-generator helpers shared by the benchmarks: a closed loop of N requests in flight,
// bounded in time and in count, with latency percentiles and the generator's own CPU share
// (a generator near 100 % of a core measures itself, not the server); a bounded parallel
// for-loop for loading data; per-process CPU time and resident memory from /proc; and a
// one-line progress display.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** LoopOptions configure closedLoop. */
export interface LoopOptions {
  /** concurrency is the number of requests in flight (one async worker each). */
  readonly concurrency: number
  /** seconds bounds the loop in time. */
  readonly seconds: number
  /** maxOps bounds it in count (ops started). */
  readonly maxOps: number
  /** op runs request number i (0, 1, ...) on worker w; false or a throw counts an error. */
  readonly op: (i: number, worker: number) => Promise<boolean>
  /** progress, when given, shows `label` with live counts while the loop runs. */
  readonly progress?: Progress
  readonly label?: string
}

/** LoopResult is what a closed loop measured. */
export interface LoopResult {
  readonly ops: number
  readonly errors: number
  readonly elapsedSec: number
  readonly opsPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** genCpuShare is this process's CPU time over the loop / wall time (1 = one core). */
  readonly genCpuShare: number
}

/** percentile of an ascending array (nearest rank, rounding down); 0 when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

/** closedLoop keeps `concurrency` ops in flight until `seconds` pass or `maxOps` started. */
export async function closedLoop(opts: LoopOptions): Promise<LoopResult> {
  const latencies: number[] = []
  let errors = 0
  let seq = 0
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  const deadline = started + opts.seconds * 1000
  const show = (): void =>
    opts.progress?.set(
      `${opts.label ?? 'run'}  ${((performance.now() - started) / 1000).toFixed(1)}/${opts.seconds} s` +
        `  ${latencies.length} ops  ${errors} errors`,
    )
  const timer = opts.progress ? setInterval(show, 250) : undefined
  try {
    await Promise.all(
      Array.from({ length: opts.concurrency }, async (_, w) => {
        while (seq < opts.maxOps && performance.now() < deadline) {
          const i = seq++
          const t0 = performance.now()
          const ok = await opts.op(i, w).catch(() => false)
          latencies.push(performance.now() - t0)
          if (!ok) errors++
        }
      }),
    )
  } finally {
    clearInterval(timer)
  }
  const wallMs = performance.now() - started
  const cpu = process.cpuUsage(cpu0)
  const sorted = Float64Array.from(latencies).sort()
  const elapsedSec = wallMs / 1000
  return {
    ops: sorted.length,
    errors,
    elapsedSec,
    opsPerSec: elapsedSec > 0 ? Math.round(sorted.length / elapsedSec) : 0,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? (sorted[sorted.length - 1] as number) : 0,
    genCpuShare: wallMs > 0 ? (cpu.user + cpu.system) / 1000 / wallMs : 0,
  }
}

/** ForEachOptions configure forEachBounded. */
export interface ForEachOptions {
  readonly count: number
  readonly concurrency: number
  /** seconds bounds the whole loop in time (items not started by then are skipped). */
  readonly seconds: number
  /** fn handles item i; false or a throw counts a failure. */
  readonly fn: (i: number) => Promise<boolean>
  readonly progress?: Progress
  readonly label?: string
}

/** forEachBounded runs fn(0 .. count-1) with `concurrency` in flight, bounded in time. It
 * returns how many items succeeded, failed and were never started. */
export async function forEachBounded(
  opts: ForEachOptions,
): Promise<{ ok: number; failed: number; skipped: number; elapsedSec: number }> {
  let next = 0
  let ok = 0
  let failed = 0
  const started = performance.now()
  const deadline = started + opts.seconds * 1000
  const timer = opts.progress
    ? setInterval(() => {
        const s = (performance.now() - started) / 1000
        opts.progress?.set(
          `${opts.label ?? 'items'}  ${ok + failed}/${opts.count}` +
            `  (${Math.round((ok + failed) / Math.max(s, 0.001))}/s, ${failed} failed)`,
        )
      }, 250)
    : undefined
  try {
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.count)) }, async () => {
        while (next < opts.count && performance.now() < deadline) {
          const i = next++
          if (await opts.fn(i).catch(() => false)) ok++
          else failed++
        }
      }),
    )
  } finally {
    clearInterval(timer)
  }
  return {
    ok,
    failed,
    skipped: opts.count - next,
    elapsedSec: (performance.now() - started) / 1000,
  }
}

/** Progress is one status line on stderr, redrawn in place on a terminal; elsewhere (a log
 * file, CI) it prints at most one line every 5 s. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true
  private lastPrinted = 0
  private shown = false

  set(text: string): void {
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${text}`)
      this.shown = true
      return
    }
    const now = performance.now()
    if (now - this.lastPrinted < 5_000) return
    this.lastPrinted = now
    process.stderr.write(`${text}\n`)
  }

  /** clear removes the line (call before printing anything else). */
  clear(): void {
    if (this.tty && this.shown) process.stderr.write('\r\x1b[K')
    this.shown = false
  }
}

let clockTicks: number | undefined

/** procCpuMs is the CPU time (user + system) a process has used so far, from
 * /proc/<pid>/stat; 0 for a process that is gone. Linux only. */
export function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0
  clockTicks ??= ticksPerSecond()
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return 0
  }
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  // Then the state is field 3, utime field 14 and stime field 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
}

/** ProcRss is a process's resident set and its two parts, in bytes: anonymous (the process's
 * own: heap, stacks, buffers) and file-backed (pages of mapped files: the Node.js binary,
 * shared by every process running it, and a member's memory-mapped data file, which is the
 * kernel's page cache of that file). */
export interface ProcRss {
  readonly total: number
  readonly anon: number
  readonly file: number
}

/** procRss is pid's resident set split as /proc/<pid>/status gives it (zeros if gone). */
export function procRss(pid: number | undefined): ProcRss {
  if (pid === undefined) return { total: 0, anon: 0, file: 0 }
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024
    return { total: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') }
  } catch {
    return { total: 0, anon: 0, file: 0 }
  }
}

function ticksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return n > 0 ? n : 100
  } catch {
    return 100
  }
}

/** machineBusyMs is the CPU time all processes on the machine have used since boot (user,
 * nice and system time from /proc/stat; interrupts, which the loopback traffic of a run
 * causes, and steal are left out), to tell how much of a run's machine others took. */
export function machineBusyMs(): number {
  clockTicks ??= ticksPerSecond()
  let line: string
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  } catch {
    return 0
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is in user).
  const f = line.trim().split(/\s+/).slice(1, 4).map(Number)
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0)
  return (busy * 1000) / clockTicks
}
