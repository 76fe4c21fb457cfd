// The Fastify set-up every oncekv listener shares: our logger without per-request lines,
// JSON error bodies for every error (the router's own included), long path parameters (keys
// are up to 1024 bytes, 3 times that percent-encoded), and a drain mode for shutdown in which
// each request gets a 503 and its connection is closed, so keep-alive clients cannot hold a
// stopping node open.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
} from 'fastify'
import type { Logger } from 'pino'
import { UnavailableError } from '../protocol/index.ts'
import { CODE_HEADER, installErrorHandling, sendError, toOnceKvError } from './errors.ts'

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
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW'
      const body = JSON.stringify({
        code: 1001,
        error: tooLarge ? 'too_large' : 'bad_request',
        message: tooLarge
          ? 'the request line and headers are over the size limit'
          : 'the request could not be parsed',
      })
      socket.end(
        `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `${CODE_HEADER}: 1001\r\n` +
          `connection: close\r\n\r\n${body}`,
      )
    },
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
