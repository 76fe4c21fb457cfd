// The chaos clients: concurrent loops that write unique keys, race each other on shared keys
// with different values, re-put values they already wrote, and read keys back through the
// cache nodes and the database members, recording every operation (history.ts). They speak
// plain HTTP with a timeout per operation and no retries, so the history shows each
// request's own outcome; an error or timeout of a put is recorded as indeterminate.
import { randomBytes } from 'node:crypto'
import { Agent, request } from 'undici'
import type { SeededRng } from '../../src/base/index.ts'
import type { Op, ReadOp, WriteOp, WriteOutcome } from './history.ts'

/** WorkloadOptions say where the clients send their requests and for how long. */
export interface WorkloadOptions {
  readonly clients: number
  readonly rng: SeededRng
  /** dbs and caches give the current base URLs (they change as nodes come and go). */
  readonly dbs: () => readonly string[]
  readonly caches: () => readonly string[]
  /** until is when the clients stop (performance.now() ms). */
  readonly until: number
  /** opTimeoutMs bounds one request. */
  readonly opTimeoutMs?: number
  /** onOp is called for every finished operation (progress lines). */
  readonly onOp?: (op: Op) => void
}

/** RACE_KEYS is how many shared keys the clients race on at a time; each set lives for
 * RACE_EPOCH_MS, then the next set begins. */
const RACE_KEYS = 6
const RACE_EPOCH_MS = 400

/** Workload runs the clients and holds the history. */
export class Workload {
  readonly history: Op[] = []
  private nextId = 0
  /** written is a sample of keys and values some put of which was acknowledged. */
  private readonly written: { key: string; value: string }[] = []
  private readonly agent: Agent
  private readonly started = performance.now()

  constructor(private readonly opts: WorkloadOptions) {
    // Short keep-alive: a paused or killed node's sockets are dropped quickly.
    this.agent = new Agent({ connections: 4, keepAliveTimeout: 2_000, connectTimeout: 1_000 })
  }

  /** run drives every client until the deadline and resolves when all have stopped. */
  async run(): Promise<Op[]> {
    try {
      await Promise.all(
        Array.from({ length: this.opts.clients }, (_, c) => this.client(c, this.opts.rng.child())),
      )
    } finally {
      await this.agent.close()
    }
    return this.history
  }

  private async client(client: number, rng: SeededRng): Promise<void> {
    let n = 0
    while (performance.now() < this.opts.until) {
      const p = rng.next()
      if (p < 0.35) await this.write(client, rng, `u-${client}-${n++}`, this.value(client))
      else if (p < 0.55) await this.write(client, rng, this.raceKey(rng), this.value(client))
      else if (p < 0.62 && this.written.length > 0) {
        const w = this.written[rng.int(this.written.length)]!
        await this.write(client, rng, w.key, w.value)
      } else await this.read(client, rng, this.readKey(client, rng, n))
    }
  }

  private value(client: number): string {
    return `c${client}-${randomBytes(6).toString('hex')}`
  }

  private raceKey(rng: SeededRng): string {
    const epoch = Math.floor((performance.now() - this.started) / RACE_EPOCH_MS)
    return `r-${epoch}-${rng.int(RACE_KEYS)}`
  }

  /** readKey picks a key to read: one written recently, a raced one, or one never written. */
  private readKey(client: number, rng: SeededRng, n: number): string {
    const p = rng.next()
    if (p < 0.5 && this.written.length > 0) {
      const recent = Math.min(this.written.length, 200)
      return this.written[this.written.length - 1 - rng.int(recent)]!.key
    }
    if (p < 0.8) return this.raceKey(rng)
    if (p < 0.9) return `u-${client}-${Math.max(0, n - 1)}`
    return `never-${rng.int(1_000_000)}`
  }

  private pick(rng: SeededRng, urls: readonly string[]): string | undefined {
    return urls.length === 0 ? undefined : urls[rng.int(urls.length)]
  }

  private async write(client: number, rng: SeededRng, key: string, value: string): Promise<void> {
    const node = this.pick(rng, this.opts.dbs())
    if (!node) return
    const invokedAt = performance.now()
    let outcome: WriteOutcome = 'indeterminate'
    let error: string | undefined
    try {
      const res = await request(`${node}/keys/${encodeURIComponent(key)}`, {
        method: 'PUT',
        body: value,
        headers: { 'content-type': 'application/octet-stream' },
        dispatcher: this.agent,
        headersTimeout: this.opts.opTimeoutMs ?? 2_000,
        bodyTimeout: this.opts.opTimeoutMs ?? 2_000,
        signal: AbortSignal.timeout(this.opts.opTimeoutMs ?? 2_000),
      })
      const text = await res.body.text()
      if (res.statusCode === 201) outcome = 'created'
      else if (res.statusCode === 200) outcome = 'exists'
      else if (res.statusCode === 409) outcome = 'conflict'
      else error = `HTTP ${res.statusCode}: ${text.slice(0, 120)}`
    } catch (e) {
      error = describe(e)
      // A refused connection carried no request: this put cannot have taken effect.
      if ((e as { code?: unknown }).code === 'ECONNREFUSED') outcome = 'failed'
    }
    const op: WriteOp = {
      kind: 'write',
      id: this.nextId++,
      client,
      key,
      value,
      invokedAt,
      completedAt: performance.now(),
      outcome,
      node,
      ...(error === undefined ? {} : { error }),
    }
    this.record(op)
    if (outcome === 'created' || outcome === 'exists') {
      this.written.push({ key, value })
      if (this.written.length > 4_000) this.written.splice(0, 2_000)
    }
  }

  private async read(client: number, rng: SeededRng, key: string): Promise<void> {
    const viaCache = rng.chance(0.5) && this.opts.caches().length > 0
    const node = this.pick(rng, viaCache ? this.opts.caches() : this.opts.dbs())
    if (!node) return
    const invokedAt = performance.now()
    let op: Omit<ReadOp, 'completedAt'>
    const base = { kind: 'read', id: this.nextId++, client, key, invokedAt, node } as const
    const via = viaCache ? 'cache' : 'db'
    try {
      const res = await request(`${node}/keys/${encodeURIComponent(key)}`, {
        dispatcher: this.agent,
        headersTimeout: this.opts.opTimeoutMs ?? 2_000,
        bodyTimeout: this.opts.opTimeoutMs ?? 2_000,
        signal: AbortSignal.timeout(this.opts.opTimeoutMs ?? 2_000),
      })
      const text = await res.body.text()
      if (res.statusCode === 200) op = { ...base, via, outcome: 'value', value: text }
      else if (res.statusCode === 404 && notFoundCode(text))
        op = { ...base, via, outcome: 'not_found' }
      else
        op = {
          ...base,
          via,
          outcome: 'error',
          error: `HTTP ${res.statusCode}: ${text.slice(0, 120)}`,
        }
    } catch (e) {
      op = { ...base, via, outcome: 'error', error: describe(e) }
    }
    this.record({ ...op, completedAt: performance.now() } as ReadOp)
  }

  private record(op: Op): void {
    this.history.push(op)
    this.opts.onOp?.(op)
  }
}

/** notFoundCode tells the "key not found" answer (code 1002) from other 404s. */
function notFoundCode(text: string): boolean {
  try {
    return (JSON.parse(text) as { code?: unknown }).code === 1002
  } catch {
    return false
  }
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: unknown }).code
  return `${e.name}${typeof code === 'string' ? ` ${code}` : ''}: ${e.message}`.slice(0, 160)
}
