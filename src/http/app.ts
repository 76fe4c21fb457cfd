// The Fastify set-up every oncekv listener shares: our logger without per-request lines,
// JSON error bodies for every error (the router's own included), long path parameters (keys
// are up to 1024 bytes, 3 times that percent-encoded), and a drain mode for shutdown in which
// each request gets a 503 and its connection is closed, so keep-alive clients cannot hold a
// stopping node open. Every listener may serve TLS, and enforces the limits of limits.ts.
import { isUtf8 } from 'node:buffer'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
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
  type OnceKvError,
  PayloadTooLargeError,
  RequestTimeoutError,
  TooManyRequestsError,
  UnavailableError,
  UriTooLongError,
} from '../protocol/index.ts'
import {
  CODE_HEADER,
  installErrorHandling,
  rawErrorAnswer,
  sendError,
  toOnceKvError,
} from './errors.ts'
import { httpLimits, type HttpLimits } from './limits.ts'

/** ServerTls are the node:https options of a listener that serves TLS (serverTlsOptions). */
export interface ServerTls {
  readonly cert: Buffer
  readonly key: Buffer
  readonly ca?: Buffer
  readonly requestCert?: boolean
  readonly rejectUnauthorized?: boolean
}

/** AppOptions configure a listener. */
export interface AppOptions {
  readonly logger: Logger
  /** bodyLimit is the largest request body, in bytes. */
  readonly bodyLimit: number
  /** draining is true once the node is shutting down. */
  readonly draining: () => boolean
  /**
   * fastPath, when given, sees every request before Fastify does and may answer it itself
   * (returning true, then or later): the hot requests (a read of a value held in memory, on
   * a member a plain read or write), where Fastify's routing, hooks and reply objects would
   * cost more than the work. It must answer exactly as the Fastify route and its hooks
   * would, and return false for anything else (the request then goes to Fastify).
   */
  readonly fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean
  /** tls, when given, makes the listener serve HTTPS only. */
  readonly tls?: ServerTls
  /** limits bound what clients may send (defaults: HTTP_LIMITS_DEFAULT). */
  readonly limits?: Partial<HttpLimits>
}

/** createApp makes a Fastify instance with oncekv's common behaviour. */
export function createApp(opts: AppOptions): FastifyInstance {
  const limits = httpLimits(opts.limits)
  const app = Fastify({
    loggerInstance: opts.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit,
    routerOptions: { maxParamLength: 4096 },
    serverFactory: serverFactory(limits, opts.tls, opts.fastPath),
    // With a server factory Fastify only reads this to name its address (https://…) in logs.
    ...(opts.tls ? ({ https: true } as unknown as Record<string, never>) : {}),
    // Requests during shutdown get our own 503 (onRequest below), not the framework's.
    return503OnClosing: false,
    // Errors the router raises before any route runs (a bad percent-escape in the path, say)
    // get the same JSON error bodies as everything else.
    frameworkErrors: (err, req, reply) => {
      void sendError(reply, toOnceKvError(err, { url: req.url, headers: req.headers }))
    },
    // Requests Node's parser refuses before Fastify sees them (headers over the limit, a
    // broken request line, a request too slow to arrive) get the same JSON error shape, then
    // the connection is closed.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      // The parser reports every later chunk of a refused request again: the answer is out
      // and the socket lingers (closeLingering), so these are dropped, not a reason to reset.
      if (lingering.has(socket)) return
      // An answer already begun (a request timeout while a response streams out) cannot be
      // followed by another: the connection is cut.
      const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
      if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
        socket.destroy()
        return
      }
      closeLingering(socket, clientErrorAnswer(err, limits))
    },
  })
  // A connection that closes while the client may still be sending (an answer before the
  // whole body was read: a 413, a refused route) closes lingering, so that the client reads
  // the answer rather than a reset.
  // (Over TLS, the socket HTTP reads and writes is the TLS one.)
  app.server.on(opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
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
  // JSON bodies: Fastify's parser (with its guards against prototype poisoning) after a check
  // that the bytes are UTF-8. Read as text first, invalid bytes would turn into U+FFFD and a
  // write would store what the client never sent.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const bytes = body as Buffer
    if (!isUtf8(bytes)) {
      done(new BadRequestError('the JSON body is not valid UTF-8'), undefined)
      return
    }
    parseJson(req, bytes.toString('utf8'), done)
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

/** clientErrorAnswer is the answer to a request Node's parser or its timers refused. */
function clientErrorAnswer(err: NodeJS.ErrnoException, limits: HttpLimits): string {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return rawErrorAnswer(
        new PayloadTooLargeError(
          `the request line and headers are over the limit of ${limits.maxHeaderBytes} bytes`,
        ),
        431,
      )
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return rawErrorAnswer(
        new RequestTimeoutError(
          `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, ` +
            `the whole request within ${limits.requestTimeoutMs} ms)`,
        ),
      )
    default:
      return rawErrorAnswer(new BadRequestError('the request could not be parsed'))
  }
}

/** answerRaw answers a request Fastify never sees with err's JSON body; close ends the
 * connection after it. */
function answerRaw(res: ServerResponse, err: OnceKvError, close: boolean): void {
  const body = JSON.stringify(err.body())
  res.statusCode = err.status
  res.setHeader('content-type', 'application/json; charset=utf-8')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.setHeader(CODE_HEADER, String(err.code))
  if (err instanceof UnavailableError) res.setHeader('retry-after', String(err.retryAfterSeconds))
  if (close) res.setHeader('connection', 'close')
  res.end(body)
}

/** ConnState is what a listener tracks per connection. */
interface ConnState {
  /** inFlight counts its requests not yet answered (pipelined ones, queued in order). */
  inFlight: number
  /** refused: the connection went over a limit; every later request on it is refused. */
  refused: OnceKvError | undefined
}

// serverFactory builds the HTTP or HTTPS server with the limits, in front of Fastify's
// handler: the URL length, the connection count and the per-connection in-flight cap are
// checked here, and fastPath (when given) sees the request before Fastify does.
function serverFactory(
  limits: HttpLimits,
  tls: ServerTls | undefined,
  fastPath: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined,
): NonNullable<FastifyServerOptions['serverFactory']> {
  return (handler) => {
    const conns = new WeakMap<object, ConnState>()
    let open = 0
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      let state = conns.get(req.socket)
      if (!state) {
        state = { inFlight: 0, refused: undefined }
        conns.set(req.socket, state)
      }
      if (state.refused) return answerRaw(res, state.refused, true)
      if (state.inFlight >= limits.maxInFlightPerConnection) {
        state.refused = new TooManyRequestsError(
          `over ${limits.maxInFlightPerConnection} requests in flight on one connection; ` +
            'the connection is closed',
        )
        return answerRaw(res, state.refused, true)
      }
      const url = req.url ?? ''
      if (url.length > limits.maxUrlBytes)
        return answerRaw(
          res,
          new UriTooLongError(`the URL is over the limit of ${limits.maxUrlBytes} bytes`),
          false,
        )
      const s = state
      s.inFlight++
      res.once('close', () => s.inFlight--)
      if (!fastPath?.(req, res)) handler(req, res)
    }
    const options = {
      maxHeaderSize: limits.maxHeaderBytes,
      // How often Node checks the headers and request timeouts: often enough that a slow
      // client is cut off close to its deadline.
      connectionsCheckingInterval: Math.max(
        50,
        Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)),
      ),
    }
    const server: Server = tls
      ? (createHttpsServer(
          { ...options, ...tls, handshakeTimeout: limits.headersTimeoutMs },
          onRequest,
        ) as unknown as Server)
      : createServer(options, onRequest)
    server.headersTimeout = limits.headersTimeoutMs
    server.requestTimeout = Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs)
    server.keepAliveTimeout = limits.keepAliveTimeoutMs
    // Connections over maxConnections are accepted (their first request gets a 503 and the
    // connection is closed, so that a client sees why); past twice the limit the kernel's
    // accept is answered with a close, to bound the descriptors a flood can take.
    server.maxConnections = limits.maxConnections * 2
    server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      open++
      socket.once('close', () => open--)
      if (open > limits.maxConnections)
        conns.set(socket, {
          inFlight: 0,
          refused: new UnavailableError(
            `this listener holds its limit of ${limits.maxConnections} connections; retry later`,
          ),
        })
    })
    return server
  }
}

/** splitHostPort splits "host:port" (IPv6 hosts in brackets). */
export function splitHostPort(address: string): [string, number] {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address)
  if (!m) throw new Error(`address ${address} is not host:port`)
  return [m[1] as string, Number(m[2])]
}
