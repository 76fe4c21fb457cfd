// Property-based fuzzing of every HTTP listener of a running oncekv system (database members,
// cache nodes' client and peer listeners, the admin): random methods, paths built from every
// route with hostile keys (`..`, percent-escape tricks, invalid UTF-8, over-long, empty),
// random query strings and headers, and bodies of every kind (invalid JSON, invalid UTF-8,
// nested, wrong types, near-valid shapes, over the limits). Requests go over raw TCP, so even
// what an HTTP client library would refuse to send reaches the server.
//
// What must hold for every request: an answer comes; no 5xx except 503 (real unavailability);
// every error answer (4xx, 503) to a request other than HEAD has a JSON body with a numeric
// code and an error name. After the run the caller checks that every process is alive and
// that the database holds exactly the keys whose writes were answered "created".
import { connect } from 'node:net'
import fc from 'fast-check'
import type { Cluster, DbProcess } from '../e2e/cluster.ts'

/** Target is one listener to fuzz. */
export interface Target {
  readonly name: string
  /** kind picks the routes that the paths are built from. */
  readonly kind: 'db' | 'cache' | 'peer' | 'admin'
  /** address is host:port. */
  readonly address: string
}

/** FuzzRequest is one generated request. */
export interface FuzzRequest {
  readonly target: number
  readonly method: string
  readonly path: string
  readonly headers: readonly (readonly [string, string])[]
  readonly body: Uint8Array | undefined
}

/** RawAnswer is an answer read off the socket (connection: close). */
export interface RawAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

/** FuzzReport sums up a run. */
export interface FuzzReport {
  requests: number
  byStatus: Record<string, number>
  byTarget: Record<string, number>
  /** created counts writes answered "created" (PUT 201, POST /key created, admin put). */
  created: number
  failures: string[]
}

/** PROCESS_ROUTES are those of every process: what it reports of itself. */
const PROCESS_ROUTES = ['/stats', '/metrics', '/healthz', '/readyz', '/ping', '/ws/stats']

const ROUTES: Record<Target['kind'], readonly string[]> = {
  db: [
    '/key',
    '/key/{k}',
    '/i/key/{k}',
    '/keys/{k}',
    '/cluster',
    '/join',
    '/remove',
    '/transfer-leader',
    ...PROCESS_ROUTES,
  ],
  cache: ['/key', '/key/{k}', '/i/key/{k}', '/keys/{k}', '/meta', ...PROCESS_ROUTES],
  peer: ['/_oncekv/kv/{k}', '/_oncekv/ping', '/_oncekv/{k}', '/kv/{k}'],
  admin: [
    '/',
    '/caches',
    '/dbs',
    '/caches/join',
    '/caches/leave',
    '/overview',
    '/history',
    '/api/lookup/{k}',
    '/api/put',
    '/api/info',
    '/api/login',
    '/api/logout',
    '/ws/caches',
    '/ws/dbs',
    '/ws/overview',
    '/assets/{k}',
    ...PROCESS_ROUTES,
  ],
}

const TRICKY_KEYS = [
  '',
  '.',
  '..',
  '../..',
  '../../etc/passwd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e',
  '%2F',
  '%zz',
  '%',
  '%c3%28',
  '%ff%fe',
  '%00',
  '%ed%a0%80',
  'a%2Fb',
  'a/../b',
  'a//b',
  '\u00e9',
  '%C3%A9',
  '\u{1f600}',
  'k'.repeat(1024),
  'k'.repeat(1025),
  '%41'.repeat(1025),
  'k'.repeat(5000),
  'present',
]

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/octet-stream',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'garbage',
  '',
]

/** percentEncodeSome percent-encodes a key one way or another (or not at all). */
const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TRICKY_KEYS) },
  {
    weight: 3,
    arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => encodeURIComponent(s)),
  },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 900, max: 4200 }).map((n) => 'x'.repeat(n)),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.constantFrom('a', '/', '.', '%', '%2e', '%2f', '..', '~', '+', ' '), {
        maxLength: 30,
      })
      .map((parts) => parts.join('')),
  },
)

const queryArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '?consistency=stale',
      '?consistency=linearizable',
      '?consistency=',
      '?consistency=bogus',
      '?consistency=stale&consistency=linearizable',
      '?consistency[]=stale',
      '?',
      '?%zz=1',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => `?${s}`) },
)

const pathArb = (kind: Target['kind']): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.constantFrom(...ROUTES[kind]), keyArb, queryArb)
        .map(([route, key, q]) => route.replace('{k}', key) + q),
    },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.oneof(fc.string({ maxLength: 12 }), keyArb), { minLength: 1, maxLength: 4 })
        .map((parts) => `/${parts.join('/')}`),
    },
    { weight: 1, arbitrary: fc.constantFrom('*', '//', '/%', 'http://evil.example/keys/x', '') },
  )

const methodArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'CONNECT', 'PROPFIND', 'get', 'BREW') },
)

const jsonishArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(
    {
      key: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...TRICKY_KEYS), fc.jsonValue()),
      value: fc.oneof(fc.string({ maxLength: 64 }), fc.jsonValue({ maxDepth: 2 })),
    },
    { requiredKeys: [] },
  ),
  fc.record(
    {
      id: fc.oneof(fc.string({ maxLength: 12 }), fc.integer()),
      http: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('127.0.0.1:1')),
      raft: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('256.0.0.1:99999')),
      to: fc.string({ maxLength: 8 }),
      peer: fc.string({ maxLength: 20 }),
      peers: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
      dbs: fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
)

const bodyArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  {
    weight: 4,
    arbitrary: jsonishArb.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        '{',
        '{"key":',
        '{"key":"a","value":"b"',
        '{"key":"a","value":"b"}garbage',
        '{"key":"\\ud800","value":"x"}',
        '{"__proto__":{"polluted":1},"key":"proto","value":"x"}',
        '{"constructor":{"prototype":{"x":1}}}',
        '[]',
        'null',
        '"just a string"',
        '1e309',
      )
      .map((s) => Buffer.from(s)),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 100, max: 20_000 })
      .map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      Buffer.from([0x7b, 0x22, 0x6b, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"k":"<bad>"}
      Buffer.from([0xff, 0xfe, 0xfd]),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 60_000, max: 2_200_000 }).map((n) => Buffer.alloc(n, 0x61)),
  },
  // Around the fuzzed member's value limit (64 KiB in the tests): at it, and one byte over.
  {
    weight: 1,
    arbitrary: fc.constantFrom(65_535, 65_536, 65_537).map((n) => Buffer.alloc(n, 0x62)),
  },
)

/** headerArb draws hostile or odd headers; with tokens, also every token as a Bearer header
 * (and in a session cookie), so that a protected system's routes are reached past their
 * guard as well as refused. */
const headerArb = (tokens: readonly string[]): fc.Arbitrary<readonly [string, string]> =>
  fc.oneof(
    ...(tokens.length > 0
      ? [
          fc.constantFrom(...tokens).map((t) => ['authorization', `Bearer ${t}`] as const),
          fc.constantFrom(...tokens).map((t) => ['cookie', `oncekv_session=${t}`] as const),
        ]
      : []),
    fc.constantFrom(
      ['origin', 'http://evil.example'] as const,
      ['x-oncekv-forwarded-by', 'n9'] as const,
      ['if-none-match', '*'] as const,
      ['if-none-match', 'W/"x", "y"'] as const,
      ['accept-encoding', 'gzip, br'] as const,
      ['expect', '100-continue'] as const,
      ['transfer-encoding', 'gzip'] as const,
      ['upgrade', 'websocket'] as const,
      ['connection', 'upgrade'] as const,
      ['sec-websocket-version', '13'] as const,
      ['sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ=='] as const,
      ['authorization', 'Bearer nope'] as const,
      ['x-long', 'y'.repeat(20_000)] as const,
    ),
    fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.stringMatching(/^[ -~]{0,40}$/)),
  )

/** requestArb generates requests to targets (tokens: Bearer tokens to send now and then). */
export function requestArb(
  targets: readonly Target[],
  tokens: readonly string[] = [],
): fc.Arbitrary<FuzzRequest> {
  return fc
    .integer({ min: 0, max: targets.length - 1 })
    .chain((target) =>
      fc.record({
        target: fc.constant(target),
        method: methodArb,
        path: pathArb((targets[target] as Target).kind),
        contentType: fc.constantFrom(...CONTENT_TYPES),
        headers: fc.array(headerArb(tokens), { maxLength: 3 }),
        body: bodyArb,
      }),
    )
    .map(({ target, method, path, contentType, headers, body }) => ({
      target,
      method,
      path,
      headers: contentType ? [['content-type', contentType] as const, ...headers] : headers,
      body,
    }))
}

/** describe shows a request compactly, for failure reports and replay. */
export function describeRequest(targets: readonly Target[], r: FuzzRequest): string {
  const t = targets[r.target] as Target
  const body =
    r.body === undefined
      ? 'no body'
      : `${r.body.byteLength} B body ${JSON.stringify(Buffer.from(r.body.subarray(0, 80)).toString('latin1'))}`
  const headers = r.headers.map(([k, v]) => `${k}: ${v.slice(0, 60)}`).join('; ')
  return `${t.name}: ${r.method} ${r.path.slice(0, 200)}${r.path.length > 200 ? '…' : ''} [${headers}] ${body}`
}

/** send writes the request over a fresh TCP connection and reads the answer to the end. */
export function send(address: string, r: FuzzRequest, timeoutMs = 15_000): Promise<RawAnswer> {
  const [host, port] = splitAddress(address)
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('data', (c) => {
      chunks.push(c)
      // The connection may stay open (a WebSocket handshake that succeeded, a keep-alive
      // answer to a large upload): stop reading once the answer is complete.
      if (answerComplete(Buffer.concat(chunks), r.method === 'HEAD')) socket.destroy()
    })
    // The server may answer and close before it has read the whole body (413, say): the
    // answer is what counts, so write errors are ignored and the answer parsed at the end.
    let socketError = ''
    socket.on('error', (e: NodeJS.ErrnoException) => {
      socketError ||= e.code ?? e.message
    })
    socket.on('close', () => {
      clearTimeout(timer)
      const raw = Buffer.concat(chunks)
      try {
        resolve(parseAnswer(raw))
      } catch (e) {
        reject(socketError ? new Error(`${(e as Error).message} (${socketError})`) : e)
      }
    })
    // Half of the large uploads go on a keep-alive connection, as HTTP clients send them;
    // the other half ask for the connection to close, where a server that answers early must
    // close lingering (reading the rest) or the client sees a reset instead of the answer.
    const keepAlive =
      r.body !== undefined && r.body.byteLength > 64 * 1024 && r.body.byteLength % 2 === 0
    const lines = [`${r.method} ${r.path} HTTP/1.1`, `host: ${address}`]
    if (!keepAlive) lines.push('connection: close')
    for (const [k, v] of r.headers) lines.push(`${k}: ${v}`)
    if (r.body !== undefined) lines.push(`content-length: ${r.body.byteLength}`)
    socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'))
    // No half-close after the request: Node's server ends a half-closed connection before an
    // answer that takes a moment (any read through a cache) is written.
    if (r.body !== undefined) socket.write(r.body)
  })
}

/** answerComplete tells whether raw holds a whole answer (past any interim 1xx). */
function answerComplete(raw: Buffer, head: boolean): boolean {
  let a: RawAnswer
  try {
    a = parseAnswer(raw)
  } catch {
    return false
  }
  if (a.status === 101 || a.status === 204 || a.status === 304 || head) return true
  if (a.headers['transfer-encoding']?.includes('chunked'))
    return raw.subarray(-5).toString() === '0\r\n\r\n'
  const length = a.headers['content-length']
  if (length === undefined) return false
  return a.body.byteLength >= Number(length)
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':')
  return [address.slice(0, i), Number(address.slice(i + 1))]
}

/** parseAnswer reads status, headers and body (content-length, chunked, or to the end). */
export function parseAnswer(raw: Buffer): RawAnswer {
  // Interim answers (100 Continue) come first: skip them.
  while (/^HTTP\/1\.[01] 1(?!01)\d\d/.test(raw.subarray(0, 12).toString('latin1'))) {
    const next = raw.indexOf('\r\n\r\n')
    if (next < 0) break
    raw = raw.subarray(next + 4)
  }
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) {
    throw new Error(
      raw.byteLength === 0
        ? 'the connection closed without an answer'
        : `a broken answer: ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`,
    )
  }
  const head = raw.subarray(0, end).toString('latin1').split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')
  if (!m) throw new Error(`a broken status line: ${JSON.stringify(head[0])}`)
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  let body = raw.subarray(end + 4)
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body)
  else if (headers['content-length'] !== undefined)
    body = body.subarray(0, Number(headers['content-length']))
  return { status: Number(m[1]), headers, body }
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = []
  let i = 0
  for (;;) {
    const eol = b.indexOf('\r\n', i)
    if (eol < 0) break
    const size = parseInt(b.subarray(i, eol).toString('latin1'), 16)
    if (!(size > 0)) break
    out.push(b.subarray(eol + 2, eol + 2 + size))
    i = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}

/** problemOf is what is wrong with an answer, or undefined when it is fine. */
export function problemOf(r: FuzzRequest, a: RawAnswer): string | undefined {
  if (a.status >= 500 && a.status !== 503) return `answered ${a.status}`
  if (a.status < 400 || r.method === 'HEAD') return undefined
  if (a.status === 101) return undefined
  const type = a.headers['content-type'] ?? ''
  if (!type.startsWith('application/json')) return `error ${a.status} with content-type "${type}"`
  let body: unknown
  try {
    body = JSON.parse(a.body.toString('utf8'))
  } catch {
    return `error ${a.status} with a body that is not JSON`
  }
  const o = body as { code?: unknown; error?: unknown }
  if (typeof o !== 'object' || o === null || typeof o.code !== 'number')
    return `error ${a.status} without a numeric code: ${a.body.toString('utf8').slice(0, 200)}`
  if (typeof o.error !== 'string') return `error ${a.status} without an error name`
  return undefined
}

/** createdBy tells whether an answer reports a key created. */
export function createdBy(t: Target, r: FuzzRequest, a: RawAnswer): boolean {
  if (t.kind === 'db' && r.method === 'PUT' && a.status === 201) return true
  if (a.status !== 200 || !a.headers['content-type']?.startsWith('application/json')) return false
  let body: unknown
  try {
    body = JSON.parse(a.body.toString('utf8'))
  } catch {
    return false
  }
  const o = body as { created?: unknown; outcome?: unknown }
  if (t.kind === 'db' && r.method === 'POST') return o.created === true
  if (t.kind === 'admin' && r.method === 'POST') return o.outcome === 'created'
  return false
}

/** runFuzz sends runs requests drawn from seed to targets and checks each answer. */
export async function runFuzz(opts: {
  readonly targets: readonly Target[]
  readonly seed: number
  readonly runs: number
  /** tokens are sent now and then as Bearer tokens (a protected system). */
  readonly tokens?: readonly string[]
  readonly onProgress?: (report: FuzzReport) => void
}): Promise<FuzzReport> {
  const report: FuzzReport = {
    requests: 0,
    byStatus: {},
    byTarget: {},
    created: 0,
    failures: [],
  }
  const samples = fc.sample(requestArb(opts.targets, opts.tokens), {
    seed: opts.seed,
    numRuns: opts.runs,
  })
  for (const r of samples) {
    const t = opts.targets[r.target] as Target
    report.requests++
    report.byTarget[t.name] = (report.byTarget[t.name] ?? 0) + 1
    let a: RawAnswer
    try {
      a = await send(t.address, r)
    } catch (e) {
      report.failures.push(`${(e as Error).message}: ${describeRequest(opts.targets, r)}`)
      continue
    }
    report.byStatus[a.status] = (report.byStatus[a.status] ?? 0) + 1
    const problem = problemOf(r, a)
    if (problem) report.failures.push(`${problem}: ${describeRequest(opts.targets, r)}`)
    if (createdBy(t, r, a)) report.created++
    if (report.requests % 500 === 0) opts.onProgress?.(report)
  }
  return report
}

/** FUZZ_SECRETS are the tokens and the cluster secret of the protected system. */
export const FUZZ_SECRETS = {
  ONCEKV_WRITE_TOKEN: 'fuzz-write-token-0123456789abcdef',
  ONCEKV_READ_TOKEN: 'fuzz-read-token-0123456789abcdef',
  ONCEKV_ADMIN_TOKEN: 'fuzz-admin-token-0123456789abcdef',
  ONCEKV_CLUSTER_SECRET: 'fuzz-cluster-secret-0123456789abcdef',
} as const

/** startFuzzSystem starts, on a one-member cluster, the admin and a cache node, writes one
 * key, and gives the four listeners to fuzz and the member (whose keys are counted). With
 * env (the cluster's own, e.g. FUZZ_SECRETS), the admin and the cache get it too. */
export async function startFuzzSystem(
  cluster: Cluster,
  env?: Readonly<Record<string, string>>,
): Promise<{
  targets: Target[]
  member: DbProcess
  processes: { running: boolean; id: string }[]
}> {
  const member = cluster.running()[0]
  if (!member) throw new Error('no member started')
  const admin = await cluster.startAdmin([], env)
  const [cache] = await cluster.startCaches(1, env ? { env } : {})
  if (!cache) throw new Error('no cache node started')
  const write = env?.ONCEKV_WRITE_TOKEN
  const put = await member.request('/keys/present', {
    method: 'PUT',
    body: 'present value',
    headers: write ? { authorization: `Bearer ${write}` } : {},
  })
  if (put.status !== 201) throw new Error(`the first write answered ${put.status}`)
  const host = (url: string): string => new URL(url).host
  const targets: Target[] = [
    { name: member.id, kind: 'db', address: host(member.url) },
    { name: `${cache.id} client`, kind: 'cache', address: host(cache.url) },
    { name: `${cache.id} peer`, kind: 'peer', address: host(cache.peerUrl) },
    { name: 'admin', kind: 'admin', address: host(admin.url) },
  ]
  return { targets, member, processes: [member, cache, admin] }
}
