// SnapshotReceiver runs the receiving side of one snapshot connection, once its hello has been
// accepted: the meta frame starts the host's onSnapshot with an IncomingSnapshotStream, chunk
// frames feed the stream, the end frame closes it, and the host's verdict goes back to the
// sender as an ack or an error frame. Reading the socket and decoding frames are
// tcp-transport.ts's business; buffering for the consumer is incoming-snapshot.ts's.
import type { Socket } from 'node:net'
import type { NodeId } from '../raft/index.ts'
import { encodeSnapshotReply, FrameError, type SnapshotFrame } from './codec.ts'
import { IncomingSnapshotStream, SnapshotTransferError } from './incoming-snapshot.ts'
import type { IncomingSnapshot, TransportStats } from './transport.ts'

/** ReceiverContext is what a SnapshotReceiver needs from its transport. */
export interface ReceiverContext {
  /** inactivityMs fails the transfer when the sender is silent this long while we wait on it. */
  readonly inactivityMs: number
  /** bufferBytesMax bounds chunk bytes buffered for the consumer before pausing the socket. */
  readonly bufferBytesMax: number
  readonly stats: TransportStats
  /** onSnapshot is the host's handler. */
  onSnapshot(snapshot: IncomingSnapshot): Promise<void>
  /** done reports the outcome: error is undefined on success. */
  done(from: NodeId, index: number, error: string | undefined): void
}

/** SnapshotReceiver handles the frames of one incoming snapshot connection. */
export class SnapshotReceiver {
  private stream: IncomingSnapshotStream | undefined
  private ended = false

  constructor(
    private readonly from: NodeId,
    private readonly socket: Socket,
    private readonly ctx: ReceiverContext,
  ) {
    socket.setTimeout(ctx.inactivityMs)
    socket.on('timeout', () => {
      this.stream?.fail(new SnapshotTransferError(`no traffic for ${ctx.inactivityMs} ms`))
      socket.destroy()
    })
  }

  /** onFrame handles one decoded frame; it throws a FrameError for one out of place. */
  onFrame(frame: SnapshotFrame): void {
    if (this.ended) throw new FrameError('snapshot frame after the end')
    switch (frame.kind) {
      case 'meta': {
        if (this.stream !== undefined) throw new FrameError('second snapshot meta frame')
        const stream = new IncomingSnapshotStream(
          this.from,
          frame.meta,
          frame.extra,
          {
            // While paused, the wait is on our consumer, not on the sender: no timeout.
            pause: () => {
              this.socket.pause()
              this.socket.setTimeout(0)
            },
            resume: () => {
              this.socket.resume()
              if (!this.ended) this.socket.setTimeout(this.ctx.inactivityMs)
            },
          },
          this.ctx.bufferBytesMax,
        )
        this.stream = stream
        this.runHandler(stream).then(
          () => this.reply(stream, stream.isComplete ? undefined : 'snapshot not read to its end'),
          (err: unknown) => this.reply(stream, err instanceof Error ? err.message : String(err)),
        )
        return
      }
      case 'chunk':
        if (this.stream === undefined) throw new FrameError('snapshot chunk before meta')
        this.stream.pushChunk(frame.pairs)
        return
      case 'end': {
        if (this.stream === undefined) throw new FrameError('snapshot end before meta')
        this.ended = true
        // The sender now waits for our verdict, which waits on our consumer: no timeout.
        this.socket.setTimeout(0)
        const mismatch = this.stream.end(frame.pairCount)
        if (mismatch !== undefined) throw new FrameError(mismatch)
        return
      }
    }
  }

  /** failed breaks the stream after a bad frame. */
  failed(err: Error): void {
    this.stream?.fail(new SnapshotTransferError(`bad snapshot frame: ${err.message}`))
  }

  /** connectionClosed breaks the stream if the connection went before the end. */
  connectionClosed(): void {
    this.stream?.fail(new SnapshotTransferError('connection closed before the snapshot ended'))
  }

  /** runHandler calls the host's onSnapshot, turning a synchronous throw into a rejection. */
  private runHandler(stream: IncomingSnapshotStream): Promise<void> {
    try {
      return this.ctx.onSnapshot(stream)
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
  }

  private reply(stream: IncomingSnapshotStream, error: string | undefined): void {
    this.ctx.done(this.from, stream.meta.index, error)
    if (this.socket.destroyed) return
    const frame = encodeSnapshotReply(
      error === undefined ? { kind: 'ack' } : { kind: 'error', message: error },
    )
    this.ctx.stats.bytesSent += frame.byteLength
    // Let the socket flow again (the consumer may have left it paused), send the verdict and
    // finish; the sender closes its end once it has read it.
    this.socket.resume()
    this.socket.end(frame)
  }
}
