// sendSnapshotStream is the sending end of one snapshot transfer: it dials a connection of its
// own (purpose 'snapshot'), runs the handshake (handshake.ts), writes the meta and extra, the chunks the source yields
// (waiting for 'drain' whenever the socket's buffer is full, so at most about one chunk sits
// in user space), and the end frame; then it waits for the receiver's verdict. Any socket
// error, an inactivity timeout, a source failure or the receiver's error rejects. The source
// is always closed. Choosing when to send a snapshot is the replica's business.
import type { Socket } from 'node:net'
import type { NodeId } from '../raft/index.ts'
import type { TlsConfig } from '../security/index.ts'
import {
  decodeSnapshotReply,
  encodeSnapshotFrame,
  FrameError,
  FrameReader,
  HANDSHAKE_FRAME_BYTES_MAX,
  type SnapshotReply,
} from './codec.ts'
import { dialPeer } from './dial.ts'
import { ClientHandshake, type HandshakeParams } from './handshake.ts'
import { parseHostPort } from './host-port.ts'
import { SnapshotTransferError } from './incoming-snapshot.ts'
import type { SnapshotSource, TransportStats } from './transport.ts'

/** SnapshotSendParams are what one transfer needs from its transport. */
export interface SnapshotSendParams {
  /** to is the receiving member, at address. */
  readonly to: NodeId
  readonly address: string
  readonly handshake: HandshakeParams
  readonly tls: TlsConfig | undefined
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
  const { socket, ready } = dialPeer(parseHostPort(params.address), params.tls)
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
  // Until the handshake is done, the receiver's frames are bounded small.
  const handshake = new ClientHandshake(params.handshake, params.to, 'snapshot', socket)
  let resolveHandshake: () => void = () => {}
  const handshakeDone = new Promise<void>((resolve) => {
    resolveHandshake = resolve
  })
  const reader = new FrameReader(HANDSHAKE_FRAME_BYTES_MAX)
  socket.on('data', (chunk: Buffer) => {
    params.stats.bytesReceived += chunk.byteLength
    try {
      reader.push(chunk)
      for (let payload = reader.next(); payload !== undefined; payload = reader.next()) {
        if (failure !== undefined) return
        if (!handshake.done) {
          const proof = handshake.onFrame(payload)
          params.stats.bytesSent += proof.byteLength
          socket.write(proof)
          reader.maxFrameBytes = params.maxFrameBytes
          resolveHandshake()
        } else {
          onReply(decodeSnapshotReply(payload))
        }
      }
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
  socket.on('close', () =>
    failWith(
      new SnapshotTransferError(
        handshake.done ? 'connection closed' : 'connection closed during the handshake',
      ),
    ),
  )
  socket.on('timeout', () =>
    failWith(new SnapshotTransferError(`no traffic for ${params.inactivityMs} ms`)),
  )

  const dialTimer = setTimeout(
    () => failWith(new SnapshotTransferError(`dial timed out after ${params.dialTimeoutMs} ms`)),
    params.dialTimeoutMs,
  )
  try {
    await Promise.race([new Promise<void>((resolve) => socket.once(ready, resolve)), failed])
    const hello = handshake.hello()
    params.stats.bytesSent += hello.byteLength
    socket.write(hello)
    if (handshake.done) resolveHandshake()
    await Promise.race([handshakeDone, failed])
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
