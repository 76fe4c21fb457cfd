// `oncekv db`: run one database member until SIGTERM or SIGINT.
import type { Command } from 'commander'
import {
  DB_NODE_FLAGS,
  HEAP_FLAG,
  missingDbNodeFlags,
  setRuntimeHeapFlag,
  YOUNG_FLAG,
} from '../../db/node-flags.ts'
import type { DbNode } from '../../db/node.ts'
import type { LimitFlags } from '../../http/limits.ts'
import { KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT } from '../../protocol/index.ts'
import type { SecurityFlags } from '../../security/index.ts'
import {
  addServerOptions,
  batchWaitOption,
  intOption,
  keyBytesOption,
  limitsOption,
  runUntilSignal,
  serverSecurity,
  snapshotChunkBytesOption,
  urlListOption,
  valueBytesOption,
} from '../options.ts'

interface DbFlags extends SecurityFlags, LimitFlags {
  insecure?: boolean
  id: string
  http: string
  raft: string
  advertiseHttp?: string
  advertiseRaft?: string
  data: string
  join?: string[]
  cluster: string
  maxValueBytes: number
  maxKeyBytes: number
  tickMs: number
  electionTicks: number
  snapshotEntries: number
  batchWaitMs: number
  snapshotChunkBytes: number
  minFreeBytes: number
  logLevel: string
}

/** MIN_FREE_BYTES_DEFAULT is the store's default reserve (storage's MIN_FREE_BYTES_DEFAULT,
 * repeated here so that the CLI does not load LMDB for every command). */
const MIN_FREE_BYTES_DEFAULT = 64 * 1024 * 1024

/** BATCH_WAIT_MS_DEFAULT is the replica's default group-commit wait (db/replica.ts's
 * BATCH_WAIT_MS_DEFAULT, repeated here for the same reason). */
const BATCH_WAIT_MS_DEFAULT = 4

/** DB_SECRETS are the secrets a database member takes. */
const DB_SECRETS = ['write', 'read', 'admin', 'cluster'] as const

/** registerDb adds the db command. */
export function registerDb(program: Command): void {
  const cmd = program
    .command('db')
    .description('run a database member (Raft-replicated, durable)')
    .requiredOption('--id <id>', 'member id, unique in the cluster (e.g. n1)')
    .option('--http <host:port>', 'HTTP API address', '127.0.0.1:11000')
    .option('--raft <host:port>', 'peer transport address', '127.0.0.1:12000')
    .option('--advertise-http <host:port>', 'HTTP address other members reach (default --http)')
    .option('--advertise-raft <host:port>', 'peer address other members reach (default --raft)')
    .option('--data <dir>', 'data directory (default ./data/<id>)')
    .option(
      '--join <url...>',
      "join an existing cluster through any member's HTTP URL (repeatable, or comma-separated)",
      urlListOption,
    )
    .option('--cluster <name>', 'cluster name; peers of another cluster are refused', 'oncekv')
    .option(
      '--max-value-bytes <n>',
      'largest value accepted (at most 16 MiB)',
      valueBytesOption,
      VALUE_BYTES_MAX_DEFAULT,
    )
    .option(
      '--max-key-bytes <n>',
      'longest key accepted, in UTF-8 bytes (at most 1024; over it: 413)',
      keyBytesOption,
      KEY_BYTES_MAX,
    )
    .option('--tick-ms <n>', 'Raft tick length in ms', intOption, 50)
    .option('--election-ticks <n>', 'minimum election timeout in ticks', intOption, 10)
    .option(
      '--snapshot-entries <n>',
      'compact the log after this many applied entries',
      intOption,
      10_000,
    )
    .option(
      '--batch-wait-ms <n>',
      'group commit: how long the leader waits, after answering writes, for their writers to send the next ones, so that these share one disk write (0: never; at most 1000)',
      batchWaitOption,
      BATCH_WAIT_MS_DEFAULT,
    )
    .option(
      '--snapshot-chunk-bytes <n>',
      'size of the chunks a snapshot is sent to a lagging member in (1 byte to 16 MiB)',
      snapshotChunkBytesOption,
      512 * 1024,
    )
    .option(
      '--min-free-bytes <n>',
      "free space kept on the data directory's disk: writes that would leave less answer 503 storage_unavailable until space returns",
      intOption,
      MIN_FREE_BYTES_DEFAULT,
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error', 'info')
  addServerOptions(cmd, DB_SECRETS).action(async (flags: DbFlags) => {
    const security = serverSecurity(program, 'db', flags, DB_SECRETS, ['--raft', flags.raft])
    // Started without the heap flag of DB_NODE_FLAGS (by hand, not by a launcher): its
    // run-time stand-in. V8 reads it at each full collection; set before the member starts, it
    // covers all of them. (The young generation's cap has none.)
    const heapFlag = setRuntimeHeapFlag(process.execArgv)
    // Loaded here, not at the top: the data commands (put, get…) start without them.
    const { DbNode } = await import('../../db/node.ts')
    const { DiskFailedError, DiskUnavailableError, StoreCorruptError, StoreIdentityError } =
      await import('../../storage/index.ts')
    let node: DbNode
    try {
      node = await DbNode.start(
        {
          id: flags.id,
          http: flags.http,
          raft: flags.raft,
          advertiseHttp: flags.advertiseHttp,
          advertiseRaft: flags.advertiseRaft,
          dataDir: flags.data ?? `./data/${flags.id}`,
          join: flags.join,
          clusterName: flags.cluster,
          maxValueBytes: flags.maxValueBytes,
          maxKeyBytes: flags.maxKeyBytes,
          tickMs: flags.tickMs,
          electionTicks: flags.electionTicks,
          snapshotEntries: flags.snapshotEntries,
          batchWaitMs: flags.batchWaitMs,
          snapshotChunkBytes: flags.snapshotChunkBytes,
          minFreeBytes: flags.minFreeBytes,
          logLevel: flags.logLevel,
          security,
          limits: limitsOption(flags),
        },
        (e) => {
          // A disk that failed under LMDB: exit at once, with EX_TEMPFAIL (the data file holds
          // its last commit; a restart once the disk is fixed recovers).
          if (e instanceof DiskFailedError) {
            console.error(`oncekv db: stopped: ${e.message}; restart once the disk is fixed`)
            process.exit(75)
          }
          console.error(`oncekv db: fatal: ${e.message}`)
          process.exit(1)
        },
        (e) => {
          console.error(`oncekv db: could not join: ${e.message}`)
          process.exit(1)
        },
      )
    } catch (e) {
      if (e instanceof StoreCorruptError) {
        console.error(
          `oncekv db: the data directory is damaged and will not be served:\n  ${e.message}`,
        )
        process.exit(2)
      }
      if (e instanceof DiskUnavailableError) {
        console.error(`oncekv db: cannot start: ${e.message}`)
        process.exit(e.problem === 'read_only' ? 2 : 1)
      }
      if (e instanceof StoreIdentityError) {
        console.error(`oncekv db: ${e.message}`)
        process.exit(2)
      }
      console.error(`oncekv db: could not start: ${(e as Error).message}`)
      process.exit(1)
    }
    const missing = missingDbNodeFlags(process.execArgv, process.env.NODE_OPTIONS)
    if (missing.length > 0) {
      const instead: string[] = []
      if (missing.includes(HEAP_FLAG)) {
        instead.push(
          heapFlag !== undefined
            ? `set ${heapFlag} instead, which does nearly as much`
            : 'kept the --heap-growing-percent given',
        )
      }
      if (missing.includes(YOUNG_FLAG)) {
        instead.push("runs with V8's young generation of 16 MiB per semi-space instead")
      }
      node.log.info(
        { event: 'node_flags', missing, set: heapFlag ?? null },
        `started without the Node.js flag${missing.length > 1 ? 's' : ''} ${missing.join(' ')} ` +
          `(node ${DB_NODE_FLAGS.join(' ')} bin/oncekv.js db ...): ${instead.join('; ')} ` +
          '(see src/db/node-flags.ts)',
      )
    }
    runUntilSignal('db', node.log, () => node.shutdown())
  })
}
