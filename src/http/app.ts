// The Fastify set-up every oncekv listener shares: our logger without per-request lines,
// JSON error bodies for every error (the router's own included), long path parameters (keys
// are up to 1024 bytes, 3 times that percent-encoded), and a drain mode for shutdown in which
// each request gets a 503 and its connection is closed, so keep-alive clients cannot hold a
// stopping node open.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify'
import type { Logger } from 'pino'
import {
  BadRequestError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  UnavailableError,
} from '../protocol/index.ts'
import { installErrorHandling, rawErrorAnswer, sendError, toOnceKvError } from './errors.ts'

/** AppOptions configure a listener. */
export interface AppOptions {
  readonly logger: Logger
  /** bodyLimit is the largest request body, in bytes. */
  readonly bodyLimit: number
  /** draining is true once the node is shutting down. */
  readonly draining: () => boolean
  /**
   * fastPath, when given, sees every request before Fastify does and may answer it itself
   * (returning true): the hot read of a value held in memory, where Fastify's routing, hooks
   * and reply objects would cost more than the read. It must answer exactly as the Fastify
   * route would, and return false for anything else (the request then goes to Fastify).
   */
  readonly fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/** createApp makes a Fastify instance with oncekv's common behaviour. */
export function createApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    routerOptions: { maxParamLength: 4096 },
    ...(opts.fastPath ? { serverFactory: fastPathServer(opts.fastPath) } : {}),
    // Requests during shutdown get our own 503 (onRequest below), not the framework's.
    return503OnClosing: false,
    // Errors the router raises before any route runs (a bad percent-escape in the path, say)
    // get the same JSON error bodies as everything else.
    frameworkErrors: (err, _req, reply) => {
      void sendError(reply, toOnceKvError(err))
    },
    // Requests Node's parser refuses before Fastify sees them (headers over 16 KiB, a broken
    // request line) get the same JSON error shape, then the connection is closed.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      // The parser reports every later chunk of a refused request again: the answer is out
      // and the socket lingers (closeLingering), so these are dropped, not a reason to reset.
      if (lingering.has(socket)) return
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
      closeLingering(
        socket,
        tooLarge
          ? rawErrorAnswer(
              new PayloadTooLargeError('the request line and headers are over the size limit'),
              431,
            )
          : rawErrorAnswer(new BadRequestError('the request could not be parsed')),
      )
    },
  })
  // A connection that closes while the client may still be sending (an answer before the
  // whole body was read: a 413, a refused route) closes lingering, so that the client reads
  // the answer rather than a reset.
  app.server.on('connection', (socket: Socket) => {
    socket.destroySoon = () => closeLingering(socket)
  })
  // Node hands a CONNECT (a proxy tunnel request) to 'connect' listeners, not to the
  // request handler, and closes the socket when there are none: answer it instead.
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy())
    closeLingering(
      socket as Socket,
      rawErrorAnswer(new MethodNotAllowedError(`${req.method ?? 'CONNECT'} is not served here`)),
    )
  })
  // Callback-style hooks: they run on every request, and an async hook costs a promise each.
  app.addHook('onRequest', (_req, reply, done) => {
    if (!opts.draining()) return done()
    reply.header('connection', 'close')
    void sendError(reply, new UnavailableError('this node is shutting down; retry another'))
  })
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (opts.draining()) reply.header('connection', 'close')
    done(null, payload)
  })
  installErrorHandling(app)
  return app
}

/** lingering holds the sockets closeLingering is closing. */
const lingering = new WeakSet<object>()

/** LINGER_MS and LINGER_BYTES bound what a closing connection still reads and drops. */
const LINGER_MS = 2_000
const LINGER_BYTES = 16 * 1024 * 1024

/**
 * closeLingering ends socket (after answer, if given) and then reads and drops what the
 * client still sends, for up to LINGER_MS or LINGER_BYTES, before closing it: closing a
 * socket with unread data makes the kernel send a reset, and a client still writing its body
 * would see "connection reset" instead of the answer (the lingering close of RFC 9112 9.6).
 */
export function closeLingering(socket: Socket, answer?: string): void {
  if (socket.destroyed || lingering.has(socket)) return
  lingering.add(socket)
  if (socket.writable) {
    if (answer === undefined) socket.end()
    else socket.end(answer)
  }
  let dropped = 0
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  socket.on('close', () => clearTimeout(timer))
  socket.on('end', () => socket.destroy())
  socket.on('data', (chunk: Buffer) => {
    dropped += chunk.byteLength
    if (dropped > LINGER_BYTES) socket.destroy()
  })
  socket.resume()
}

// fastPathServer builds the HTTP server as Fastify would (its timeouts), with fastPath in
// front of Fastify's handler.
function fastPathServer(
  fastPath: (req: IncomingMessage, res: ServerResponse) => boolean,
): NonNullable<FastifyServerOptions['serverFactory']> {
  return (handler, options) => {
    const server = createServer((req, res) => {
      if (!fastPath(req, res)) handler(req, res)
    })
    const { keepAliveTimeout, requestTimeout, connectionTimeout } = options
    if (typeof keepAliveTimeout === 'number') server.keepAliveTimeout = keepAliveTimeout
    if (typeof requestTimeout === 'number') server.requestTimeout = requestTimeout
    if (typeof connectionTimeout === 'number') server.setTimeout(connectionTimeout)
    return server
  }
}

/** splitHostPort splits "host:port" (IPv6 hosts in brackets). */
export function splitHostPort(address: string): [string, number] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address)
  if (!m) throw new Error(`address ${address} is not host:port`)
  return [m[1] as string, Number(m[2])]
}
