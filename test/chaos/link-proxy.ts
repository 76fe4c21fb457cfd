// The chaos network: a TCP proxy in front of each database member's peer port. A member
// advertises the proxy's address (oncekv db --advertise-raft), so every connection another
// member opens to it passes here. The connection's first frame, the transport's hello, names
// the caller, so the proxy knows each connection's link (caller -> member) and can cut it,
// one way or both, or delay it. Loopback only; nothing here is a simulation: the members'
// real transports see real resets and real latency.
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { decodeHello } from '../../src/transport/index.ts'

const HEADER_BYTES = 4
/** A hello is tiny; a first frame larger than this is not one. */
const HELLO_BYTES_MAX = 4096

/** LinkRule is what happens on one direction of the network between two members. */
export interface LinkRule {
  /** cut: connections are reset and new ones closed at once. */
  readonly cut?: boolean
  /** delayMs: every chunk waits this long, in order. */
  readonly delayMs?: number
}

/** Network holds the rules of every link and the proxies that apply them. */
export class Network {
  private readonly rules = new Map<string, LinkRule>()
  private readonly proxies = new Map<string, LinkProxy>()

  /** proxy starts the proxy in front of member `to`, listening on listenPort and forwarding
   * to its real peer port. */
  async proxy(to: string, listenPort: number, upstreamPort: number): Promise<LinkProxy> {
    const p = new LinkProxy(this, to, upstreamPort)
    await p.listen(listenPort)
    this.proxies.set(to, p)
    return p
  }

  rule(from: string, to: string): LinkRule {
    return this.rules.get(`${from}>${to}`) ?? {}
  }

  /** set changes the rule of the link from -> to and applies it to open connections. */
  set(from: string, to: string, rule: LinkRule): void {
    if (from === to) return
    if (!rule.cut && !rule.delayMs) this.rules.delete(`${from}>${to}`)
    else this.rules.set(`${from}>${to}`, rule)
    if (rule.cut) this.proxies.get(to)?.cutFrom(from)
  }

  /** partition cuts every link between the groups, both ways; a member in neither group (a
   * bridge) keeps its links to both. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.set(x, y, { ...this.rule(x, y), cut: true })
        this.set(y, x, { ...this.rule(y, x), cut: true })
      }
    }
  }

  /** heal removes every rule. */
  heal(): void {
    this.rules.clear()
  }

  /** describe lists the links that are cut or slow, for logs. */
  describe(): string {
    const parts = [...this.rules.entries()].map(([link, r]) =>
      r.cut ? `${link} cut` : `${link} +${r.delayMs} ms`,
    )
    return parts.length ? parts.join(', ') : 'healed'
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()))
    this.proxies.clear()
  }
}

/** LinkProxy forwards connections to one member's peer port, under the network's rules. */
export class LinkProxy {
  private readonly server: Server
  private readonly byCaller = new Map<string, Set<Socket>>()
  private readonly sockets = new Set<Socket>()
  /** connections counts the connections accepted; refused, those closed by a cut. */
  connections = 0
  refused = 0

  constructor(
    private readonly net: Network,
    readonly to: string,
    private readonly upstreamPort: number,
  ) {
    this.server = createServer((client) => this.accept(client))
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, '127.0.0.1', () => resolve())
    })
  }

  /** cutFrom resets every open connection from caller. */
  cutFrom(caller: string): void {
    for (const s of this.byCaller.get(caller) ?? []) s.destroy()
  }

  private track(s: Socket): void {
    this.sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => this.sockets.delete(s))
  }

  private accept(client: Socket): void {
    this.connections++
    this.track(client)
    let head = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d])
      if (head.length < HEADER_BYTES) return
      const len = head.readUInt32BE(0)
      if (len > HELLO_BYTES_MAX) return void client.destroy()
      if (head.length < HEADER_BYTES + len) return
      client.off('data', onData)
      let caller: string
      try {
        caller = decodeHello(head.subarray(HEADER_BYTES, HEADER_BYTES + len)).id
      } catch {
        return void client.destroy()
      }
      this.connect(client, caller, head)
    }
    client.on('data', onData)
  }

  private connect(client: Socket, caller: string, first: Buffer): void {
    if (this.net.rule(caller, this.to).cut) {
      this.refused++
      return void client.destroy()
    }
    const up = createConnection({ host: '127.0.0.1', port: this.upstreamPort })
    this.track(up)
    let set = this.byCaller.get(caller)
    if (!set) this.byCaller.set(caller, (set = new Set()))
    set.add(client)
    client.on('close', () => {
      set.delete(client)
      up.destroy()
    })
    up.on('close', () => client.destroy())
    this.pipe(client, up, caller, first)
    this.pipe(up, client, caller)
  }

  /** pipe copies src to dst. On a slow link each chunk arrives the link's delay after it was
   * sent, in order: latency, not a throughput limit (chunks are not delayed one after another). */
  private pipe(src: Socket, dst: Socket, caller: string, first?: Buffer): void {
    const queue: { due: number; data: Buffer }[] = []
    let timer: NodeJS.Timeout | undefined
    const flush = (): void => {
      timer = undefined
      const now = performance.now()
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { data } = queue.shift()!
        if (!dst.destroyed) dst.write(data)
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0]!.due - now)
    }
    const send = (d: Buffer): void => {
      const delayMs = this.net.rule(caller, this.to).delayMs ?? 0
      // Straight through when the link is fast and nothing delayed is still queued.
      if (delayMs === 0 && queue.length === 0) return void dst.write(d)
      const due = Math.max(performance.now() + delayMs, queue.at(-1)?.due ?? 0)
      queue.push({ due, data: d })
      timer ??= setTimeout(flush, due - performance.now())
    }
    if (first) send(first)
    src.on('data', send)
    src.on('close', () => clearTimeout(timer))
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}
