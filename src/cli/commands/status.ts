// `oncekv status`: a table of the system's nodes (kind, id, URL, role, health, keys, cache
// use). With an admin, from its GET /overview; with --db (and --cache) lists, from the
// members' GET /cluster and every node's GET /stats.
import type { Command } from 'commander'
import {
  memberUrl,
  type AdminOverview,
  type CacheNodeStats,
  type ClusterResponse,
  type DbStats,
  type OverviewNode,
} from '../../protocol/index.ts'
import {
  addClientFlags,
  clientOptions,
  fail,
  refusal,
  tlsHint,
  type FetchFn,
  where,
  writeOut,
  type ClientFlags,
} from './client-flags.ts'

interface StatusFlags extends ClientFlags {
  json?: boolean
}

/** Row is one node in the table. */
interface Row {
  readonly kind: 'db' | 'cache'
  readonly id: string
  readonly url: string
  readonly role: string
  readonly health: string
  readonly keys: number | null
  /** cacheBytes and cacheLimit: main + hot bytes and --cache-bytes (caches only). */
  readonly cacheBytes: number | null
  readonly cacheLimit: number | null
}

/** registerStatus adds the status command. */
export function registerStatus(program: Command): void {
  addClientFlags(
    program
      .command('status')
      .description('show every node: kind, id, URL, role, health, keys and cache use')
      .option('--json', 'print the rows as JSON'),
  ).action(async (flags: StatusFlags) => {
    const opts = clientOptions(flags, 'status', 'read')
    auth = opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}
    let view: View
    try {
      const f = (opts.fetch as FetchFn | undefined) ?? globalThis.fetch
      view = opts.admin
        ? await fromAdmin(opts.admin, flags.timeout, f)
        : await fromNodes(opts.dbs ?? [], opts.caches ?? [], flags.timeout, f)
    } catch (e) {
      if (e instanceof RefusedError)
        fail('status', refusal(e.status, 'read', opts.token !== undefined) ?? e.message)
      fail('status', tlsHint(`cannot reach ${where(opts)}: ${(e as Error).message}`))
    }
    const { header, rows, unreachable } = view
    await writeOut(flags.json ? JSON.stringify(rows, null, 2) + '\n' : `${header}\n${table(rows)}`)
    // The rows are printed either way (the caches that answered); stderr and the exit code
    // say that no database member could be reached.
    if (unreachable !== undefined) fail('status', unreachable)
  })
}

/** View is what status shows: a header line and the rows; unreachable says why no database
 * member answered, when none did. */
interface View {
  readonly header: string
  readonly rows: Row[]
  readonly unreachable?: string
}

async function fromAdmin(admin: string, timeoutMs: number, f: FetchFn): Promise<View> {
  const o = await getJson<AdminOverview>(f, `${admin}/overview`, timeoutMs)
  const rows = o.nodes.map(rowOfOverview)
  const header =
    (o.leader ? `leader ${o.leader}, term ${o.term}` : 'no leader known') +
    `; ${round(o.cluster.ops_per_s)} ops/s (${round(o.cluster.writes_per_s)} writes/s)`
  return { header, rows }
}

/** dbRole is a member's ROLE: leader, follower or learner while it answers; for one that is
 * down only what the configuration says (voter or learner), as its role is not known. */
export function dbRole(leader: boolean, suffrage: string | null, health: string): string {
  if (health === 'down') return suffrage === 'learner' ? 'learner' : 'voter'
  return leader ? 'leader' : suffrage === 'learner' ? 'learner' : 'follower'
}

function rowOfOverview(n: OverviewNode): Row {
  if (n.kind === 'db') {
    const s = n.stats as DbStats | null
    return {
      kind: 'db',
      id: n.id,
      url: n.url,
      role: dbRole(n.leader, n.suffrage, n.health),
      health: n.health,
      keys: s?.keys ?? null,
      cacheBytes: null,
      cacheLimit: null,
    }
  }
  return cacheRow(n.url, n.health, n.stats as CacheNodeStats | null, n.id)
}

async function fromNodes(
  dbs: readonly string[],
  caches: readonly string[],
  timeoutMs: number,
  f: FetchFn,
): Promise<View> {
  let cluster: ClusterResponse | undefined
  let lastError = 'no --db member given'
  for (const url of dbs) {
    try {
      cluster = await getJson<ClusterResponse>(f, `${url}/cluster`, timeoutMs)
      break
    } catch (e) {
      if (e instanceof RefusedError) throw e
      lastError = `${url}: ${describe(e)}`
    }
  }
  if (!cluster && caches.length === 0) throw new Error(lastError)
  const members = cluster?.members ?? []
  const dbRows = await Promise.all(
    members.map(async (m): Promise<Row> => {
      // Every member serves the scheme of the --db URLs (one rule per cluster).
      const url = memberUrl(m.http, dbs[0] ?? 'http')
      const s = await getJson<DbStats>(f, `${url}/stats`, timeoutMs).catch(() => null)
      return {
        kind: 'db',
        id: m.id,
        url,
        role: dbRole(m.leader, m.suffrage, s ? 'up' : 'down'),
        health: s ? 'up' : 'down',
        keys: s?.keys ?? null,
        cacheBytes: null,
        cacheLimit: null,
      }
    }),
  )
  const cacheRows = await Promise.all(
    caches.map(async (url) => {
      const s = await getJson<CacheNodeStats>(f, `${url}/stats`, timeoutMs).catch(() => null)
      return cacheRow(url, s ? 'up' : 'down', s, new URL(url).host)
    }),
  )
  const unreachable = cluster ? undefined : `no database member answered (${lastError})`
  // Without a member's answer the table's first line says only that; why goes to stderr.
  const header = cluster?.leader
    ? `leader ${cluster.leader}, term ${cluster.term}`
    : 'no leader known'
  return { header, rows: [...dbRows, ...cacheRows], unreachable }
}

function cacheRow(url: string, health: string, s: CacheNodeStats | null, id: string): Row {
  return {
    kind: 'cache',
    id,
    url,
    role: '-',
    health,
    keys: s ? s.main_items + s.hot_items : null,
    cacheBytes: s ? s.main_bytes + s.hot_bytes : null,
    cacheLimit: s?.cache_bytes_limit ?? null,
  }
}

/** table lays rows out in aligned columns. */
function table(rows: readonly Row[]): string {
  const head = ['KIND', 'ID', 'URL', 'ROLE', 'HEALTH', 'KEYS', 'CACHE USE']
  const cells = rows.map((r) => [
    r.kind,
    r.id,
    r.url,
    r.role,
    r.health,
    r.keys === null ? '-' : String(r.keys),
    r.cacheBytes === null || r.cacheLimit === null
      ? '-'
      : `${bytes(r.cacheBytes)} / ${bytes(r.cacheLimit)}` +
        (r.cacheLimit > 0 ? ` (${Math.round((100 * r.cacheBytes) / r.cacheLimit)}%)` : ''),
  ])
  const all = [head, ...cells]
  const widths = head.map((_, i) => Math.max(...all.map((c) => (c[i] as string).length)))
  return all
    .map(
      (c) =>
        c
          .map((v, i) => v.padEnd(widths[i] as number))
          .join('  ')
          .trimEnd() + '\n',
    )
    .join('')
}

/** bytes formats a byte count (1024-based units). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}

function round(n: number): number {
  return Math.round(n * 10) / 10
}

/** auth is the Authorization header status sends (the token, when it has one). */
let auth: Record<string, string> = {}

/** RefusedError is a 401 or 403: the token is missing or not one the node takes. */
class RefusedError extends Error {
  constructor(
    readonly status: number,
    url: string,
  ) {
    super(`GET ${url} answered ${status}`)
  }
}

async function getJson<T>(fetch: FetchFn, url: string, timeoutMs: number): Promise<T> {
  const res = await fetch(url, { headers: auth, signal: AbortSignal.timeout(timeoutMs) })
  if (res.status !== 200) {
    await res.arrayBuffer().catch(() => undefined)
    if (res.status === 401 || res.status === 403) throw new RefusedError(res.status, url)
    throw new Error(`GET ${url} answered ${res.status}`)
  }
  return (await res.json()) as T
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = (e as { cause?: unknown }).cause
  if (!(cause instanceof Error)) return e.message
  const code = (cause as { code?: unknown }).code
  return `${e.message} (${typeof code === 'string' ? code : cause.message})`
}
