// WebSocket endpoints on a Fastify server's port (the `ws` package, no framework plugin):
// each path has its own set of clients; an upgrade to any other path, or one refused by the
// Origin check, is closed with an HTTP error and never reaches a handler.
import type { IncomingMessage, Server } from 'node:http'
import { isIP } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import {
  BadRequestError,
  ForbiddenError,
  MethodNotAllowedError,
  RouteNotFoundError,
  type OnceKvError,
} from '../protocol/index.ts'
import { rawErrorAnswer } from './errors.ts'

/** OriginCheck decides whether a browser page from origin may connect (origin is undefined
 * for non-browser clients, which send none). */
export type OriginCheck = (origin: string | undefined, req: IncomingMessage) => boolean

/** WsHubOptions configure a hub. */
export interface WsHubOptions {
  readonly checkOrigin?: OriginCheck
  /** maxPayload bounds a message from a client (bytes); clients only listen here. */
  readonly maxPayload?: number
}

function refuse(socket: Duplex, err: OnceKvError): void {
  socket.end(rawErrorAnswer(err))
}

/** WsHub routes WebSocket upgrades by path. */
export class WsHub {
  private readonly servers = new Map<string, WebSocketServer>()
  private readonly opts: WsHubOptions

  constructor(server: Server, opts: WsHubOptions = {}) {
    this.opts = opts
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy())
      const path = (req.url ?? '').split('?')[0] ?? ''
      const wss = this.servers.get(path)
      if (!wss) return refuse(socket, new RouteNotFoundError(`no WebSocket at ${path}`))
      // What the ws package would refuse with an HTML page gets a JSON error here.
      if (req.method !== 'GET')
        return refuse(
          socket,
          new MethodNotAllowedError(`a WebSocket opens with GET, not ${req.method}`),
        )
      const key = req.headers['sec-websocket-key']
      const version = req.headers['sec-websocket-version']
      if (
        String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
        typeof key !== 'string' ||
        !/^[+/0-9A-Za-z]{22}==$/.test(key) ||
        (version !== '13' && version !== '8')
      )
        return refuse(socket, new BadRequestError('not a valid WebSocket handshake'))
      const origin = req.headers.origin
      if (this.opts.checkOrigin && !this.opts.checkOrigin(origin, req))
        return refuse(
          socket,
          new ForbiddenError(
            `WebSocket from origin ${origin ?? '(none)'} refused: not this node's own origin`,
          ),
        )
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
    })
  }

  /** route serves path; onConnection runs for each new client (to send it a first message). */
  route(path: string, onConnection?: (ws: WebSocket) => void): void {
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.opts.maxPayload ?? 4096 })
    wss.on('connection', (ws: WebSocket) => {
      ws.on('error', () => ws.terminate())
      onConnection?.(ws)
    })
    this.servers.set(path, wss)
  }

  /** clients is the number of clients on path. */
  clients(path: string): number {
    return this.servers.get(path)?.clients.size ?? 0
  }

  /** broadcast sends payload to every open client on path. */
  broadcast(path: string, payload: string): void {
    const wss = this.servers.get(path)
    if (!wss) return
    for (const ws of wss.clients) if (ws.readyState === ws.OPEN) ws.send(payload)
  }

  /** close drops every client. */
  close(): void {
    for (const wss of this.servers.values()) {
      for (const ws of wss.clients) ws.terminate()
      wss.close()
    }
  }
}

/** trustedHost is true for a Host header naming this machine by address (an IP literal or
 * localhost) or a host of an allowed origin. A page from a name that an attacker's DNS
 * points at this address (DNS rebinding) sends its own name, and is refused. */
export function trustedHost(host: string | undefined, allowed: readonly string[] = []): boolean {
  if (!host) return false
  const h = host.toLowerCase()
  let hostname: string
  try {
    hostname = new URL(`http://${h}`).hostname
  } catch {
    return false
  }
  if (hostname === 'localhost' || isIP(hostname.replace(/^\[|\]$/g, '')) !== 0) return true
  return allowed.some((o) => {
    try {
      return new URL(o).host.toLowerCase() === h
    } catch {
      return false
    }
  })
}

/** sameOrigin accepts pages served by this host (and clients that send no Origin), plus the
 * origins listed. A wildcard is never accepted, nor a page reaching this node under a name
 * it was not told (see trustedHost). */
export function sameOrigin(allowed: readonly string[] = []): OriginCheck {
  const extra = new Set(allowed.map((o) => o.replace(/\/$/, '').toLowerCase()))
  return (origin, req) => {
    if (origin === undefined) return true
    const o = origin.toLowerCase()
    if (extra.has(o)) return true
    const host = req.headers.host
    if (!host || !trustedHost(host, allowed)) return false
    try {
      return new URL(o).host === host.toLowerCase()
    } catch {
      return false
    }
  }
}
