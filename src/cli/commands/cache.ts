// `oncekv cache`: run one cache node until SIGTERM or SIGINT.
import { setFlagsFromString } from 'node:v8'
import type { Command } from 'commander'
import { advertisedUrl, isUnspecifiedUrl } from '../../cache/advertise.ts'
import { CACHE_BYTES_DEFAULT } from '../../cache/lru.ts'
import { CACHE_NODE_FLAGS, setRuntimeYoungFlag } from '../../cache/node-flags.ts'
import type { CacheNode } from '../../cache/node.ts'
import { REPLICAS_DEFAULT } from '../../cache/ring.ts'
import { DB_TIMEOUT_DEFAULT_MS, PEER_TIMEOUT_MARGIN_MS } from '../../cache/timeouts.ts'
import { VALUE_BYTES_MAX_DEFAULT } from '../../protocol/index.ts'
import type { SecurityFlags } from '../../security/index.ts'
import {
  addServerOptions,
  intOption,
  limitsOption,
  oneUrlOption,
  runUntilSignal,
  serverSecurity,
  urlOption,
} from '../options.ts'
import type { LimitFlags } from '../../http/limits.ts'

/**
 * HEAP_GROWING_PERCENT_DEFAULT is how far a cache node lets V8's heap grow past what was live
 * after a full collection before it collects again. V8's own choice favours speed (it grows
 * the heap by 10 % to 300 %, more as allocation speeds up): under a read load the heap grew
 * to three or four times the live data, and the process kept those pages. V8 reads this flag
 * at each collection, so the cache command can set it after start (a heap size limit, such as
 * --max-old-space-size, is fixed when V8 starts, and at a limit the process would die rather
 * than slow down). Measured (30,000 keys of 100 B read twice through one node): resident
 * memory 142 MiB instead of 227 MiB, with the same server CPU per hit.
 */
export const HEAP_GROWING_PERCENT_DEFAULT = 10

/** CACHE_SECRETS are the secrets a cache node takes. */
const CACHE_SECRETS = ['read', 'write', 'admin', 'cluster'] as const

interface CacheFlags extends SecurityFlags, LimitFlags {
  insecure?: boolean
  http: string
  peer: string
  advertiseHttp?: string
  advertisePeer?: string
  admin?: string
  peers?: string[]
  db?: string[]
  cacheBytes: number
  replicas: number
  dbTimeoutMs: number
  hedgeMs: number
  peerTimeoutMs?: number
  maxValueBytes: number
  heapGrowingPercent: number
  logLevel: string
}

/** registerCache adds the cache command. */
export function registerCache(program: Command): void {
  const cmd = program
    .command('cache')
    .description('run a cache node (groupcache-style read-through cache of the database)')
    .option('--http <host:port>', 'client API address', '127.0.0.1:5551')
    .option(
      '--peer <host:port>',
      'peer protocol address (other cache nodes use it)',
      '127.0.0.1:5541',
    )
    .option(
      '--advertise-http <url>',
      'URL others reach the client API at (default: http:// and --http; needed with 0.0.0.0 or behind NAT)',
      oneUrlOption,
    )
    .option(
      '--advertise-peer <url>',
      'URL other cache nodes reach the peer protocol at (default: http:// and --peer)',
      oneUrlOption,
    )
    .option(
      '--admin <url>',
      'admin URL to join (it sends the peer and database lists)',
      oneUrlOption,
    )
    .option(
      '--peers <url...>',
      "other cache nodes' peer URLs, when running without an admin",
      urlOption,
    )
    .option(
      '--db <url...>',
      "database members' HTTP URLs (the admin's list replaces them)",
      urlOption,
    )
    .option(
      '--cache-bytes <n>',
      'bound of the memory of the main and hot caches (key + value bytes + 448-800 B per entry)',
      intOption,
      CACHE_BYTES_DEFAULT,
    )
    .option('--replicas <n>', 'points per node on the hash ring', intOption, REPLICAS_DEFAULT)
    .option(
      '--db-timeout-ms <n>',
      'bound of one fill from the database',
      intOption,
      DB_TIMEOUT_DEFAULT_MS,
    )
    .option(
      '--hedge-ms <n>',
      'ask a second database member when the first is this slow',
      intOption,
      100,
    )
    .option(
      '--peer-timeout-ms <n>',
      `bound of one fetch from the owner peer (default: --db-timeout-ms + ${PEER_TIMEOUT_MARGIN_MS}, so an owner still reading the database is not given up on)`,
      intOption,
    )
    .option(
      '--max-value-bytes <n>',
      'largest value accepted from a peer or the database',
      intOption,
      VALUE_BYTES_MAX_DEFAULT,
    )
    .option(
      '--heap-growing-percent <n>',
      "how far the JavaScript heap may grow past its live size before a full collection (0: V8's own choice, which favours speed over memory)",
      intOption,
      HEAP_GROWING_PERCENT_DEFAULT,
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  addServerOptions(cmd, CACHE_SECRETS).action(async (flags: CacheFlags) => {
    const security = serverSecurity(program, 'cache', flags, CACHE_SECRETS, ['--peer', flags.peer])
    if (!flags.admin && (flags.db ?? []).length === 0) {
      program.error('oncekv cache: give --admin, or --db (and --peers) to run without one', {
        exitCode: 2,
      })
    }
    const unreachable =
      unreachableAdvertised('--http', flags.http, '--advertise-http', flags.advertiseHttp) ??
      unreachableAdvertised('--peer', flags.peer, '--advertise-peer', flags.advertisePeer)
    if (unreachable) program.error(`oncekv cache: ${unreachable}`, { exitCode: 2 })
    if (flags.heapGrowingPercent > 0)
      setFlagsFromString(`--heap-growing-percent=${flags.heapGrowingPercent}`)
    // Started without CACHE_NODE_FLAGS (by hand, not by a launcher): their run-time stand-in.
    const youngFlag = setRuntimeYoungFlag(process.execArgv, process.env.NODE_OPTIONS)
    const { CacheNode } = await import('../../cache/node.ts')
    let node: CacheNode
    try {
      node = await CacheNode.start({
        http: flags.http,
        peer: flags.peer,
        advertiseHttp: flags.advertiseHttp,
        advertisePeer: flags.advertisePeer,
        admin: flags.admin,
        peers: flags.peers,
        dbs: flags.db,
        cacheBytes: flags.cacheBytes,
        replicas: flags.replicas,
        dbTimeoutMs: flags.dbTimeoutMs,
        hedgeMs: flags.hedgeMs,
        peerTimeoutMs: flags.peerTimeoutMs,
        maxValueBytes: flags.maxValueBytes,
        logLevel: flags.logLevel,
        security,
        limits: limitsOption(flags),
      })
    } catch (e) {
      console.error(`oncekv cache: could not start: ${(e as Error).message}`)
      process.exit(1)
    }
    if (youngFlag !== undefined)
      node.log.info(
        { event: 'node_flags', missing: CACHE_NODE_FLAGS, set: youngFlag },
        `started without the Node.js flag ${CACHE_NODE_FLAGS.join(' ')}: set ${youngFlag} ` +
          'instead (see src/cache/node-flags.ts)',
      )
    runUntilSignal('cache', node.log, () => node.shutdown())
  })
}

/**
 * unreachableAdvertised says why the URL a listener would be advertised under cannot be used
 * by others (its host is 0.0.0.0 or ::, which a server may listen on but nobody can connect
 * to), or undefined when it can.
 */
function unreachableAdvertised(
  listenFlag: string,
  listen: string,
  advertiseFlag: string,
  advertise: string | undefined,
): string | undefined {
  const url = advertisedUrl(listen, advertise)
  if (!isUnspecifiedUrl(url)) return undefined
  if (advertise !== undefined)
    return `${advertiseFlag} ${advertise} is no address others can reach: give the host name or IP address they use`
  const port = /:(\d+)$/.exec(listen)?.[1] ?? '<port>'
  return (
    `${listenFlag} ${listen} listens on every interface, but other nodes need an address to ` +
    `reach it: give ${advertiseFlag} http://<host>:${port} (the host name or IP address they use)`
  )
}
