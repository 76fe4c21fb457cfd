// TcpTransport is the Transport over TCP (node:net, or node:tls when the member serves TLS):
// each member dials one persistent connection to each peer for the Raft messages it sends
// (peer-link.ts), accepts the peers' connections for the messages it receives, and opens one
// connection per snapshot transfer (snapshot-sender.ts, incoming-snapshot.ts). A message to a
// node with no known address goes back over that node's own connection to us, if it has one
// open: a member that lagged while a new member joined and took the lead answers that leader
// so before it learns its address. Every connection starts with the handshake (handshake.ts:
// a hello, and with a cluster secret a challenge and a proof that both ends hold it). Until
// its handshake is accepted a connection is held on a short leash: frames of at most
// HANDSHAKE_FRAME_BYTES_MAX, helloTimeoutMs to finish (TLS included), and at most
// handshakesPendingMax such connections at once (handshakesPendingPerHostMax from one remote
// host); then every frame is validated by codec.ts, and a peer that sends anything invalid is
// cut off, logged and counted, never able to crash the process. What messages mean, and when
// to send snapshots, is the replica's business.
import net from 'node:net'
import type { Server, Socket } from 'node:net'
import tls from 'node:tls'
import type { Message, NodeId } from '../raft/index.ts'
import { serverTlsOptions, serving, type Secret, type TlsConfig } from '../security/index.ts'
import {
  decodeMessages,
  decodeSnapshotFrame,
  encodeMessages,
  FRAME_BYTES_MAX_DEFAULT,
  FrameError,
  FrameReader,
  HANDSHAKE_FRAME_BYTES_MAX,
  ID_LENGTH_MAX,
} from './codec.ts'
import { ServerHandshake, type HandshakeParams } from './handshake.ts'
import { formatHostPort, parseHostPort } from './host-port.ts'
import { SnapshotTransferError } from './incoming-snapshot.ts'
import { PeerLink, type LinkContext, type TransportLogger } from './peer-link.ts'
import { SnapshotReceiver, type ReceiverContext } from './snapshot-receiver.ts'
import { sendSnapshotStream } from './snapshot-sender.ts'
import type { SnapshotSource, Transport, TransportHandlers, TransportStats } from './transport.ts'

/** TcpTransportOptions configure a TcpTransport; every bound has a stated default. */
export interface TcpTransportOptions {
  /** id is this member's node id; it goes in every hello. */
  readonly id: NodeId
  /** clusterName must match the peers'; a hello with another name is refused. */
  readonly clusterName: string
  /** listen is the "host:port" to accept peers on; port 0 picks a free port. */
  readonly listen: string
  /** maxFrameBytes bounds a frame's payload, both ways (default 64 MiB). */
  readonly maxFrameBytes?: number
  /** queueMessagesMax bounds the messages waiting per peer (default 8192). */
  readonly queueMessagesMax?: number
  /** dialTimeoutMs bounds a connection attempt (default 3000). */
  readonly dialTimeoutMs?: number
  /** backoffMinMs is the first wait before redialling a peer (default 50). */
  readonly backoffMinMs?: number
  /** backoffMaxMs caps the doubling wait between dials (default 2000). */
  readonly backoffMaxMs?: number
  /** helloTimeoutMs is how long an accepted connection may take to finish its handshake, TLS
   * included (default 5000). */
  readonly helloTimeoutMs?: number
  /** handshakesPendingMax bounds the accepted connections still in their handshake; more are
   * closed at once (default 64). */
  readonly handshakesPendingMax?: number
  /** handshakesPendingPerHostMax bounds those from one remote host, so that one host cannot
   * take every slot (default 16). */
  readonly handshakesPendingPerHostMax?: number
  /** clusterSecret, when set, must be proven by every peer, and is proven to them. */
  readonly clusterSecret?: Secret
  /** tls, when it serves (certificate and key), makes every connection TLS, both ways; with
   * peerMtls peers must show a certificate signed by its CA. */
  readonly tls?: TlsConfig
  /** batchBytesMax is the estimated size at which a batch of messages is cut into another
   * frame (default 4 MiB, at most half of maxFrameBytes). */
  readonly batchBytesMax?: number
  /** snapshotChunkBytes is the chunk size asked of a SnapshotSource (default 512 KiB). */
  readonly snapshotChunkBytes?: number
  /** snapshotTimeoutMs fails a snapshot transfer with no traffic for so long (default 30 s). */
  readonly snapshotTimeoutMs?: number
  /** snapshotBufferBytesMax bounds the received chunk bytes buffered for a slow consumer
   * before the connection is paused (default 4 MiB). */
  readonly snapshotBufferBytesMax?: number
  /** logger receives notable events (connections, bad frames, snapshot outcomes). */
  readonly logger?: TransportLogger
}

/** INBOUND_CONNECTIONS_MAX bounds the connections the server accepts at once. */
export const INBOUND_CONNECTIONS_MAX = 1024

/** HANDSHAKES_PENDING_MAX_DEFAULT bounds the connections in their handshake at once. */
export const HANDSHAKES_PENDING_MAX_DEFAULT = 64

/** HANDSHAKES_PENDING_PER_HOST_MAX_DEFAULT bounds those from one remote host. */
export const HANDSHAKES_PENDING_PER_HOST_MAX_DEFAULT = 16

/** REPLY_BUFFER_BYTES_MAX bounds what may wait in an inbound connection's write buffer: a
 * reply beyond it (a peer that does not read) is dropped. */
const REPLY_BUFFER_BYTES_MAX = 1024 * 1024

/**
 * TcpTransport implements Transport over TCP. Call start() to accept peers; send() and
 * sendSnapshot() work before it. After close(), sends are dropped and snapshots rejected.
 */
export class TcpTransport implements Transport {
  private readonly id: NodeId
  private readonly clusterName: string
  private readonly log: TransportLogger
  private readonly maxFrameBytes: number
  private readonly helloTimeoutMs: number
  private readonly handshakesPendingMax: number
  private readonly handshakesPendingPerHostMax: number
  private readonly handshake: HandshakeParams
  private readonly dialTimeoutMs: number
  private readonly snapshotChunkBytes: number
  private readonly snapshotTimeoutMs: number
  private readonly linkContext: LinkContext
  private readonly receiverContext: ReceiverContext
  private readonly counters: TransportStats = {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    bytesSent: 0,
    bytesReceived: 0,
    badFrames: 0,
    connects: 0,
    snapshotsSent: 0,
    snapshotsReceived: 0,
  }
  private readonly server: Server
  // The accepted connections whose handshake is not accepted yet, by remote address and port
  // (a TLS connection's TCP socket and its TLS socket share them).
  private readonly pending = new Map<
    string,
    { socket: Socket; host: string; timer: NodeJS.Timeout }
  >()
  // How many of the pending connections each remote host has.
  private readonly pendingPerHost = new Map<string, number>()
  private handlers: TransportHandlers | undefined
  private listening: { host: string; port: number } | undefined
  private peers: ReadonlyMap<NodeId, string> = new Map()
  // Invariant: every link's peer and address are in peers (setPeers closes the others).
  private readonly links = new Map<NodeId, PeerLink>()
  // Every socket not yet closed, inbound and outbound; close() waits for all of them.
  private readonly sockets = new Set<Socket>()
  // The latest inbound raft connection of each peer that said hello, for messages to peers
  // with no address (see send).
  private readonly inbound = new Map<NodeId, Socket>()
  private closed = false

  constructor(private readonly options: TcpTransportOptions) {
    this.id = options.id
    this.clusterName = options.clusterName
    this.log = options.logger ?? (() => {})
    this.maxFrameBytes = options.maxFrameBytes ?? FRAME_BYTES_MAX_DEFAULT
    this.helloTimeoutMs = options.helloTimeoutMs ?? 5000
    this.handshakesPendingMax = options.handshakesPendingMax ?? HANDSHAKES_PENDING_MAX_DEFAULT
    this.handshakesPendingPerHostMax =
      options.handshakesPendingPerHostMax ?? HANDSHAKES_PENDING_PER_HOST_MAX_DEFAULT
    this.handshake = {
      clusterName: options.clusterName,
      id: options.id,
      ...(options.clusterSecret ? { secret: options.clusterSecret } : {}),
    }
    this.dialTimeoutMs = options.dialTimeoutMs ?? 3000
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? 512 * 1024
    this.snapshotTimeoutMs = options.snapshotTimeoutMs ?? 30_000
    // Fail fast on configuration the peers' decoders would refuse.
    parseHostPort(options.listen)
    if (options.id === '' || options.id.length > ID_LENGTH_MAX) {
      throw new RangeError(`node id must have 1 to ${ID_LENGTH_MAX} characters`)
    }
    if (options.clusterName.length > ID_LENGTH_MAX) {
      throw new RangeError(`cluster name must have at most ${ID_LENGTH_MAX} characters`)
    }
    if (
      !Number.isSafeInteger(this.maxFrameBytes) ||
      this.maxFrameBytes < 1024 ||
      this.maxFrameBytes > 0xffff_ffff
    ) {
      throw new RangeError('maxFrameBytes must be an integer from 1 KiB to 4 GiB - 1')
    }
    this.linkContext = {
      handshake: this.handshake,
      tls: options.tls,
      maxFrameBytes: this.maxFrameBytes,
      queueMessagesMax: options.queueMessagesMax ?? 8192,
      batchBytesMax: Math.min(options.batchBytesMax ?? 4 * 1024 * 1024, this.maxFrameBytes / 2),
      dialTimeoutMs: this.dialTimeoutMs,
      backoffMinMs: options.backoffMinMs ?? 50,
      backoffMaxMs: options.backoffMaxMs ?? 2000,
      stats: this.counters,
      log: this.log,
      track: (socket) => this.track(socket),
      deliver: (from, msgs) => this.deliver(from, msgs),
    }
    this.receiverContext = {
      inactivityMs: this.snapshotTimeoutMs,
      bufferBytesMax: options.snapshotBufferBytesMax ?? 4 * 1024 * 1024,
      stats: this.counters,
      onSnapshot: (snapshot) => {
        if (this.handlers === undefined) return Promise.reject(new Error('transport not started'))
        return this.handlers.onSnapshot(snapshot)
      },
      done: (from, index, error) => {
        if (error === undefined) {
          this.counters.snapshotsReceived++
          this.log('snapshot_received', { peer: from, index })
        } else {
          this.log('snapshot_receive_failed', { peer: from, index, error })
        }
      },
    }
    const config = options.tls
    if (serving(config)) {
      const server = tls.createServer({
        ...serverTlsOptions(config, true),
        // The connection's own deadline (admit) covers TLS and the hello; this is a backstop.
        handshakeTimeout: this.helloTimeoutMs + 1000,
      })
      server.on('secureConnection', (socket) => this.secured(socket))
      server.on('tlsClientError', (err, socket) => {
        this.counters.badFrames++
        this.logRefused(socket, `TLS: ${err.message.split('\n')[0] ?? ''}`)
      })
      this.server = server
    } else {
      this.server = net.createServer()
    }
    this.server.on('connection', (socket: Socket) => this.admit(socket, !serving(config)))
    this.server.maxConnections = INBOUND_CONNECTIONS_MAX
    this.server.on('error', (err) => this.log('server_error', { error: err.message }))
  }

  /** start listens on options.listen and delivers to handlers from then on. */
  async start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) throw new Error('transport is closed')
    if (this.handlers !== undefined) throw new Error('transport already started')
    this.handlers = handlers
    const { host, port } = parseHostPort(this.options.listen)
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    const address = this.server.address()
    if (address === null || typeof address === 'string') throw new Error('no TCP address')
    this.listening = { host: address.address, port: address.port }
    this.log('listening', { address: this.listenAddress() })
  }

  /** listenAddress is the "host:port" the transport accepts on (the real port after port 0). */
  listenAddress(): string {
    if (this.listening === undefined) throw new Error('transport not started')
    return formatHostPort(this.listening.host, this.listening.port)
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.peers = new Map(peers)
    for (const [id, link] of this.links) {
      if (this.peers.get(id) !== link.address) {
        link.close()
        this.links.delete(id)
      }
    }
  }

  send(msgs: readonly Message[]): void {
    for (const msg of msgs) {
      const link = this.linkTo(msg.to)
      if (link !== undefined) link.enqueue(msg)
      else if (!this.reply(msg)) this.counters.messagesDropped++
    }
  }

  /** reply writes msg on the recipient's own inbound connection, for a recipient that has no
   * address here; false if it has none open (or it is not reading). */
  private reply(msg: Message): boolean {
    const socket = this.closed ? undefined : this.inbound.get(msg.to)
    if (socket === undefined || socket.destroyed || socket.writableLength > REPLY_BUFFER_BYTES_MAX)
      return false
    let frame: Uint8Array
    try {
      frame = encodeMessages([msg], this.maxFrameBytes)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      return false
    }
    socket.write(frame)
    this.counters.messagesSent++
    this.counters.bytesSent += frame.byteLength
    return true
  }

  async sendSnapshot(to: NodeId, source: SnapshotSource): Promise<void> {
    const address = this.peers.get(to)
    if (this.closed || address === undefined) {
      source.close()
      throw new SnapshotTransferError(
        this.closed ? 'transport is closed' : `no address for peer ${to}`,
      )
    }
    try {
      await sendSnapshotStream({
        to,
        address,
        handshake: this.handshake,
        tls: this.options.tls,
        source,
        chunkBytes: this.snapshotChunkBytes,
        maxFrameBytes: this.maxFrameBytes,
        dialTimeoutMs: this.dialTimeoutMs,
        inactivityMs: this.snapshotTimeoutMs,
        stats: this.counters,
        track: (socket) => this.track(socket),
      })
      this.log('snapshot_sent', { peer: to, index: source.meta.index })
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      this.log('snapshot_send_failed', { peer: to, index: source.meta.index, error: message })
      throw err
    }
  }

  unreachable(): readonly NodeId[] {
    const down: NodeId[] = []
    for (const [id, link] of this.links) if (link.isDown()) down.push(id)
    return down
  }

  /** handshakesPending is how many accepted connections are still in their handshake. */
  handshakesPending(): number {
    return this.pending.size
  }

  stats(): TransportStats {
    return { ...this.counters }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const link of this.links.values()) link.close()
    this.links.clear()
    const serverClosed = new Promise<void>((resolve) => {
      // close() errors only when the server never listened: nothing to wait for then.
      this.server.close(() => resolve())
    })
    const socketsClosed = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => resolve())
          socket.destroy()
        }),
    )
    await Promise.all([serverClosed, ...socketsClosed])
  }

  private linkTo(peer: NodeId): PeerLink | undefined {
    if (this.closed) return undefined
    let link = this.links.get(peer)
    if (link === undefined) {
      const address = this.peers.get(peer)
      if (address === undefined) return undefined
      link = new PeerLink(peer, address, this.linkContext)
      this.links.set(peer, link)
    }
    return link
  }

  private track(socket: Socket): void {
    if (this.closed) {
      socket.destroy()
      return
    }
    this.sockets.add(socket)
    // Every socket has an error listener: a peer's failure is never an uncaught exception.
    socket.on('error', () => {})
    socket.once('close', () => this.sockets.delete(socket))
  }

  /** admit takes a new TCP connection: over the cap of connections in their handshake it is
   * closed at once, else it has helloTimeoutMs to finish its handshake. Plain connections are
   * accepted here, TLS ones once TLS is up (secured). */
  private admit(socket: Socket, plain: boolean): void {
    this.track(socket)
    if (this.closed) return
    const key = remoteKey(socket)
    const host = socket.remoteAddress ?? '?'
    const fromHost = this.pendingPerHost.get(host) ?? 0
    let refusal: string | undefined
    if (this.pending.size >= this.handshakesPendingMax || this.pending.has(key)) {
      refusal = `over ${this.handshakesPendingMax} connections in their handshake`
    } else if (fromHost >= this.handshakesPendingPerHostMax) {
      refusal = `over ${this.handshakesPendingPerHostMax} connections in their handshake from one host`
    }
    if (refusal !== undefined) {
      this.counters.badFrames++
      this.logRefused(socket, refusal)
      socket.destroy()
      return
    }
    const timer = setTimeout(() => {
      this.counters.badFrames++
      this.logRefused(socket, `no handshake within ${this.helloTimeoutMs} ms`)
      socket.destroy()
    }, this.helloTimeoutMs)
    this.pending.set(key, { socket, host, timer })
    this.pendingPerHost.set(host, fromHost + 1)
    socket.once('close', () => this.unpend(key, socket))
    if (plain) this.accept(socket)
  }

  /** secured takes a TLS connection whose TLS handshake succeeded. */
  private secured(socket: tls.TLSSocket): void {
    this.track(socket)
    if (this.closed || !this.pending.has(remoteKey(socket))) {
      socket.destroy()
      return
    }
    this.accept(socket)
  }

  /** unpend forgets a connection's handshake: accepted (socket undefined: the key is that of
   * a live connection), or the TCP socket closed (only its own entry). */
  private unpend(key: string, socket?: Socket): void {
    const entry = this.pending.get(key)
    if (entry === undefined || (socket !== undefined && entry.socket !== socket)) return
    clearTimeout(entry.timer)
    this.pending.delete(key)
    const fromHost = (this.pendingPerHost.get(entry.host) ?? 1) - 1
    if (fromHost > 0) this.pendingPerHost.set(entry.host, fromHost)
    else this.pendingPerHost.delete(entry.host)
  }

  /** logRefused logs a connection dropped before its handshake was accepted. */
  private logRefused(socket: Socket, error: string): void {
    this.log('bad_peer', { remote: socket.remoteAddress ?? '?', port: socket.remotePort, error })
  }

  /** accept runs one inbound connection: the handshake first, then frames of its purpose. */
  private accept(socket: Socket): void {
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 10_000)
    const key = remoteKey(socket)
    const reader = new FrameReader(HANDSHAKE_FRAME_BYTES_MAX)
    const handshake = new ServerHandshake(this.handshake, socket)
    let peer: NodeId | undefined
    let receiver: SnapshotReceiver | undefined
    socket.once('close', () => {
      receiver?.connectionClosed()
      if (peer !== undefined && this.inbound.get(peer) === socket) this.inbound.delete(peer)
    })

    socket.on('data', (chunk: Buffer) => {
      this.counters.bytesReceived += chunk.byteLength
      try {
        reader.push(chunk)
        for (let payload = reader.next(); payload !== undefined; payload = reader.next()) {
          if (socket.destroyed) return
          if (peer === undefined) {
            const answer = handshake.onFrame(payload)
            if (answer !== undefined) {
              socket.write(answer)
              this.counters.bytesSent += answer.byteLength
            }
            const hello = handshake.hello
            if (!handshake.accepted || hello === undefined) continue
            peer = hello.id
            this.unpend(key)
            reader.maxFrameBytes = this.maxFrameBytes
            if (hello.purpose === 'snapshot') {
              receiver = new SnapshotReceiver(hello.id, socket, this.receiverContext)
            } else {
              this.inbound.set(hello.id, socket)
            }
          } else if (receiver !== undefined) {
            receiver.onFrame(decodeSnapshotFrame(payload))
          } else {
            this.deliver(peer, decodeMessages(payload))
          }
        }
      } catch (err) {
        if (!(err instanceof FrameError)) throw err
        this.counters.badFrames++
        if (peer === undefined) {
          this.logRefused(socket, err.message)
        } else {
          this.log('bad_peer', { remote: socket.remoteAddress ?? '?', peer, error: err.message })
        }
        receiver?.failed(err)
        socket.destroy()
      }
    })
  }

  /** deliver hands a batch to the host, without the messages not from `from` to us. It takes
   * the batches of inbound connections and the replies peers send back on our links. */
  private deliver(from: NodeId, msgs: readonly Message[]): void {
    let valid = msgs
    if (msgs.some((m) => m.from !== from || m.to !== this.id)) {
      valid = msgs.filter((m) => m.from === from && m.to === this.id)
      this.counters.messagesDropped += msgs.length - valid.length
      this.log('messages_misaddressed', { peer: from, dropped: msgs.length - valid.length })
    }
    this.counters.messagesReceived += valid.length
    // A handler that throws is a bug in the host: it is not caught here.
    if (valid.length > 0 && this.handlers !== undefined) this.handlers.onMessages(from, valid)
  }
}

/** remoteKey names a connection by its remote address and port. */
function remoteKey(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}|${socket.remotePort ?? '?'}`
}
