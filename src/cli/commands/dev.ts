// `oncekv dev`: a whole local system in one command, until Ctrl-C.
import type { Command } from 'commander'
import type { DevCluster } from '../../dev/dev.ts'
import { intOption } from '../options.ts'

interface DevFlags {
  nodes: number
  caches: number
  data: string
  fresh?: boolean
  logLevel: string
  stopTimeoutMs: number
}

/** registerDev adds the dev command. */
export function registerDev(program: Command): void {
  program
    .command('dev')
    .description(
      'start a local system: database members, cache nodes and the admin with its dashboard',
    )
    .option('--nodes <n>', 'database members', intOption, 3)
    .option('--caches <n>', 'cache nodes', intOption, 3)
    .option('--data <dir>', 'folder for every data directory and log', './data/dev')
    .option('--fresh', 'delete the folder first and start an empty system')
    .option('--log-level <level>', "the processes' log level", 'info')
    .option(
      '--stop-timeout-ms <n>',
      'on Ctrl-C, how long each process gets to stop before it is killed',
      intOption,
      15_000,
    )
    .action(async (flags: DevFlags) => {
      if (flags.nodes < 1) program.error('oncekv dev: --nodes must be at least 1', { exitCode: 2 })
      const { DevCluster } = await import('../../dev/dev.ts')
      // Signals are handled from the start: one during start-up interrupts it (what was
      // started is stopped); later, it stops everything.
      const interrupt = new AbortController()
      let dev: DevCluster | undefined
      let signals = 0
      const stop = (): void => {
        if (++signals > 1) return
        if (!dev) {
          interrupt.abort()
          return
        }
        const running = dev
        console.log(
          '\noncekv dev: stopping (caches and the admin, then the followers, then the leader)…',
        )
        running.stop().then(
          (killed) => {
            if (killed.length === 0) {
              console.log('oncekv dev: stopped.')
              process.exit(0)
            }
            // A member killed mid-stop is safe (Raft), but it is not the clean stop Ctrl-C
            // promises: say so, and exit non-zero.
            console.error(
              `oncekv dev: ${killed.join(', ')} did not stop within ${flags.stopTimeoutMs / 1000} s and ${killed.length === 1 ? 'was' : 'were'} killed; see the logs in ${running.dataDir}/logs`,
            )
            process.exit(1)
          },
          (e: unknown) => {
            console.error(`oncekv dev: stopping failed: ${(e as Error).message}`)
            process.exit(1)
          },
        )
      }
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, stop)
      try {
        dev = await DevCluster.start({
          nodes: flags.nodes,
          caches: flags.caches,
          data: flags.data,
          fresh: flags.fresh ?? false,
          logLevel: flags.logLevel,
          stopTimeoutMs: flags.stopTimeoutMs,
          signal: interrupt.signal,
        })
      } catch (e) {
        console.error(`oncekv dev: ${(e as Error).message}`)
        process.exit(1)
      }
      console.log(`oncekv dev: up.${dev.describe()}`)
    })
}
