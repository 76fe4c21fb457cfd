// The one place an error becomes an HTTP response: expected errors (OnceKvError) keep their
// status and body, and their code goes in an x-oncekv-code header too; framework errors for bad input map to the matching 4xx; anything else is
// a bug, answered with a generic 500 and logged with the request id.
import { STATUS_CODES, type ServerResponse } from 'node:http'
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

/** toOnceKvError maps any thrown value to the error the API reports. */
export function toOnceKvError(err: unknown): OnceKvError {
  if (err instanceof OnceKvError) return err
  const e = err as Partial<FastifyError> | undefined
  const status = e?.statusCode
  const message = typeof e?.message === 'string' ? e.message : 'bad request'
  if (status === 413) return new PayloadTooLargeError('the request body is over the size limit')
  // The router's bound on a path parameter (4096 characters): only a key is ever that long.
  if (status === 414)
    return new PayloadTooLargeError(`the key is over the limit of ${KEY_BYTES_MAX} bytes`)
  if (status === 415) return new UnsupportedMediaTypeError(message)
  if (status === 404) return new RouteNotFoundError(message)
  if (status === 405) return new MethodNotAllowedError(message)
  if (status !== undefined && status >= 400 && status < 500) return new BadRequestError(message)
  return new InternalError('internal error')
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

/** installErrorHandling makes every error and unknown route answer with a JSON error body. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const mapped = toOnceKvError(err)
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
