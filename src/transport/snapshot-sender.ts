// sendSnapshotStream is the sending end of one snapshot transfer: it dials a connection of its
// own (purpose 'snapshot'), writes the hello, the meta and extra, the chunks the source yields
// (waiting for 'drain' whenever the socket's buffer is full, so at most about one chunk sits
// in user space), and the end frame; then it waits for the receiver's verdict. Any socket
// error, an inactivity timeout, a source failure or the receiver's error rejects. The source
// is always closed. Choosing when to send a snapshot is the replica's business.
import net from 'node:net'
import type { Socket } from 'node:net'
import {
  decodeSnapshotReply,
  encodeSnapshotFrame,
  FrameError,
  FrameReader,
  type SnapshotReply,
} from './codec.ts'
import { parseHostPort } from './host-port.ts'
import { SnapshotTransferError } from './incoming-snapshot.ts'
import type { SnapshotSource, TransportStats } from './transport.ts'

/** SnapshotSendParams are what one transfer needs from its transport. */
export interface SnapshotSendParams {
  readonly address: string
  readonly helloFrame: Uint8Array
  readonly source: SnapshotSource
  readonly chunkBytes: number
  readonly maxFrameBytes: number
  readonly dialTimeoutMs: number
  /** inactivityMs fails the transfer when the socket sees no traffic for this long. */
  readonly inactivityMs: number
  readonly stats: TransportStats
  /** track registers the socket so that closing the transport destroys it and waits. */
  track(socket: Socket): void
}

/**
 * sendSnapshotStream streams params.source to the peer at params.address. It resolves when
 * the receiver acknowledged the whole snapshot and rejects on any failure; it always calls
 * params.source.close().
 */
export async function sendSnapshotStream(params: SnapshotSendParams): Promise<void> {
  try {
    await stream(params)
  } finally {
    params.source.close()
  }
}

async function stream(params: SnapshotSendParams): Promise<void> {
  const { host, port } = parseHostPort(params.address)
  const socket = net.connect({ host, port })
  params.track(socket)
  socket.setNoDelay(true)

  // failed rejects on the first failure of the connection; every wait below races it.
  let failure: Error | undefined
  let rejectFailed: (err: Error) => void = () => {}
  const failed = new Promise<never>((_, reject) => {
    rejectFailed = reject
  })
  failed.catch(() => {}) // Observed through the races below; never an unhandled rejection.
  const failWith = (err: Error): void => {
    if (failure !== undefined) return
    failure = err
    rejectFailed(err)
    socket.destroy()
  }

  // acked resolves on the receiver's ack; its error reply goes to failWith, even mid-stream.
  let resolveAcked: () => void = () => {}
  const acked = new Promise<void>((resolve) => {
    resolveAcked = resolve
  })
  const reader = new FrameReader(params.maxFrameBytes)
  socket.on('data', (chunk: Buffer) => {
    params.stats.bytesReceived += chunk.byteLength
    try {
      reader.push(chunk)
      const payload = reader.next()
      if (payload !== undefined) onReply(decodeSnapshotReply(payload))
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      params.stats.badFrames++
      failWith(new SnapshotTransferError(`bad reply from the receiver: ${err.message}`))
    }
  })
  const onReply = (verdict: SnapshotReply): void => {
    if (verdict.kind === 'ack') resolveAcked()
    else failWith(new SnapshotTransferError(`receiver failed the snapshot: ${verdict.message}`))
  }
  socket.on('error', (err) => failWith(new SnapshotTransferError(err.message)))
  socket.on('close', () => failWith(new SnapshotTransferError('connection closed')))
  socket.on('timeout', () =>
    failWith(new SnapshotTransferError(`no traffic for ${params.inactivityMs} ms`)),
  )

  const dialTimer = setTimeout(
    () => failWith(new SnapshotTransferError(`dial timed out after ${params.dialTimeoutMs} ms`)),
    params.dialTimeoutMs,
  )
  try {
    await Promise.race([new Promise<void>((resolve) => socket.once('connect', resolve)), failed])
  } finally {
    clearTimeout(dialTimer)
  }
  socket.setTimeout(params.inactivityMs)

  const write = async (frame: Uint8Array): Promise<void> => {
    if (failure !== undefined) throw failure
    params.stats.bytesSent += frame.byteLength
    if (socket.write(frame)) return
    await Promise.race([new Promise<void>((resolve) => socket.once('drain', resolve)), failed])
  }

  try {
    const { source } = params
    await write(params.helloFrame)
    await write(
      encodeSnapshotFrame(
        { kind: 'meta', meta: source.meta, extra: source.extra },
        params.maxFrameBytes,
      ),
    )
    let pairCount = 0
    const chunks = source.chunks(params.chunkBytes)[Symbol.asyncIterator]()
    try {
      while (true) {
        const next = chunks.next()
        next.catch(() => {}) // Raced with failed: a late rejection is not unhandled.
        const item = await Promise.race([next, failed])
        if (item.done === true) break
        pairCount += item.value.length
        await write(encodeSnapshotFrame({ kind: 'chunk', pairs: item.value }, params.maxFrameBytes))
      }
    } catch (err) {
      // Let the source clean up; do not wait for it, it may be stuck in the pending next().
      chunks.return?.().catch(() => {})
      throw err
    }
    await write(encodeSnapshotFrame({ kind: 'end', pairCount }, params.maxFrameBytes))
    await Promise.race([acked, failed])
    params.stats.snapshotsSent++
  } catch (err) {
    if (failure === undefined) failWith(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    // Success or not, this connection is done: after the verdict nothing is left to say.
    socket.destroy()
  }
}
