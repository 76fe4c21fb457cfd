// How a value goes out over HTTP, the same on database and cache nodes: JSON for the
// original's `GET /key/:key` (UTF-8 text, or base64 when the bytes are not UTF-8), raw bytes
// for `GET /keys/:key` with a strong ETag and headers that let an HTTP cache keep it forever
// (a value never changes): any cache when reads are open, only the client's own when they
// need a token.
import { hash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { GetResponse } from '../protocol/index.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })

/** IMMUTABLE is the Cache-Control of a value on a listener whose reads are open: any cache,
 * shared ones (a proxy, a CDN) included, may keep it for good. */
export const IMMUTABLE = 'public, max-age=31536000, immutable'

/** IMMUTABLE_PRIVATE is the Cache-Control of a value on a listener whose reads need a token:
 * the client's own cache may keep it for good, a shared cache must not store it (it would
 * hand an answer given to an authorized request to anyone who asks). */
export const IMMUTABLE_PRIVATE = 'private, max-age=31536000, immutable'

/** valueCacheControl is the Cache-Control of a listener's values, chosen once when the
 * listener is built: readsNeedToken, its reads take a token (a read token is set). */
export function valueCacheControl(readsNeedToken: boolean): string {
  return readsNeedToken ? IMMUTABLE_PRIVATE : IMMUTABLE
}

const OCTET_STREAM = 'application/octet-stream'

// ETags of values held in memory (a cache node's entries), computed once per value object:
// a value never changes, and the entry goes when the value is evicted and collected.
const etags = new WeakMap<Uint8Array, string>()

/** etagOf is the strong ETag of a value: immutable values make it valid forever. held: the
 * value object stays in memory (a cache entry), so its ETag is kept with it; a value read
 * afresh from the store for one answer is not remembered (the table would only churn). */
export function etagOf(value: Uint8Array, held = true): string {
  let etag = held ? etags.get(value) : undefined
  if (etag === undefined) {
    // The first 24 bytes of the SHA-256 digest: 32 base64url characters, quoted by
    // JSON.stringify into one flat string (a template literal around a slice would keep a
    // cons string, a sliced string and the whole digest's string alive per cached value,
    // about 250 bytes). The one-shot hash is about 5x quicker than a Hash object here.
    etag = JSON.stringify(hash('sha256', value, 'base64url').slice(0, 32))
    if (held) etags.set(value, etag)
  }
  return etag
}

/** KEY_ETAG_MAX_CHARS is the longest key whose ETag KeyEtags remembers: content hashes
 * (64 hex digits) and paths of usual length fit; longer keys are hashed per answer, so the
 * memory bound does not depend on what clients choose for keys. */
const KEY_ETAG_MAX_CHARS = 160

/** KeyEtags remembers the ETags of the keys a database member answers: it reads a value
 * afresh from its store for each answer, and a key's value never changes, so a key's ETag
 * (SHA-256 of its bytes and three strings; the hash alone measured 0.7 µs at 100 B and
 * 3.5 µs at 4 KiB on this project's 2-core machine) is computed once while the key stays in
 * use. Two generations of at most perGeneration keys: a key found in the older one is copied
 * to the newer, and a full newer one becomes the older, dropping the oldest; so a working set
 * of up to perGeneration keys stays remembered in whatever order it is read. At most
 * 2 * perGeneration keys of at most KEY_ETAG_MAX_CHARS characters: about 130 bytes a key of
 * 20 characters, at most about 450. A key given here must not be a slice of a much longer
 * string, which it would keep alive (the fast path's key is its URL past `/keys/`, which has
 * no query string). */
export class KeyEtags {
  private young = new Map<string, string>()
  private old = new Map<string, string>()

  constructor(private readonly perGeneration: number) {}

  /** etagOf is the ETag of key's value. */
  etagOf(key: string, value: Uint8Array): string {
    if (key.length > KEY_ETAG_MAX_CHARS) return etagOf(value, false)
    let etag = this.young.get(key)
    if (etag !== undefined) return etag
    etag = this.old.get(key) ?? etagOf(value, false)
    if (this.young.size >= this.perGeneration) {
      this.old = this.young
      this.young = new Map()
    }
    this.young.set(key, etag)
    return etag
  }

  /** size is the number of keys remembered (at most 2 * perGeneration). */
  get size(): number {
    return this.young.size + this.old.size
  }
}

/** getResponseOf is the JSON body of GET /key/:key. */
export function getResponseOf(key: string, value: Uint8Array): GetResponse {
  try {
    return { key, value: decoder.decode(value) }
  } catch {
    return { key, value: Buffer.from(value).toString('base64'), encoding: 'base64' }
  }
}

/** matches is If-None-Match's test (RFC 9110 13.1.2): "*", or a list of tags compared
 * weakly (W/"x" matches "x"). */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
}

/** sendRawValue answers GET/HEAD /keys/:key with the bytes (304 when If-None-Match holds).
 * cacheControl is the listener's valueCacheControl. */
export function sendRawValue(
  req: FastifyRequest,
  reply: FastifyReply,
  value: Uint8Array,
  cacheControl: string,
  held = true,
): FastifyReply {
  const etag = etagOf(value, held)
  reply.header('etag', etag).header('cache-control', cacheControl)
  if (matches(req.headers['if-none-match'], etag)) return reply.code(304).send()
  return reply
    .type(OCTET_STREAM)
    .send(Buffer.from(value.buffer, value.byteOffset, value.byteLength))
}

/**
 * rawKeyOfFastPath is the key of a plain `GET /keys/<key>` request (or of another method)
 * that the fast path may
 * answer, or undefined for anything it leaves to the router: another method or route, a
 * query string, or percent-escapes (the router decodes those, with its own error answers).
 */
export function rawKeyOfFastPath(req: IncomingMessage, method = 'GET'): string | undefined {
  const url = req.url
  if (req.method !== method || url === undefined || !url.startsWith('/keys/')) return undefined
  if (url.length === 6 || url.includes('%') || url.includes('?') || url.includes('#'))
    return undefined
  return url.slice(6)
}

/** sendRawValueFast answers as sendRawValue does, on a plain node:http response: the same
 * status, headers and body (Fastify adds nothing else to these replies). cacheControl is the
 * listener's valueCacheControl, as for sendRawValue. source, when given,
 * is the x-oncekv-source header (a cache node's answers name where the value came from).
 * The headers go as one flat list: no object to build (a spread of the caller's) and walk
 * per answer, which profiles of cache hits showed costly; node:http checks each name and
 * value either way. */
export function sendRawValueFast(
  req: IncomingMessage,
  res: ServerResponse,
  value: Uint8Array,
  cacheControl: string,
  source: string | undefined,
  held = true,
  etag = etagOf(value, held),
): void {
  // The route's order: the source (when given) first, then the ETag and caching.
  const headers =
    source === undefined
      ? ['etag', etag, 'cache-control', cacheControl]
      : ['x-oncekv-source', source, 'etag', etag, 'cache-control', cacheControl]
  if (matches(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  headers.push('content-type', OCTET_STREAM, 'content-length', String(value.byteLength))
  res.writeHead(200, headers)
  // A Buffer goes out as it is (a cache node's entries are Buffers); anything else would be
  // wrapped by the stream anyway.
  res.end(
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  )
}
