// The dashboard's data actions, done by the admin on the page's behalf so the page talks to
// one origin: a key lookup through a cache node (falling back to a database member) that says
// who served it and from where, and a create-once put to a database member that reports the
// outcome plainly (created, already there with the same value, or a conflict with the value
// that stays).
import type { FastifyInstance } from 'fastify'
import { getResponseOf } from '../http/values.ts'
import {
  BadRequestError,
  errorFromBody,
  jsonValueBytes,
  keyBytes,
  PayloadTooLargeError,
  UnavailableError,
  UnsupportedMediaTypeError,
  type AdminPutResponse,
  type LookupResponse,
} from '../protocol/index.ts'

/** Nodes tells the API where to send requests, best first. */
export interface ApiNodes {
  /** maxValueBytes is the database's largest value: the largest the put takes. */
  readonly maxValueBytes: number
  /** caches are the live cache nodes' URLs. */
  caches(): readonly string[]
  /** dbs are the database members' URLs, the leader first when known. */
  dbs(): readonly string[]
  /** readAuth and writeAuth are the admin's credentials for reads and writes (headers). */
  readonly readAuth?: Record<string, string>
  readonly writeAuth?: Record<string, string>
  /** fetch calls the nodes (over TLS, one that trusts --tls-ca); the global one if absent. */
  readonly fetch?: typeof globalThis.fetch
}

const TIMEOUT_MS = 5_000

function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError || (e instanceof Error && e.name === 'TimeoutError')
}

/** putBodyLimit is the largest body of POST /api/put for values up to maxValueBytes: a JSON
 * string takes at most 6 bytes per byte of text (\u0000), plus the key and the braces. */
export function putBodyLimit(maxValueBytes: number): number {
  return maxValueBytes * 6 + 8192
}

/** sizeText says a size in bytes and, past 1 KiB, in KiB or MiB. */
function sizeText(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / 1024 / 1024) * 10) / 10} MiB (${n} bytes)`
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB (${n} bytes)`
  return `${n} bytes`
}

/** tooLargeValue is the error for a value over the database's limit. */
export function tooLargeValue(bytes: number | undefined, limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `${bytes === undefined ? 'the value is' : `the value is ${sizeText(bytes)},`} over the database's limit of ${sizeText(limit)} (the admin's --max-value-bytes, which should match the members')`,
  )
}

/** PUT_SHAPE is what POST /api/put takes. */
const PUT_SHAPE =
  'POST /api/put takes a JSON body {"key": "<key>", "value": "<UTF-8 text>"} with content-type: application/json'

/** isJson says whether a Content-Type header names application/json (parameters allowed). */
function isJson(type: string | undefined): boolean {
  return type?.split(';')[0]?.trim().toLowerCase() === 'application/json'
}

/** notJson is the error for a put whose content type is not JSON. */
function notJson(type: string | undefined): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    type === undefined || type.trim() === ''
      ? `${PUT_SHAPE}; this request has no content-type`
      : `${PUT_SHAPE}, not ${JSON.stringify(type.slice(0, 100))}`,
  )
}

/** registerApi adds GET /api/lookup/<key> and POST /api/put. */
export function registerApi(app: FastifyInstance, nodes: ApiNodes): void {
  const fetch = nodes.fetch ?? globalThis.fetch
  app.get('/api/lookup/*', async (req) => {
    const key = (req.params as { '*': string })['*']
    keyBytes(key)
    const started = Date.now()
    const targets = [...shuffle(nodes.caches()), ...nodes.dbs()]
    if (targets.length === 0) throw new UnavailableError('no cache node or database member known')
    let lastError = 'no node answered'
    for (const url of targets) {
      let res: Response
      try {
        res = await fetch(`${url}/keys/${encodeURIComponent(key)}`, {
          headers: { ...nodes.readAuth },
          signal: AbortSignal.timeout(TIMEOUT_MS),
        })
      } catch (e) {
        if (!isNetworkError(e)) throw e
        lastError = `${url}: ${(e as Error).message}`
        continue
      }
      const took = Date.now() - started
      if (res.status === 200) {
        const value = new Uint8Array(await res.arrayBuffer())
        const shown = getResponseOf(key, value)
        const body: LookupResponse = {
          key,
          found: true,
          value: shown.value,
          ...(shown.encoding ? { encoding: shown.encoding } : {}),
          size: value.byteLength,
          served_by: url,
          source: res.headers.get('x-oncekv-source') ?? 'db',
          took_ms: took,
        }
        return body
      }
      const err = (await res.json().catch(() => ({}))) as { code?: unknown }
      if (res.status === 404 && err.code === 1002) {
        const body: LookupResponse = { key, found: false, served_by: url, took_ms: took }
        return body
      }
      if (res.status >= 400 && res.status < 500) throw errorFromBody(res.status, err, key)
      lastError = `${url}: answered ${res.status}`
    }
    throw new UnavailableError(`the lookup failed: ${lastError}`)
  })

  const bodyLimit = putBodyLimit(nodes.maxValueBytes)
  app.post(
    '/api/put',
    {
      bodyLimit,
      // A body announced over the limit, or of another type than JSON, is refused before it
      // is read, with the limit or the shape it takes named.
      onRequest: (req, _reply, done) => {
        const type = req.headers['content-type']
        if (!isJson(type)) return done(notJson(type))
        const length = Number(req.headers['content-length'])
        if (Number.isFinite(length) && length > bodyLimit)
          return done(tooLargeValue(undefined, nodes.maxValueBytes))
        done()
      },
    },
    async (req) => {
      const body = req.body as Record<string, unknown> | null
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new BadRequestError('the body must be a JSON object {"key": "...", "value": "..."}')
      const key = body.key
      keyBytes(key)
      const value = jsonValueBytes(body.value)
      if (value.byteLength > nodes.maxValueBytes)
        throw tooLargeValue(value.byteLength, nodes.maxValueBytes)
      const started = Date.now()
      const k = key as string
      let lastError = 'no database member known'
      for (const url of nodes.dbs()) {
        let res: Response
        try {
          res = await fetch(`${url}/keys/${encodeURIComponent(k)}`, {
            method: 'PUT',
            body: value,
            headers: { 'content-type': 'application/octet-stream', ...nodes.writeAuth },
            signal: AbortSignal.timeout(TIMEOUT_MS * 2),
          })
        } catch (e) {
          if (!isNetworkError(e)) throw e
          lastError = `${url}: ${(e as Error).message}`
          continue
        }
        const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>
        if (res.status === 201 || res.status === 200 || res.status === 409) {
          const out: AdminPutResponse = {
            key: k,
            outcome: res.status === 201 ? 'created' : res.status === 200 ? 'exists' : 'conflict',
            ...(res.status === 409
              ? { existing: await existingValue(fetch, url, k, nodes.readAuth) }
              : {}),
            served_by: url,
            took_ms: Date.now() - started,
          }
          return out
        }
        if (res.status >= 400 && res.status < 500) throw errorFromBody(res.status, answer, k)
        lastError = `${url}: answered ${res.status}`
      }
      throw new UnavailableError(`the write did not complete (${lastError}); retrying is safe`)
    },
  )
}

async function existingValue(
  fetch: typeof globalThis.fetch,
  url: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/keys/${encodeURIComponent(key)}`, {
      headers,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
    if (res.status !== 200) return undefined
    const shown = getResponseOf(key, new Uint8Array(await res.arrayBuffer()))
    return shown.encoding ? `base64:${shown.value}` : shown.value
  } catch {
    return undefined
  }
}

function shuffle<T>(xs: readonly T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}
