// WebSocket endpoints on a Fastify server's port (the `ws` package, no framework plugin):
// each path has its own set of clients; an upgrade to any other path, or one refused by the
// Origin check, is closed with an HTTP error and never reaches a handler.
import type { IncomingMessage, Server } from 'node:http'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
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
  /** authorize says why a client may not open path (a 401 or 403), undefined when it may. */
  readonly authorize?: (path: string, req: IncomingMessage) => OnceKvError | undefined
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
      const denied = this.opts.authorize?.(path, req)
      if (denied) return refuse(socket, denied)
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

/** machineNames are the names this machine answers to besides its addresses: localhost, its
 * host name, that name's first label and its mDNS form (name.local), lower-case. */
export function machineNames(): string[] {
  const names = new Set(['localhost'])
  const full = hostname().toLowerCase()
  if (full) {
    const short = full.split('.')[0] as string
    names.add(full)
    names.add(short)
    names.add(`${short}.local`)
  }
  return [...names]
}

/** HostRules are what a Host header or a page's origin is checked against. */
export interface HostRules {
  /** allowed are extra page origins (--allow-origin); their hosts are trusted too. */
  readonly allowed?: readonly string[]
  /** names are host names of this node besides the machine's (e.g. the one it listens on). */
  readonly names?: readonly string[]
}

function hostnameOf(host: string): string | undefined {
  try {
    return new URL(`http://${host}`).hostname.replace(/^\[|\]$/g, '')
  } catch {
    return undefined
  }
}

function allowedOrigins(rules: HostRules): Set<string> {
  return new Set((rules.allowed ?? []).map((o) => o.replace(/\/$/, '').toLowerCase()))
}

/** hostProblem says why a Host header is not one this node answers to (undefined when it is):
 * it must name the machine by address (an IP literal), by one of its names (machineNames and
 * rules.names), or be the host of an allowed origin. A page from a name that an attacker's
 * DNS points at this address (DNS rebinding) sends its own name, and is refused. */
export function hostProblem(host: string | undefined, rules: HostRules = {}): string | undefined {
  if (!host) return 'the request has no Host header'
  const h = host.toLowerCase()
  const name = hostnameOf(h)
  if (name === undefined) return `the Host header ${JSON.stringify(host)} is not a host name`
  if (isIP(name) !== 0) return undefined
  const names = new Set([...machineNames(), ...(rules.names ?? []).map((n) => n.toLowerCase())])
  if (names.has(name)) return undefined
  for (const o of allowedOrigins(rules)) {
    try {
      if (new URL(o).host === h) return undefined
    } catch {
      // Not an origin: it allows nothing.
    }
  }
  return `this node does not answer to the host name ${name}: only to its addresses and to ${[...names].join(', ')} (a page under another name could be a DNS-rebinding attack). To open it as http://${h}, start it with --allow-origin http://${h}`
}

/** trustedHost is true when hostProblem finds nothing wrong with host. */
export function trustedHost(host: string | undefined, allowed: readonly string[] = []): boolean {
  return hostProblem(host, { allowed }) === undefined
}

/** originProblem says why a page from origin may not use this node reached as host
 * (undefined when it may). Clients that send no Origin (not browsers) are not pages, and
 * are let through. A page of an allowed origin may; else the page must come from this
 * node itself (its origin's host is the Host header) under a trusted host (hostProblem).
 * A wildcard is never accepted. */
export function originProblem(
  origin: string | undefined,
  host: string | undefined,
  rules: HostRules = {},
): string | undefined {
  if (origin === undefined) return undefined
  const o = origin.toLowerCase()
  if (allowedOrigins(rules).has(o)) return undefined
  const bad = hostProblem(host, rules)
  if (bad) return bad
  let same: boolean
  try {
    same = new URL(o).host === (host as string).toLowerCase()
  } catch {
    same = false
  }
  if (same) return undefined
  return `pages from ${origin} may not use this node (it serves pages from http://${(host as string).toLowerCase()} only); to allow them, start it with --allow-origin ${origin}`
}

/** sameOrigin is the WebSocket check of originProblem. */
export function sameOrigin(
  allowed: readonly string[] = [],
  names: readonly string[] = [],
): OriginCheck {
  return (origin, req) => originProblem(origin, req.headers.host, { allowed, names }) === undefined
}
