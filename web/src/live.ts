// The page's live link to the admin: a WebSocket on /ws/overview (same origin) that delivers
// the history, then an overview every second. When it drops, or goes quiet for longer than a
// few seconds (a half-open connection), it reconnects with capped exponential backoff and
// jitter; the last data stays on screen, marked stale by the page. A browser does not say why
// a WebSocket was refused, so after an attempt that delivered nothing the page asks the admin
// (GET api/info): a 403 there carries the reason (this host name or origin is not allowed),
// which the page shows. The same call tells the page the admin's settings.
import { onScopeDispose, shallowReactive } from 'vue'
import { info } from './api.ts'
import { backoffMs } from './backoff.ts'
import { parseLiveMessage, type AdminInfo, type AdminOverview } from './protocol.ts'
import { appendOverview, EMPTY_SERIES, fromHistory, type Series } from './series.ts'

/** ConnState: connecting (first attempt), live (messages arrive), reconnecting (lost it). */
export type ConnState = 'connecting' | 'live' | 'reconnecting'

/** LiveState is what the page renders from. */
export interface LiveState {
  state: ConnState
  overview: AdminOverview | null
  series: Series
  /** lastMessageAt is when the last message arrived (ms since the epoch; 0: none yet). */
  lastMessageAt: number
  /** retryAt is when the next attempt starts while reconnecting (0 otherwise). */
  retryAt: number
  /** failures counts attempts in a row that delivered nothing. */
  failures: number
  /** now is a clock the page redraws ages with, advanced twice a second. */
  now: number
  /** refused is the admin's reason for refusing this page (null when it is not refused). */
  refused: string | null
  /** info is what the admin says of itself (null until it answered). */
  info: AdminInfo | null
}

/** QUIET_MS: no message for this long (since the last one, or since the attempt began)
 * means the link is dead. */
const QUIET_MS = 5_000

/** STALE_MS: data older than this is marked stale (the admin sends every second). */
export const STALE_MS = 3_000

function overviewUrl(): string {
  const url = new URL('ws/overview', window.location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.search = ''
  url.hash = ''
  return url.toString()
}

/** useLiveOverview connects for as long as the calling component lives. */
export function useLiveOverview(): LiveState {
  const live = shallowReactive<LiveState>({
    state: 'connecting',
    overview: null,
    series: EMPTY_SERIES,
    lastMessageAt: 0,
    retryAt: 0,
    failures: 0,
    now: Date.now(),
    refused: null,
    info: null,
  })
  let ws: WebSocket | undefined
  let retryTimer: number | undefined
  let stopped = false
  let attemptAt = 0

  // ask fetches the admin's info; a 403 is the reason this page is refused.
  let asking = false
  const ask = async (): Promise<void> => {
    if (asking) return
    asking = true
    try {
      const r = await info()
      if (r.ok) {
        live.info = r.body
        live.refused = null
      } else if (r.status === 403) {
        live.refused = r.message
      }
    } finally {
      asking = false
    }
  }

  // quiet drops the current socket when it has said nothing for QUIET_MS.
  let quiet: () => void = () => {}

  // dropped forgets a socket that closed or went quiet and schedules the next attempt. A
  // quiet socket is not waited for: its closing handshake may never finish.
  const dropped = (socket: WebSocket, delivered: boolean): void => {
    if (ws !== socket) return
    ws = undefined
    socket.onmessage = null
    socket.onclose = null
    socket.close()
    if (stopped) return
    live.failures = delivered ? 1 : live.failures + 1
    if (!delivered) void ask()
    live.state = 'reconnecting'
    const wait = backoffMs(live.failures, Math.random())
    live.retryAt = Date.now() + wait
    retryTimer = window.setTimeout(connect, wait)
  }

  const connect = (): void => {
    live.retryAt = 0
    attemptAt = Date.now()
    let delivered = false
    const socket = new WebSocket(overviewUrl())
    ws = socket
    socket.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return
      const msg = parseLiveMessage(ev.data)
      if (!msg) return
      if (!delivered && (live.info === null || live.refused !== null)) void ask()
      delivered = true
      live.refused = null
      live.failures = 0
      live.state = 'live'
      live.lastMessageAt = Date.now()
      if (msg.type === 'history') {
        live.series = fromHistory(msg, live.series)
      } else {
        live.overview = msg
        live.series = appendOverview(live.series, msg)
      }
    }
    // An error is always followed by close.
    socket.onclose = () => dropped(socket, delivered)
    quiet = () => dropped(socket, delivered)
  }

  const clock = window.setInterval(() => {
    live.now = Date.now()
    if (ws && live.now - Math.max(live.lastMessageAt, attemptAt) > QUIET_MS) quiet()
  }, 500)

  connect()
  onScopeDispose(() => {
    stopped = true
    window.clearInterval(clock)
    window.clearTimeout(retryTimer)
    ws?.close()
  })
  return live
}
