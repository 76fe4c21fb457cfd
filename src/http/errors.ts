// The one place an error becomes an HTTP response: expected errors (OnceKvError) keep their
// status and body, and their code goes in an x-oncekv-code header too; framework errors for bad input map to the matching 4xx; anything else is
// a bug, answered with a generic 500 and logged with the request id. The framework's own
// messages are replaced by ours, which say what was refused: the body limit in bytes, the bad
// percent-escape of a URL, the content type a route did not take.
import { STATUS_CODES, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  BadRequestError,
  InternalError,
  KEY_BYTES_MAX,
  MethodNotAllowedError,
  OnceKvError,
  PayloadTooLargeError,
  RouteNotFoundError,
  UnauthorizedError,
  UnavailableError,
  UnsupportedMediaTypeError,
} from '../protocol/index.ts'

/** ErrorRequest is what toOnceKvError may use of the request an error answers, to say what
 * the framework's own messages leave out (a FastifyRequest is one). */
export interface ErrorRequest {
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** routeOptions.bodyLimit is the matched route's body limit (the listener's, or its own). */
  readonly routeOptions?: { readonly bodyLimit?: number }
}

/** toOnceKvError maps any thrown value to the error the API reports. req, when given, is the
 * request it answers: the framework's errors then name the limit, the content type or the
 * URL that was refused. */
export function toOnceKvError(err: unknown, req?: ErrorRequest): OnceKvError {
  if (err instanceof OnceKvError) return err
  const e = err as Partial<FastifyError> | undefined
  const status = e?.statusCode
  const message = typeof e?.message === 'string' ? e.message : 'bad request'
  if (status === 413) return new PayloadTooLargeError(bodyTooLargeMessage(req))
  // The router's bound on a path parameter (4096 characters): only a key is ever that long.
  if (status === 414)
    return new PayloadTooLargeError(`the key is over the limit of ${KEY_BYTES_MAX} bytes`)
  if (e?.code === 'FST_ERR_BAD_URL' && req !== undefined)
    return new BadRequestError(badEscapeMessage(req.url))
  if (status === 415) return new UnsupportedMediaTypeError(mediaTypeMessage(req) ?? message)
  if (status === 404) return new RouteNotFoundError(message)
  if (status === 405) return new MethodNotAllowedError(message)
  if (status !== undefined && status >= 400 && status < 500) return new BadRequestError(message)
  return new InternalError('internal error')
}

/** bodyTooLargeMessage says that a request body is over its route's limit, with the limit in
 * bytes and the body's size when the request announced it (a chunked body has none). */
function bodyTooLargeMessage(req: ErrorRequest | undefined): string {
  const limit = req?.routeOptions?.bodyLimit
  if (limit === undefined) return 'the request body is over the size limit'
  const length = Number(req?.headers['content-length'])
  if (Number.isSafeInteger(length) && length > limit)
    return `the request body is ${length} bytes; the limit is ${limit} bytes`
  return `the request body is over the limit of ${limit} bytes`
}

/** SHOWN_URL_CHARS bounds how much of a refused URL an error message repeats. */
const SHOWN_URL_CHARS = 200

/** badEscapeMessage says what is wrong with a URL the router could not decode, naming the
 * first bad escape: a "%" not followed by two hex digits, or escapes whose bytes are not UTF-8
 * (a lone surrogate among them). */
function badEscapeMessage(url: string): string {
  const path = url.split('?')[0] ?? url
  const shown =
    path.length > SHOWN_URL_CHARS
      ? `${path.slice(0, SHOWN_URL_CHARS)}... (${path.length} characters)`
      : path
  const bad = firstBadEscape(path)
  return `the URL has an invalid percent-escape: ${bad === undefined ? '' : `${bad} in `}${shown} (a "%" must start an escape of two hex digits, the escaped bytes must be UTF-8, and a "%" in a key is sent as %25)`
}

/** firstBadEscape is the first escape of path that does not decode (a run of escapes, when
 * their bytes are not UTF-8), or undefined when none is found. */
function firstBadEscape(path: string): string | undefined {
  for (const m of path.matchAll(/(?:%[0-9A-Fa-f]{2})+|%.{0,2}/gs)) {
    try {
      decodeURIComponent(m[0])
    } catch {
      return m[0].length > 36 ? `${m[0].slice(0, 36)}...` : m[0]
    }
  }
  return undefined
}

/** mediaTypeMessage says which content type a route did not take, or undefined without the
 * request. Every route of these listeners that refuses a content type takes JSON (a member's
 * routes take any type). */
function mediaTypeMessage(req: ErrorRequest | undefined): string | undefined {
  if (req === undefined) return undefined
  const type = req.headers['content-type']
  if (type === undefined || type.trim() === '')
    return 'the request has a body but no content-type header; this route takes application/json'
  return `this route does not take a body of content type ${JSON.stringify(type.slice(0, 100))}; it takes application/json`
}

/** CODE_HEADER carries an error's numeric code on every error response, so that a client
 * can tell "key not found" (1002) from any other 404 without a body: a HEAD has none, and a
 * 404 from something that is not an oncekv key API (a wrong URL, a proxy) has no such header. */
export const CODE_HEADER = 'x-oncekv-code'

/** sendError writes err as the API's JSON error body, with its code in CODE_HEADER too. */
export function sendError(reply: FastifyReply, err: OnceKvError): FastifyReply {
  if (err instanceof UnavailableError) reply.header('retry-after', String(err.retryAfterSeconds))
  if (err instanceof UnauthorizedError) reply.header('www-authenticate', 'Bearer')
  reply.header(CODE_HEADER, String(err.code))
  return reply.code(err.status).type('application/json').send(err.body())
}

/** sendErrorFast answers err on a plain node:http response exactly as sendError does through
 * Fastify: status, JSON body and headers. */
export function sendErrorFast(res: ServerResponse, err: OnceKvError): void {
  const body = JSON.stringify(err.body())
  const headers: Record<string, string | number> = {}
  if (err instanceof UnavailableError) headers['retry-after'] = String(err.retryAfterSeconds)
  if (err instanceof UnauthorizedError) headers['www-authenticate'] = 'Bearer'
  headers[CODE_HEADER] = String(err.code)
  headers['content-type'] = 'application/json; charset=utf-8'
  headers['content-length'] = Buffer.byteLength(body)
  res.writeHead(err.status, headers)
  res.end(body)
}

/**
 * rawErrorAnswer is err as a whole HTTP/1.1 answer that closes the connection, for sockets
 * no framework answers on: a refused WebSocket upgrade, a CONNECT, a request Node's parser
 * refused. status overrides err's status (431 for headers over the limit, say).
 */
export function rawErrorAnswer(err: OnceKvError, status: number = err.status): string {
  const body = JSON.stringify(err.body())
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `content-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `${CODE_HEADER}: ${err.code}\r\n` +
    (err instanceof UnauthorizedError ? 'www-authenticate: Bearer\r\n' : '') +
    `connection: close\r\n\r\n${body}`
  )
}

/** refuseMethods routes `methods` on url to a 405 with an Allow header (allow: the methods the
 * route takes, "" for none) and message. It answers in onRequest, before any body is read, so
 * a write sent to the wrong route gets this answer whatever its size or content type. */
export function refuseMethods(
  app: FastifyInstance,
  url: string,
  methods: readonly string[],
  allow: string,
  message: string,
): void {
  const refuse = async (_req: FastifyRequest, reply: FastifyReply): Promise<never> => {
    void reply.header('allow', allow)
    throw new MethodNotAllowedError(message)
  }
  app.route({ method: [...methods], url, onRequest: refuse, handler: refuse })
}

/** installErrorHandling makes every error and unknown route answer with a JSON error body. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const mapped = toOnceKvError(err, req)
    if (mapped instanceof InternalError)
      req.log.error({ event: 'internal_error', err, reqId: req.id }, 'unexpected error')
    return sendError(reply, mapped)
  })
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) =>
    sendError(
      reply,
      new RouteNotFoundError(`no route ${req.method} ${req.url.split('?')[0] ?? ''}`),
    ),
  )
}
