// PeerLink is the outbound half of the Raft message stream to one peer: one persistent TCP (or
// TLS) connection, dialled on first use, that starts with the handshake (handshake.ts) and then
// carries batches of messages. Messages wait in a bounded queue while the connection is being set up or the
// socket is not writable; when the socket can take more, everything queued goes out in as few
// frames as the batch byte bound allows. A failed dial or a dropped connection puts the link
// in backoff (exponential, with jitter) before it dials again; messages sent meanwhile are
// dropped, as Raft tolerates, and counted. The peer may write back on the connection: a batch
// of messages for us when it has no address of ours (it lags behind our joining), decoded and
// delivered like any other; anything else cuts the connection. Inbound connections and
// snapshots are tcp-transport.ts's business.
import type { Socket } from 'node:net'
import type { Message, NodeId } from '../raft/index.ts'
import type { TlsConfig } from '../security/index.ts'
import {
  decodeMessages,
  encodeMessages,
  FrameError,
  FrameReader,
  HANDSHAKE_FRAME_BYTES_MAX,
  MESSAGES_PER_FRAME_MAX,
  messageBytesEstimate,
} from './codec.ts'
import { dialPeer } from './dial.ts'
import { ClientHandshake, type HandshakeParams } from './handshake.ts'
import { parseHostPort, type HostPort } from './host-port.ts'
import type { TransportStats } from './transport.ts'

/** TransportLogger receives the transport's notable events, with structured fields. */
export type TransportLogger = (event: string, fields: object) => void

/** LinkContext is what a PeerLink shares with its transport. */
export interface LinkContext {
  /** handshake is who we are, and the cluster secret we prove, on every connection. */
  readonly handshake: HandshakeParams
  /** tls is the TLS material; connections use TLS when it serves. */
  readonly tls: TlsConfig | undefined
  readonly maxFrameBytes: number
  /** queueMessagesMax bounds the messages waiting for the socket. */
  readonly queueMessagesMax: number
  /** batchBytesMax is the estimated size at which a batch is cut into another frame. */
  readonly batchBytesMax: number
  readonly dialTimeoutMs: number
  readonly backoffMinMs: number
  readonly backoffMaxMs: number
  readonly stats: TransportStats
  readonly log: TransportLogger
  /** track registers a socket so that closing the transport can wait for it. */
  track(socket: Socket): void
  /** deliver hands the host the messages the peer wrote back on the connection. */
  deliver(from: NodeId, msgs: readonly Message[]): void
}

/** LinkState is where a link is in its life: see PeerLink. */
export type LinkState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed'

/**
 * PeerLink owns the outbound connection to one peer at one address.
 *
 * States: idle (never dialled) -> connecting -> connected; a failed dial or a lost connection
 * goes to backoff, whose timer dials again; closed is final. Messages are queued in connecting
 * and connected, and dropped in backoff and closed.
 */
export class PeerLink {
  private linkState: LinkState = 'idle'
  private socket: Socket | undefined
  // Invariant: queue.length <= ctx.queueMessagesMax.
  private queue: Message[] = []
  private queuedBytes = 0
  // True while the socket's buffer is over its high-water mark: wait for 'drain'.
  private waitingDrain = false
  private flushScheduled: NodeJS.Immediate | undefined
  private timer: NodeJS.Timeout | undefined
  // Consecutive failed dials or lost connections; 0 once a connection is up.
  private failures = 0

  constructor(
    readonly peer: NodeId,
    readonly address: string,
    private readonly ctx: LinkContext,
  ) {}

  /** state is the link's current state. */
  get state(): LinkState {
    return this.linkState
  }

  /** isDown tells whether the last dial failed or the connection was lost, and no new
   * connection is up yet. */
  isDown(): boolean {
    return this.failures > 0 && this.linkState !== 'connected'
  }

  /** enqueue queues msg for the peer, dialling if needed; it never throws. It drops the
   * message (and counts it) when the link is in backoff or closed, or its queue is full. */
  enqueue(msg: Message): void {
    switch (this.linkState) {
      case 'backoff':
      case 'closed':
        this.ctx.stats.messagesDropped++
        return
      case 'idle':
        if (!this.dial()) {
          this.ctx.stats.messagesDropped++
          return
        }
        break
      case 'connecting':
      case 'connected':
        break
    }
    // Drop the newest when full: the queue is bounded, and Raft re-sends what it still needs.
    if (this.queue.length >= this.ctx.queueMessagesMax) {
      this.ctx.stats.messagesDropped++
      return
    }
    this.queue.push(msg)
    this.queuedBytes += messageBytesEstimate(msg)
    this.scheduleFlush()
  }

  /** close ends the link for good: it drops queued messages and destroys the socket. The
   * transport waits for the socket's 'close' through track(). */
  close(): void {
    if (this.linkState === 'closed') return
    this.linkState = 'closed'
    this.dropQueue()
    this.clearTimers()
    this.socket?.destroy()
    this.socket = undefined
  }

  /** dial starts a connection attempt; it returns false (and backs off) if it cannot. */
  private dial(): boolean {
    let target: HostPort
    try {
      target = parseHostPort(this.address)
    } catch (err) {
      this.ctx.log('dial_failed', { peer: this.peer, address: this.address, error: String(err) })
      this.down()
      return false
    }
    this.linkState = 'connecting'
    const { socket, ready } = dialPeer(target, this.ctx.tls)
    this.socket = socket
    this.ctx.track(socket)
    socket.setNoDelay(true)
    // The dial timeout covers the TCP connect, TLS, and the handshake.
    this.timer = setTimeout(() => {
      socket.destroy(new Error(`dial timed out after ${this.ctx.dialTimeoutMs} ms`))
    }, this.ctx.dialTimeoutMs)
    let lastError: Error | undefined
    socket.on('error', (err) => {
      lastError = err
    })
    const handshake = new ClientHandshake(this.ctx.handshake, this.peer, 'raft', socket)
    const reader = new FrameReader(HANDSHAKE_FRAME_BYTES_MAX)
    const established = (): void => {
      this.clearTimers()
      socket.setKeepAlive(true, 10_000)
      this.ctx.log('peer_connected', {
        peer: this.peer,
        address: this.address,
        failedAttempts: this.failures,
      })
      this.linkState = 'connected'
      this.failures = 0
      this.ctx.stats.connects++
      reader.maxFrameBytes = this.ctx.maxFrameBytes
      this.flush()
    }
    socket.on(ready, () => {
      if (this.socket !== socket) return
      const hello = handshake.hello()
      this.waitingDrain = !socket.write(hello)
      this.ctx.stats.bytesSent += hello.byteLength
      if (handshake.done) established()
    })
    socket.on('drain', () => {
      if (this.socket !== socket) return
      this.waitingDrain = false
      this.flush()
    })
    // The receiver writes back its side of the handshake, then only messages for us that it
    // cannot send otherwise. Until the handshake is done, frames are bounded small.
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return
      this.ctx.stats.bytesReceived += chunk.byteLength
      try {
        reader.push(chunk)
        for (let payload = reader.next(); payload !== undefined; payload = reader.next()) {
          if (this.socket !== socket) return
          if (!handshake.done) {
            const proof = handshake.onFrame(payload)
            this.waitingDrain = !socket.write(proof)
            this.ctx.stats.bytesSent += proof.byteLength
            established()
          } else {
            this.ctx.deliver(this.peer, decodeMessages(payload))
          }
        }
      } catch (err) {
        if (!(err instanceof FrameError)) throw err
        this.ctx.stats.badFrames++
        lastError = err
        this.ctx.log('bad_peer', { peer: this.peer, address: this.address, error: err.message })
        socket.destroy()
      }
    })
    socket.on('close', () => {
      if (this.socket !== socket) return
      this.socket = undefined
      const wasConnected = this.linkState === 'connected'
      if (this.failures === 0) {
        this.ctx.log(wasConnected ? 'peer_disconnected' : 'dial_failed', {
          peer: this.peer,
          address: this.address,
          error:
            lastError?.message ??
            (wasConnected ? 'connection closed' : 'connection closed during the handshake'),
        })
      }
      this.down()
    })
    return true
  }

  /** down drops what is queued and waits out a backoff before dialling again. */
  private down(): void {
    if (this.linkState === 'closed') return
    this.clearTimers()
    this.dropQueue()
    this.waitingDrain = false
    this.failures++
    this.linkState = 'backoff'
    const exponent = Math.min(this.failures - 1, 30)
    const ceiling = Math.min(this.ctx.backoffMaxMs, this.ctx.backoffMinMs * 2 ** exponent)
    // Jitter: wait between half and all of the ceiling, so that peers do not dial in step.
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.linkState === 'backoff') this.dial()
    }, delayMs)
  }

  private dropQueue(): void {
    this.ctx.stats.messagesDropped += this.queue.length
    this.queue = []
    this.queuedBytes = 0
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled)
    this.flushScheduled = undefined
  }

  /** scheduleFlush writes at the end of this turn of the event loop, so that the messages of
   * many send() calls share frames. */
  private scheduleFlush(): void {
    if (this.flushScheduled !== undefined || this.linkState !== 'connected') return
    this.flushScheduled = setImmediate(() => {
      this.flushScheduled = undefined
      this.flush()
    })
  }

  /** flush writes queued messages while the socket takes them. */
  private flush(): void {
    const socket = this.socket
    while (
      this.linkState === 'connected' &&
      socket !== undefined &&
      !this.waitingDrain &&
      this.queue.length > 0
    ) {
      const batch = this.takeBatch()
      for (const frame of this.encode(batch)) {
        this.waitingDrain = !socket.write(frame.bytes)
        this.ctx.stats.bytesSent += frame.bytes.byteLength
        this.ctx.stats.messagesSent += frame.count
      }
    }
  }

  /** takeBatch removes the longest prefix of the queue within batchBytesMax and
   * MESSAGES_PER_FRAME_MAX (at least one message). */
  private takeBatch(): Message[] {
    if (this.queuedBytes <= this.ctx.batchBytesMax && this.queue.length <= MESSAGES_PER_FRAME_MAX) {
      const all = this.queue
      this.queue = []
      this.queuedBytes = 0
      return all
    }
    let bytes = 0
    let count = 0
    for (const msg of this.queue) {
      const size = messageBytesEstimate(msg)
      if (count > 0 && bytes + size > this.ctx.batchBytesMax) break
      if (count === MESSAGES_PER_FRAME_MAX) break
      bytes += size
      count++
    }
    this.queuedBytes -= bytes
    return this.queue.splice(0, count)
  }

  /** encode turns a batch into frames: one, unless the batch cannot be encoded whole; then
   * one per message, dropping (and logging) any message that cannot be encoded alone. */
  private encode(batch: readonly Message[]): { bytes: Uint8Array; count: number }[] {
    try {
      return [{ bytes: encodeMessages(batch, this.ctx.maxFrameBytes), count: batch.length }]
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
    }
    const frames: { bytes: Uint8Array; count: number }[] = []
    for (const msg of batch) {
      try {
        frames.push({ bytes: encodeMessages([msg], this.ctx.maxFrameBytes), count: 1 })
      } catch (err) {
        if (!(err instanceof FrameError)) throw err
        this.ctx.stats.messagesDropped++
        this.ctx.log('message_unencodable', { peer: this.peer, type: msg.type, error: err.message })
      }
    }
    return frames
  }
}
