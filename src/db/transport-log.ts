// transportLogger turns the peer transport's events into log lines at a level that fits each:
// connections and snapshot transfers at info, failures at warn, the rest at debug. Connection
// events are rate-limited per peer, so that a peer reconnecting in a loop does not flood the
// log: each peer has a small budget of lines that refills slowly, and the first line after a
// quiet spell says how many were left out.
import type { Logger } from 'pino'
import type { TransportLogger } from '../transport/index.ts'

const INFO = new Set([
  'listening',
  'peer_connected',
  'peer_disconnected',
  'snapshot_sent',
  'snapshot_received',
])
const WARN = new Set([
  'dial_failed',
  'bad_peer',
  'server_error',
  'snapshot_send_failed',
  'snapshot_receive_failed',
  'messages_misaddressed',
  'message_unencodable',
])
/** RATE_LIMITED are the events a flapping connection repeats. */
const RATE_LIMITED = new Set(['peer_connected', 'peer_disconnected', 'dial_failed', 'bad_peer'])

/** BURST lines per peer may be logged at once; one more every REFILL_MS. */
const BURST = 4
const REFILL_MS = 15_000
/** BUDGETS_MAX bounds the peers (or remote hosts) with a budget: the oldest is forgotten, so
 * that connections from ever new addresses or with ever new ids do not grow the map. */
const BUDGETS_MAX = 1024

interface Budget {
  tokens: number
  at: number
  suppressed: number
}

/** transportLogger maps transport events to log levels, rate-limiting connection events. */
export function transportLogger(log: Logger, now: () => number = Date.now): TransportLogger {
  const budgets = new Map<string, Budget>()
  return (event, fields) => {
    const level = INFO.has(event) ? 'info' : WARN.has(event) ? 'warn' : 'debug'
    if (level === 'debug') {
      if (log.isLevelEnabled('debug')) log.debug({ event, ...fields }, event)
      return
    }
    let extra: { suppressed?: number } = {}
    if (RATE_LIMITED.has(event)) {
      const f = fields as { peer?: unknown; remote?: unknown }
      const key = String(f.peer ?? f.remote ?? '')
      const t = now()
      let b = budgets.get(key)
      if (!b) {
        if (budgets.size >= BUDGETS_MAX) {
          const oldest = budgets.keys().next()
          if (oldest.done !== true) budgets.delete(oldest.value)
        }
        b = { tokens: BURST, at: t, suppressed: 0 }
        budgets.set(key, b)
      }
      const refill = Math.floor((t - b.at) / REFILL_MS)
      if (refill > 0) {
        b.tokens = Math.min(BURST, b.tokens + refill)
        b.at = t
      }
      if (b.tokens === 0) {
        b.suppressed++
        return
      }
      b.tokens--
      if (b.suppressed > 0) extra = { suppressed: b.suppressed }
      b.suppressed = 0
    }
    log[level]({ event, ...fields, ...extra }, event.replace(/_/g, ' '))
  }
}
