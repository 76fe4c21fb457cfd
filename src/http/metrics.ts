// Prometheus metrics read from a stats object when scraped (prom-client, one registry per
// process, no globals): counters for monotonic stats, gauges for the rest; and the process's
// memory figures that /stats shows.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** StatsRegistry registers metrics that read a stats snapshot at scrape time. */
export class StatsRegistry<S> {
  readonly registry = new Registry()
  readonly contentType = this.registry.contentType

  constructor(private readonly stats: () => S) {
    // The event-loop delay is sampled every 100 ms, not prom-client's default 10 ms: that
    // timer woke every process 100 times a second, most of an idle node's wake-ups (an idle
    // 7-process cluster: 0.117-0.118 cores before, 0.101-0.107 after). Ten samples a second
    // still give a scrape every 15 s its 150.
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'oncekv_',
      eventLoopMonitoringPrecision: 100,
    })
  }

  /** gauge exports read(stats) as a gauge. */
  gauge(name: string, help: string, read: (s: S) => number): void {
    const stats = this.stats
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read(stats()))
      },
    })
  }

  /** counter exports a monotonic stat as a counter (name should end in _total). */
  counter(name: string, help: string, read: (s: S) => number): void {
    const stats = this.stats
    let last = 0
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const now = read(stats())
        if (now > last) this.inc(now - last)
        last = now
      },
    })
  }

  /** labeledCounter exports monotonic stats as one counter with a label: series maps each
   * value of the label to the stat it reads. */
  labeledCounter(
    name: string,
    help: string,
    label: string,
    series: Readonly<Record<string, (s: S) => number>>,
  ): void {
    const stats = this.stats
    const last = new Map<string, number>()
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        const snapshot = stats()
        for (const [value, read] of Object.entries(series)) {
          const now = read(snapshot)
          const before = last.get(value) ?? 0
          // Every series is shown, at 0 until its stat moves.
          this.inc({ [label]: value }, now > before ? now - before : 0)
          last.set(value, now)
        }
      },
    })
  }

  /** render returns the metrics text. */
  render(): Promise<string> {
    return this.registry.metrics()
  }
}

/** ProcessMemory is the process's memory as /stats shows it (cache nodes, the admin). */
export interface ProcessMemory {
  readonly rss_bytes: number
  readonly heap_used_bytes: number
  readonly external_bytes: number
  readonly array_buffers_bytes: number
}

/** processMemory is the process's memory in /stats: resident, the JavaScript heap in use,
 * and the memory outside it (Buffers, of which array_buffers_bytes are the values held). */
export function processMemory(): ProcessMemory {
  const m = process.memoryUsage()
  return {
    rss_bytes: m.rss,
    heap_used_bytes: m.heapUsed,
    external_bytes: m.external,
    array_buffers_bytes: m.arrayBuffers,
  }
}
