// The page's live link to the admin: a WebSocket on /ws/overview (same origin) that delivers
// the history, then an overview every second. When it drops, or goes quiet for longer than a
// few seconds (a half-open connection), it reconnects with capped exponential backoff and
// jitter; the last data stays on screen, marked stale by the page. A browser does not say why
// a WebSocket was refused, so after an attempt that delivered nothing the page asks the admin
// (GET api/info): a 403 there carries the reason (this host name or origin is not allowed),
// which the page shows. The same call tells the page the admin's settings.
import { onScopeDispose, shallowReactive } from 'vue'
import { forgetToken, info, login, storedToken } from './api.ts'
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
  /** needsLogin is true while the admin wants its token and the page has none that works. */
  needsLogin: boolean
  /** loginError is why the last login failed (null when it did not). */
  loginError: string | null
  /** login logs in with token and connects; false when the admin refused it. */
  login(token: string): Promise<boolean>
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
    needsLogin: false,
    loginError: null,
    login: async (token: string): Promise<boolean> => {
      const r = await login(token.trim())
      if (!r.ok) {
        live.loginError = r.message
        return false
      }
      live.needsLogin = false
      live.loginError = null
      if (!ws && !stopped) {
        window.clearTimeout(retryTimer)
        connect()
      }
      return true
    },
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

  // session makes sure that a protected admin has given this page its session cookie: a
  // stored token logs in again (the cookie may be gone: a restart, a new token); without
  // one, or when it is refused, the page asks for the token. False while it must ask.
  const session = async (): Promise<boolean> => {
    if (!live.info?.auth) return true
    const token = storedToken()
    if (token) {
      const r = await login(token)
      if (r.ok) return true
      if (r.status === 401 || r.status === 403) {
        forgetToken()
        live.loginError = r.message
      } else return true // the admin is unreachable: the next attempt will tell
    }
    live.needsLogin = true
    return false
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
    if (!delivered) void ask().then(session)
    live.state = 'reconnecting'
    const wait = backoffMs(live.failures, Math.random())
    live.retryAt = Date.now() + wait
    retryTimer = window.setTimeout(connect, wait)
  }

  const connect = (): void => {
    // Nothing to connect with until the page has the token (login connects then).
    if (live.needsLogin) return
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

  // The first attempt waits for the admin's info: a protected admin wants a session first.
  void ask()
    .then(session)
    .then((ok) => {
      if (ok && !stopped) connect()
    })
  onScopeDispose(() => {
    stopped = true
    window.clearInterval(clock)
    window.clearTimeout(retryTimer)
    ws?.close()
  })
  return live
}
