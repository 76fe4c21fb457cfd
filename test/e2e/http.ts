// A small HTTP client for end-to-end tests: global fetch with a timeout on every request, the
// whole body read, and helpers for the database API's JSON. It does not retry; callers decide.

/** HttpResponse is a response with its body read in full. */
export interface HttpResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: Uint8Array
  /** text is the body decoded as UTF-8 (lenient). */
  text(): string
  /** json parses the body as JSON; it throws with the body in the message if it is not. */
  json<T = unknown>(): T
}

/** RequestOptions are the options of request. */
export interface RequestOptions {
  readonly method?: string
  readonly body?: string | Uint8Array
  readonly headers?: Record<string, string>
  /** timeoutMs bounds the whole exchange; 5 s by default. */
  readonly timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 5_000

/** request sends one HTTP request and reads the whole response. Network errors and timeouts
 * reject (see isNetworkError). */
export async function request(url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  const res = await fetch(url, {
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: opts.headers,
    signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
  })
  const body = new Uint8Array(await res.arrayBuffer())
  return responseOf(res.status, res.headers, body)
}

function responseOf(status: number, headers: Headers, body: Uint8Array): HttpResponse {
  const text = (): string => Buffer.from(body).toString('utf8')
  return {
    status,
    headers,
    body,
    text,
    json<T>(): T {
      try {
        return JSON.parse(text()) as T
      } catch {
        throw new Error(`HTTP ${status}: body is not JSON: ${text().slice(0, 300)}`)
      }
    },
  }
}

/** postJson sends body as JSON. */
export function postJson(url: string, body: unknown, timeoutMs?: number): Promise<HttpResponse> {
  return request(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    timeoutMs,
  })
}

/** getJson fetches url and parses a 2xx JSON body; anything else throws. */
export async function getJson<T>(
  url: string,
  timeoutMs?: number,
  headers?: Record<string, string>,
): Promise<T> {
  const res = await request(url, { timeoutMs, headers })
  if (res.status < 200 || res.status > 299)
    throw new Error(`GET ${url}: HTTP ${res.status}: ${res.text().slice(0, 300)}`)
  return res.json<T>()
}

/** keyPath encodes a key for /key/:key and /keys/*: every reserved byte is escaped. (The keys
 * "." and ".." cannot be sent this way: WHATWG URLs drop dot segments, even as %2E.) */
export function keyPath(key: string): string {
  return encodeURIComponent(key)
}

/** isNetworkError tells a failed exchange (refused, reset, timed out) from an HTTP answer. */
export function isNetworkError(e: unknown): boolean {
  return (
    e instanceof TypeError ||
    (e instanceof Error &&
      (e.name === 'TimeoutError' || e.name === 'AbortError' || /ECONN|EPIPE/.test(e.message)))
  )
}

/** errorCause names a network error briefly ("ECONNREFUSED", "TimeoutError"). */
export function errorCause(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = (e as Error & { cause?: { code?: string } }).cause
  return cause?.code ?? e.name
}

/** parsePrometheus checks that text is in the Prometheus text format (every line a comment
 * of HELP or TYPE, or a sample) and returns the samples that have no labels, by name. */
export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('#')) {
      if (!/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line))
        throw new Error(`not a Prometheus comment line: ${line}`)
      continue
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)( \d+)?$/.exec(line)
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`)
    const raw = m[3] as string
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw)
    // NaN in any case, as Prometheus reads it: prom-client writes "Nan" (the event-loop lag
    // mean when no delay was sampled since the last scrape).
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`not a sample value: ${line}`)
    if (!m[2]) samples.set(m[1] as string, value)
  }
  return samples
}

/** headersOf is an answer's status and headers, without those that vary per answer (and
 * without any named in skip). */
export function headersOf(res: HttpResponse, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = { status: String(res.status) }
  for (const [k, v] of res.headers) {
    if (k !== 'date' && k !== 'keep-alive' && !skip.includes(k)) out[k] = v
  }
  return out
}

/** BAD_ESCAPES are paths every listener refuses for a bad percent-escape, each with the escape
 * its 400 must name: not hex, cut short, bytes that are not UTF-8, a lone surrogate. */
export const BAD_ESCAPES: readonly (readonly [path: string, bad: string])[] = [
  ['/key/%zz', '%zz'],
  ['/keys/%E0%A4%A', '%E0%A4'],
  ['/key/%FF', '%FF'],
  ['/keys/bad%FF', '%FF'],
  ['/i/key/a%', '%'],
  ['/keys/%ED%A0%80', '%ED%A0%80'],
]
