// Loopback TCP stand-ins for the client tests: a node that accepts connections and never
// answers, and a proxy in front of a member that can hold back responses (all of them for a
// while, or only the first connection's) so an attempt times out after the member acted.
import { createConnection, createServer, type Server, type Socket } from 'node:net'

/** listen starts server on a loopback port (a free one by default) and returns its URL. */
function listen(server: Server, port = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      const a = server.address()
      if (typeof a !== 'object' || a === null) return reject(new Error('no address'))
      resolve(`http://127.0.0.1:${a.port}`)
    })
  })
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
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

/** closedPortUrl is the URL of a loopback port nothing listens on (connections are refused). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer()
  const url = await listen(server)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return url
}
