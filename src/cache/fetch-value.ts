// One GET of a value over a keep-alive pool, shared by the peer protocol and the database
// fill: 200 is the value, 404 with code 1002 is an authoritative not-found, anything else is
// an error (a 404 without that code is a wrong URL, not a missing key).
import type { Dispatcher, Pool } from 'undici'

/** FetchError is a failed fetch: the node is down, slow, or answered an error. */
export class FetchError extends Error {
  override readonly name = 'FetchError'
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

/** fetchValue GETs path; undefined means not found. */
export async function fetchValue(
  pool: Pool,
  path: string,
  signal: AbortSignal,
  maxBytes: number,
  headers?: Record<string, string>,
): Promise<Uint8Array | undefined> {
  let res: Dispatcher.ResponseData
  try {
    res = await pool.request({ path, method: 'GET', signal, headers })
  } catch (e) {
    throw new FetchError((e as Error).message)
  }
  try {
    if (res.statusCode === 200) {
      const length = Number(res.headers['content-length'] ?? NaN)
      if (length > maxBytes) throw new FetchError(`value of ${length} bytes is over ${maxBytes}`)
      return await readBounded(res.body, maxBytes)
    }
    const body = (await res.body.json().catch(() => undefined)) as { code?: unknown } | undefined
    if (res.statusCode === 404 && body?.code === 1002) return undefined
    throw new FetchError(`answered ${res.statusCode}`, res.statusCode)
  } catch (e) {
    res.body.destroy()
    if (e instanceof FetchError) throw e
    throw new FetchError((e as Error).message)
  }
}

/** readBounded reads a body of at most maxBytes (a chunked body has no length up front). */
async function readBounded(body: AsyncIterable<Buffer>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > maxBytes) throw new FetchError(`value is over ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  // A copy of exactly the value's size: a view into the network layer's larger buffers would
  // keep them alive and make the cache's byte bound a lie.
  const value = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    value.set(c, at)
    at += c.byteLength
  }
  return value
}

/** keyPath is a key as one URL path segment. */
export function keyPath(key: string): string {
  return encodeURIComponent(key)
}
