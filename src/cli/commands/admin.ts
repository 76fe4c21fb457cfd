// `oncekv admin`: run the admin until SIGTERM or SIGINT.
import type { Command } from 'commander'
import type { AdminNode } from '../../admin/node.ts'
import { intOption, originOption, runUntilSignal, urlOption } from '../options.ts'

interface AdminFlags {
  http: string
  db?: string[]
  allowOrigin?: string[]
  heartbeatMs: number
  dropAfter: number
  logLevel: string
}

/** registerAdmin adds the admin command. */
export function registerAdmin(program: Command): void {
  program
    .command('admin')
    .description('run the admin: cache membership, the database view, the dashboard')
    .option('--http <host:port>', 'address to serve on', '127.0.0.1:5546')
    .option(
      '--db <url...>',
      'database members to follow the cluster through (default http://127.0.0.1:11000)',
      urlOption,
    )
    .option(
      '--allow-origin <origin...>',
      'extra page origins allowed on the WebSockets and the dashboard API (e.g. https://ops.example.com)',
      originOption,
    )
    .option(
      '--heartbeat-ms <n>',
      'how often caches get the lists (each call times out just before the next)',
      intOption,
      1_000,
    )
    .option('--drop-after <n>', 'drop a cache after this many missed heartbeats', intOption, 3)
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
    .action(async (flags: AdminFlags) => {
      const { AdminNode } = await import('../../admin/node.ts')
      let node: AdminNode
      try {
        node = await AdminNode.start({
          http: flags.http,
          dbs: flags.db ?? ['http://127.0.0.1:11000'],
          allowOrigins: flags.allowOrigin,
          heartbeatMs: Math.max(100, flags.heartbeatMs),
          dropAfterMisses: Math.max(1, flags.dropAfter),
          logLevel: flags.logLevel,
        })
      } catch (e) {
        console.error(`oncekv admin: could not start: ${(e as Error).message}`)
        process.exit(1)
      }
      runUntilSignal('admin', node.log, () => node.shutdown())
    })
}
