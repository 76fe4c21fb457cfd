// IncomingSnapshotStream is the receiving end of one snapshot transfer, as the host sees it: an
// IncomingSnapshot whose chunks() yields the key/value chunks in the order they arrived. The
// transport pushes decoded chunks in; when the consumer falls behind by more than a bound,
// the stream pauses the connection (TCP flow control then holds the sender back) and resumes
// it once the consumer has caught up. Reading the socket, decoding frames and answering the
// sender are tcp-transport.ts's business.
import type { NodeId, SnapshotMeta } from '../raft/index.ts'
import type { IncomingSnapshot, KvPair } from './transport.ts'

/** SnapshotTransferError reports a snapshot transfer that did not complete. */
export class SnapshotTransferError extends Error {
  override readonly name = 'SnapshotTransferError'
}

/** FlowControl pauses and resumes the connection a stream's chunks come from. */
export interface FlowControl {
  pause(): void
  resume(): void
}

/** SNAPSHOT_BUFFER_BYTES_MAX is the default bound on chunk bytes buffered for the consumer;
 * past it the connection is paused. */
export const SNAPSHOT_BUFFER_BYTES_MAX = 4 * 1024 * 1024

type Waiter = {
  resolve: (r: IteratorResult<readonly KvPair[]>) => void
  reject: (err: Error) => void
}

/**
 * IncomingSnapshotStream buffers a transfer's chunks between the socket and the consumer.
 * Its chunks() may be iterated once.
 */
export class IncomingSnapshotStream implements IncomingSnapshot {
  // Invariant: queuedBytes is the sum of pairBytes over queue.
  private readonly queue: { pairs: readonly KvPair[]; bytes: number }[] = []
  private queuedBytes = 0
  private paused = false
  private ended = false
  private failure: Error | undefined
  private waiter: Waiter | undefined
  private iterating = false
  private abandoned = false
  private consumedAll = false
  private pairsReceived = 0

  constructor(
    readonly from: NodeId,
    readonly meta: SnapshotMeta,
    readonly extra: Uint8Array,
    private readonly flow: FlowControl,
    private readonly bufferBytesMax: number = SNAPSHOT_BUFFER_BYTES_MAX,
  ) {}

  /** isComplete tells whether the consumer iterated the chunks to their end. */
  get isComplete(): boolean {
    return this.consumedAll
  }

  /** isPaused tells whether the stream holds its connection paused. */
  get isPaused(): boolean {
    return this.paused
  }

  /** bufferedBytes is how many chunk bytes wait for the consumer. */
  get bufferedBytes(): number {
    return this.queuedBytes
  }

  /** pushChunk hands a chunk that arrived to the consumer, pausing the connection if the
   * consumer is too far behind. Chunks after the consumer stopped iterating are discarded. */
  pushChunk(pairs: readonly KvPair[]): void {
    if (this.ended || this.failure !== undefined) return
    this.pairsReceived += pairs.length
    if (this.abandoned) return
    if (this.waiter !== undefined) {
      const waiter = this.waiter
      this.waiter = undefined
      waiter.resolve({ value: pairs, done: false })
      return
    }
    let bytes = 0
    for (const p of pairs) bytes += p.key.byteLength + p.value.byteLength
    this.queue.push({ pairs, bytes })
    this.queuedBytes += bytes
    if (!this.paused && this.queuedBytes >= this.bufferBytesMax) {
      this.paused = true
      this.flow.pause()
    }
  }

  /** end marks the end of the stream; pairCount is the sender's count of pairs, which must
   * match what arrived. It returns an error message on a mismatch, undefined otherwise. */
  end(pairCount: number): string | undefined {
    if (this.ended || this.failure !== undefined) return undefined
    if (pairCount !== this.pairsReceived) {
      const message = `snapshot ended after ${this.pairsReceived} pairs, sender counted ${pairCount}`
      this.fail(new SnapshotTransferError(message))
      return message
    }
    this.ended = true
    this.wake()
    return undefined
  }

  /** fail breaks the stream: the consumer's iteration throws err (unless the stream ended). */
  fail(err: Error): void {
    if (this.ended || this.failure !== undefined) return
    this.failure = err
    this.queue.length = 0
    this.queuedBytes = 0
    this.wake()
  }

  chunks(): AsyncIterable<readonly KvPair[]> {
    if (this.iterating) throw new SnapshotTransferError('snapshot chunks can be iterated once')
    this.iterating = true
    const iterator: AsyncIterator<readonly KvPair[]> = {
      next: () => this.next(),
      return: () => {
        this.abandon()
        return Promise.resolve({ value: undefined, done: true })
      },
    }
    return { [Symbol.asyncIterator]: () => iterator }
  }

  private next(): Promise<IteratorResult<readonly KvPair[]>> {
    if (this.abandoned) return Promise.resolve({ value: undefined, done: true })
    const item = this.queue.shift()
    if (item !== undefined) {
      this.queuedBytes -= item.bytes
      // Resume at half the bound, so that the connection does not flap around the bound.
      if (this.paused && this.queuedBytes <= this.bufferBytesMax / 2) {
        this.paused = false
        this.flow.resume()
      }
      return Promise.resolve({ value: item.pairs, done: false })
    }
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.ended) {
      this.consumedAll = true
      return Promise.resolve({ value: undefined, done: true })
    }
    if (this.waiter !== undefined) {
      return Promise.reject(new SnapshotTransferError('concurrent next() on snapshot chunks'))
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject }
    })
  }

  /** abandon is the consumer stopping early: drop the buffer and let the connection run. */
  private abandon(): void {
    this.abandoned = true
    this.queue.length = 0
    this.queuedBytes = 0
    if (this.paused) {
      this.paused = false
      this.flow.resume()
    }
    this.wake()
  }

  /** wake settles a consumer waiting in next() after the end, a failure or abandonment. */
  private wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    if (this.failure !== undefined) {
      waiter.reject(this.failure)
    } else if (this.abandoned) {
      waiter.resolve({ value: undefined, done: true })
    } else if (this.ended) {
      this.consumedAll = true
      waiter.resolve({ value: undefined, done: true })
    }
  }
}
