// The simulator's flight recorder and its failure type. Trace keeps the last events of a run
// (messages delivered, role changes, crashes, restarts, partitions, membership and client
// events) in a ring buffer and formats them only when a run fails, so recording stays cheap.
// SimFailure is the one error a failed check throws: seed, invariant, details, a replay line
// and the trace.
import type { Message } from '../../src/raft/index.ts'

type TraceRecord =
  | { readonly t: number; readonly text: string; readonly msg?: undefined }
  | { readonly t: number; readonly msg: Message; readonly text?: undefined }

/** Trace is a ring buffer of the last `size` events of a run. */
export class Trace {
  private readonly buf: (TraceRecord | undefined)[]
  private next = 0
  private total = 0

  constructor(readonly size = 100) {
    this.buf = new Array<TraceRecord | undefined>(size)
  }

  /** event records a line of text at virtual time t. */
  event(t: number, text: string): void {
    this.push({ t, text })
  }

  /** message records the delivery of m at virtual time t. */
  message(t: number, msg: Message): void {
    this.push({ t, msg })
  }

  private push(r: TraceRecord): void {
    this.buf[this.next] = r
    this.next = (this.next + 1) % this.size
    this.total++
  }

  /** dump formats the recorded events, oldest first. */
  dump(): string {
    const lines: string[] = []
    const n = Math.min(this.total, this.size)
    const start = (this.next - n + this.size) % this.size
    for (let i = 0; i < n; i++) {
      const r = this.buf[(start + i) % this.size]
      if (r === undefined) continue
      const t = String(r.t).padStart(7)
      lines.push(`${t}  ${r.msg ? formatMessage(r.msg) : r.text}`)
    }
    return lines.join('\n')
  }
}

/** formatMessage renders a message on one line. */
export function formatMessage(m: Message): string {
  const head = `deliver ${m.from}->${m.to} ${m.type} term=${m.term}`
  switch (m.type) {
    case 'app': {
      const first = m.entries[0]
      const last = m.entries[m.entries.length - 1]
      const ents =
        first && last
          ? ` entries=[${first.index}..${last.index}]@${[...new Set(m.entries.map((e) => e.term))].join(',')}`
          : ''
      return `${head} index=${m.index} logTerm=${m.logTerm}${ents} commit=${m.commit}`
    }
    case 'appResp':
      return `${head} index=${m.index}${m.reject ? ` REJECT hint=${m.rejectHint} logTerm=${m.logTerm}` : ''}`
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.ctx ? ` ctx=${m.ctx}` : ''}`
    case 'heartbeatResp':
      return `${head}${m.ctx ? ` ctx=${m.ctx}` : ''}`
    case 'vote':
    case 'preVote':
      return `${head} index=${m.index} logTerm=${m.logTerm}${m.transfer ? ' transfer' : ''}`
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'REJECT' : 'GRANT'}`
    case 'snap':
      return `${head} snapshot=${m.snapshot.index}@${m.snapshot.term} voters=${m.snapshot.conf.voters.join(',')}`
    case 'prop':
      return `${head} proposals=${m.data.length}`
    case 'readIndex':
      return `${head} ctx=${m.ctx}`
    case 'readIndexResp':
      return `${head} ctx=${m.ctx} index=${m.index}${m.reject ? ' REJECT' : ''}`
    case 'timeoutNow':
      return head
    case 'transferLeader':
      return `${head} transferee=${m.transferee}`
  }
}

/** SimFailure is thrown when a check fails: it names the seed, the invariant and how to replay. */
export class SimFailure extends Error {
  override readonly name = 'SimFailure'

  constructor(
    readonly seed: number,
    readonly invariant: string,
    readonly details: string,
    readonly replay: string,
    readonly trace: string,
  ) {
    super(
      `simulation failed: seed ${seed}\n` +
        `invariant: ${invariant}\n` +
        `details: ${details}\n` +
        `replay: ${replay}\n` +
        `trace (last events, virtual ms):\n${trace}`,
    )
  }
}

/** CheckFailed is what a checker throws; the Simulation turns it into a SimFailure. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed'

  constructor(
    readonly invariant: string,
    readonly details: string,
  ) {
    super(`${invariant}: ${details}`)
  }
}
