// WebSocket helpers of the e2e tests: open a socket, collect the first messages, or learn the
// HTTP status an upgrade was refused with.
import WebSocket from 'ws'

/** WsOptions say how to open the socket and how long to wait. */
export interface WsOptions {
  readonly headers?: Record<string, string>
  /** count of messages to wait for (1 by default). */
  readonly count?: number
  readonly timeoutMs?: number
}

/** WsOutcome is how an upgrade went: the HTTP status it was refused with, or the messages. */
export interface WsOutcome {
  readonly status?: number
  readonly messages: string[]
}

/** wsOutcome opens a WebSocket and resolves with its first `count` messages, or with the
 * status of a refused upgrade; it rejects on a socket error or when the messages are late. */
export function wsOutcome(url: string, opts: WsOptions = {}): Promise<WsOutcome> {
  const count = opts.count ?? 1
  const timeoutMs = opts.timeoutMs ?? 8_000
  return new Promise((resolve, reject) => {
    const messages: string[] = []
    const ws = new WebSocket(url, { headers: opts.headers ?? {} })
    const timer = setTimeout(() => {
      ws.terminate()
      reject(
        new Error(`only ${messages.length} of ${count} messages from ${url} in ${timeoutMs} ms`),
      )
    }, timeoutMs)
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer)
      ws.terminate()
      resolve({ status: res.statusCode, messages })
    })
    ws.on('message', (data: Buffer) => {
      messages.push(data.toString('utf8'))
      if (messages.length < count) return
      clearTimeout(timer)
      ws.close()
      // A copy: a message already on its way still arrives after close() and would be
      // pushed onto the array the caller holds.
      resolve({ messages: messages.slice(0, count) })
    })
    ws.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/** wsMessages collects the first `count` messages of a WebSocket, parsed as JSON; a refused
 * upgrade is an error. */
export async function wsMessages<T = unknown>(
  url: string,
  count: number,
  opts: Omit<WsOptions, 'count'> = {},
): Promise<T[]> {
  const out = await wsOutcome(url, { ...opts, count })
  if (out.status !== undefined) throw new Error(`${url}: upgrade refused with ${out.status}`)
  return out.messages.map((m) => JSON.parse(m) as T)
}

/** WsCollector keeps every message of an open WebSocket, parsed as JSON. */
export interface WsCollector<T> {
  readonly messages: T[]
  close(): void
}

/** wsCollect opens a WebSocket and collects its messages until closed; it resolves once the
 * socket is open (and rejects if the upgrade fails). */
export function wsCollect<T = unknown>(url: string, opts: WsOptions = {}): Promise<WsCollector<T>> {
  return new Promise((resolve, reject) => {
    const messages: T[] = []
    const ws = new WebSocket(url, { headers: opts.headers ?? {} })
    ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as T))
    ws.once('open', () => resolve({ messages, close: () => ws.terminate() }))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate()
      reject(new Error(`${url}: upgrade refused with ${res.statusCode}`))
    })
  })
}
