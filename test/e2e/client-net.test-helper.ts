// Loopback stand-ins for the client tests: a node that accepts connections and never
// answers; a TCP proxy in front of a member that can hold back responses (all of them for a
// while, or only the first connection's) so an attempt times out after the member acted; an
// HTTP proxy that records every request it forwards (method, path, headers) and can point the
// admin's lists at other proxies; and a node that answers every request from a function.
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server as HttpServer,
} from 'node:http'
import { createConnection, createServer, type Server, type Socket } from 'node:net'

/** listen starts server on a loopback port (a free one by default) and returns its URL. */
function listen(server: Server | HttpServer, port = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      const a = server.address()
      if (typeof a !== 'object' || a === null) return reject(new Error('no address'))
      resolve(`http://127.0.0.1:${a.port}`)
    })
  })
}

function closeServer(server: Server | HttpServer, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy()
  return new Promise((resolve) => server.close(() => resolve()))
}

/** BlackHole accepts connections, reads what comes and never answers. */
export class BlackHole {
  private readonly sockets = new Set<Socket>()
  private readonly server: Server
  /** url is the black hole's base URL, once started. */
  url = ''
  /** accepted counts the connections accepted. */
  accepted = 0

  private constructor() {
    this.server = createServer((socket) => {
      this.accepted++
      this.sockets.add(socket)
      socket.on('data', () => {})
      socket.on('error', () => {})
      socket.on('close', () => this.sockets.delete(socket))
    })
  }

  static async start(): Promise<BlackHole> {
    const self = new BlackHole()
    self.url = await listen(self.server)
    return self
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets)
  }
}

/** ProxyOptions say which responses the proxy holds back. */
export interface ProxyOptions {
  /** holdFirstMs: the first connection's response bytes wait this long. */
  readonly holdFirstMs?: number
  /** delayMs: every response chunk waits this long (a slow node). */
  readonly delayMs?: number
  /** port to listen on; a free one by default. */
  readonly port?: number
}

/** HoldingProxy forwards each connection to an upstream host:port. Requests go through at
 * once; responses can be held back. */
export class HoldingProxy {
  private readonly sockets = new Set<Socket>()
  private readonly server: Server
  /** url is the proxy's base URL, once started. */
  url = ''
  /** connections counts the connections accepted. */
  connections = 0
  /** firstStatus is the HTTP status of the first connection's first response, once the
   * upstream sent it (whether or not it reached the client). */
  firstStatus: number | undefined

  private constructor(upstream: URL, opts: ProxyOptions) {
    this.server = createServer((client) => {
      const n = this.connections++
      const up = createConnection({ host: upstream.hostname, port: Number(upstream.port) })
      for (const s of [client, up]) {
        this.sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => this.sockets.delete(s))
      }
      // A client that gives up only half-closes the upstream: the member still answers, so
      // firstStatus says what the held-back attempt did.
      client.on('close', () => up.end())
      up.on('close', () => client.destroy())
      client.on('data', (d) => up.write(d))
      const wait = (n === 0 ? (opts.holdFirstMs ?? 0) : 0) + (opts.delayMs ?? 0)
      let seen = false
      up.on('data', (d: Buffer) => {
        if (n === 0 && !seen) {
          seen = true
          const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))
          if (m) this.firstStatus = Number(m[1])
        }
        if (wait === 0) client.write(d)
        else setTimeout(() => client.writable && client.write(d), wait)
      })
    })
  }

  static async start(upstream: string, opts: ProxyOptions = {}): Promise<HoldingProxy> {
    const self = new HoldingProxy(new URL(upstream), opts)
    self.url = await listen(self.server, opts.port)
    return self
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets)
  }
}

/** SeenRequest is one request a CapturingProxy or a StubNode received. */
export interface SeenRequest {
  readonly method: string
  /** path is the request's path and query, as sent. */
  readonly path: string
  readonly headers: IncomingMessage['headers']
}

/** tracked counts and keeps the connections of server, for close. */
function tracked(
  server: Server | HttpServer,
  sockets: Set<Socket>,
  onConnection: () => void,
): void {
  server.on('connection', (socket: Socket) => {
    onConnection()
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
}

/** CapturingOptions change what a CapturingProxy forwards. */
export interface CapturingOptions {
  /** rewrite: in the JSON bodies returned, each quoted upstream URL (a key) is replaced by its
   * value. In front of the admin, the lists of GET /caches and GET /dbs then name other
   * proxies, and a client reaches every node through one. */
  readonly rewrite?: ReadonlyMap<string, string>
  /** prefix ("/oncekv/db/1"): only paths under it are forwarded, without it and otherwise
   * as sent (a reverse proxy that maps a path of one origin to a node); others get 404. */
  readonly prefix?: string
}

/** CapturingProxy is an HTTP reverse proxy in front of one node that records every request
 * before forwarding it. */
export class CapturingProxy {
  private readonly sockets = new Set<Socket>()
  private readonly server: HttpServer
  /** url is the proxy's base URL, once started. */
  url = ''
  /** connections counts the TCP connections accepted. */
  connections = 0
  /** seen lists the requests forwarded, in the order they arrived. */
  readonly seen: SeenRequest[] = []

  private constructor(upstream: URL, opts: CapturingOptions) {
    const rewrite = opts.rewrite ?? new Map<string, string>()
    const prefix = opts.prefix ?? ''
    this.server = createHttpServer((req, res) => {
      this.seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers })
      const path = req.url ?? '/'
      if (!path.startsWith(`${prefix}/`)) {
        res.writeHead(404).end()
        return
      }
      const up = httpRequest(
        {
          host: upstream.hostname,
          port: Number(upstream.port),
          method: req.method,
          path: path.slice(prefix.length),
          headers: req.headers,
        },
        (upRes) => {
          const json = /json/.test(String(upRes.headers['content-type']))
          if (rewrite.size === 0 || !json) {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers)
            upRes.pipe(res)
            return
          }
          const chunks: Buffer[] = []
          upRes.on('data', (d: Buffer) => chunks.push(d))
          upRes.on('end', () => {
            let text = Buffer.concat(chunks).toString('utf8')
            for (const [from, to] of rewrite)
              text = text.split(JSON.stringify(from)).join(JSON.stringify(to))
            const headers = { ...upRes.headers, 'content-length': String(Buffer.byteLength(text)) }
            res.writeHead(upRes.statusCode ?? 502, headers)
            res.end(text)
          })
        },
      )
      up.on('error', () => res.destroy())
      req.pipe(up)
    })
    tracked(this.server, this.sockets, () => this.connections++)
  }

  static async start(upstream: string, opts: CapturingOptions = {}): Promise<CapturingProxy> {
    const self = new CapturingProxy(new URL(upstream), opts)
    self.url = await listen(self.server)
    return self
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets)
  }
}

/** StubAnswer is what a StubNode answers: a status and a JSON body. */
export interface StubAnswer {
  readonly status: number
  readonly body: unknown
}

/** StubNode answers every request with what answer returns for it, and records it. */
export class StubNode {
  private readonly sockets = new Set<Socket>()
  private readonly server: HttpServer
  /** url is the node's base URL, once started. */
  url = ''
  /** seen lists the requests received. */
  readonly seen: SeenRequest[] = []

  private constructor(answer: (req: SeenRequest) => StubAnswer) {
    this.server = createHttpServer((req, res) => {
      const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers }
      this.seen.push(seen)
      req.resume()
      req.on('end', () => {
        const { status, body } = answer(seen)
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      })
    })
    tracked(this.server, this.sockets, () => {})
  }

  static async start(answer: (req: SeenRequest) => StubAnswer): Promise<StubNode> {
    const self = new StubNode(answer)
    self.url = await listen(self.server)
    return self
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets)
  }
}

/** closedPortUrl is the URL of a loopback port nothing listens on (connections are refused). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer()
  const url = await listen(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return url
}
