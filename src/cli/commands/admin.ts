// `oncekv admin`: run the admin until SIGTERM or SIGINT.
import { Option, type Command } from 'commander'
import type { AdminNode, AdminOptions } from '../../admin/node.ts'
import type { LimitFlags } from '../../http/limits.ts'
import { VALUE_BYTES_MAX_DEFAULT } from '../../protocol/index.ts'
import type { Security, SecurityFlags } from '../../security/index.ts'
import {
  addServerOptions,
  intOption,
  limitsOption,
  originOption,
  runUntilSignal,
  serverSecurity,
  urlOption,
  valueBytesOption,
} from '../options.ts'

/** ADMIN_SECRETS are the secrets the admin takes. */
export const ADMIN_SECRETS = ['read', 'write', 'admin', 'cluster'] as const

/** ADMIN_HTTP_DEFAULT and ADMIN_DB_DEFAULT are the original's: the admin on 5546, following
 * the database through the first member's default address. */
export const ADMIN_HTTP_DEFAULT = '127.0.0.1:5546'
export const ADMIN_DB_DEFAULT = 'http://127.0.0.1:11000'

/** AdminFlags are the parsed flags of `oncekv admin`. */
export interface AdminFlags extends SecurityFlags, LimitFlags {
  insecure?: boolean
  http: string
  db?: string[]
  allowOrigin?: string[]
  heartbeatMs: number
  dropAfter: number
  maxValueBytes: number
  startedBy?: 'dev'
  logLevel: string
}

/** adminOptions turns the flags into the admin's options (defaults filled in). */
export function adminOptions(flags: AdminFlags, security: Security = {}): AdminOptions {
  return {
    http: flags.http,
    dbs: flags.db ?? [ADMIN_DB_DEFAULT],
    allowOrigins: flags.allowOrigin,
    heartbeatMs: Math.max(100, flags.heartbeatMs),
    dropAfterMisses: Math.max(1, flags.dropAfter),
    maxValueBytes: flags.maxValueBytes,
    ...(flags.startedBy ? { startedBy: flags.startedBy } : {}),
    logLevel: flags.logLevel,
    security,
    limits: limitsOption(flags),
  }
}

/** registerAdmin adds the admin command. */
export function registerAdmin(program: Command): void {
  const cmd = program
    .command('admin')
    .description('run the admin: cache membership, the database view, the dashboard')
    .option('--http <host:port>', 'address to serve on', ADMIN_HTTP_DEFAULT)
    .option(
      '--db <url...>',
      `database members to follow the cluster through (default ${ADMIN_DB_DEFAULT})`,
      urlOption,
    )
    .option(
      '--allow-origin <origin...>',
      'extra page origins allowed on the WebSockets and the dashboard API, and host names it answers to (e.g. https://ops.example.com)',
      originOption,
    )
    .option(
      '--heartbeat-ms <n>',
      'how often caches get the lists (each call times out just before the next)',
      intOption,
      1_000,
    )
    .option('--drop-after <n>', 'drop a cache after this many missed heartbeats', intOption, 3)
    .option(
      '--max-value-bytes <n>',
      "largest value the dashboard's put form sends: the members' --max-value-bytes",
      valueBytesOption,
      VALUE_BYTES_MAX_DEFAULT,
    )
    // `oncekv dev` says it started the admin, so the page's hints name it.
    .addOption(new Option('--started-by <what>').choices(['dev']).hideHelp())
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  addServerOptions(cmd, ADMIN_SECRETS, false).action(async (flags: AdminFlags) => {
    const security = serverSecurity(program, 'admin', flags, ADMIN_SECRETS)
    const { AdminNode } = await import('../../admin/node.ts')
    let node: AdminNode
    try {
      node = await AdminNode.start(adminOptions(flags, security))
    } catch (e) {
      console.error(`oncekv admin: could not start: ${(e as Error).message}`)
      process.exit(1)
    }
    runUntilSignal('admin', node.log, () => node.shutdown())
  })
}
