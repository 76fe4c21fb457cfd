// A member's stats for /stats and /ws/stats (the Raft names of the original), and its
// Prometheus metrics for /metrics (prom-client, one registry per member, no globals).
import { Histogram } from 'prom-client'
import { StatsRegistry } from '../http/metrics.ts'
import type { DbStats } from '../protocol/index.ts'
import type { Replica } from './replica.ts'

const STATE_NAMES = {
  leader: 'Leader',
  follower: 'Follower',
  candidate: 'Candidate',
  preCandidate: 'PreCandidate',
} as const

/** collectStats builds the stats object of a member. */
export function collectStats(
  replica: Replica,
  startedAt: number,
  counters: {
    readonly reads: number
    readonly notFound: number
    readonly writes: number
    readonly writesInFlight: number
    readonly corruptValues: number
  },
): DbStats {
  const s = replica.status()
  const store = replica.storeStats()
  const disk = replica.diskStats()
  return {
    id: s.id,
    state: STATE_NAMES[s.role],
    leader: s.leader,
    term: s.term,
    last_log_index: s.lastIndex,
    last_log_term: store.lastLogTerm,
    commit_index: s.commit,
    applied_index: s.applied,
    fsm_pending: Math.max(0, s.commit - s.applied),
    last_snapshot_index: store.snapshotIndex,
    last_snapshot_term: store.snapshotTerm,
    num_peers: s.conf.voters.filter((v) => v !== s.id).length,
    num_learners: s.conf.learners.length,
    last_contact: replica.lastContactMs(),
    pending_writes: replica.pendingWrites(),
    keys: store.keys,
    reads: counters.reads,
    reads_not_found: counters.notFound,
    writes: counters.writes,
    writes_in_flight: counters.writesInFlight,
    values_corrupt: counters.corruptValues,
    db_bytes: store.bytes,
    snapshots_installed: store.snapshotsInstalled,
    last_snapshot_chunks: store.lastSnapshotChunks,
    disk_writes: disk.writes,
    log_entries_written: disk.entries,
    disk_write_seconds: disk.seconds,
    uptime_seconds: Math.round((Date.now() - startedAt) / 1000),
    rss_bytes: process.memoryUsage.rss(),
    storage_error: replica.storageError() ?? null,
  }
}

/** DbMetrics renders a member's metrics in the Prometheus text format. */
export class DbMetrics extends StatsRegistry<DbStats> {
  private readonly latency: Histogram<'op'>

  constructor(stats: () => DbStats) {
    super(stats)
    this.gauge('oncekv_raft_term', 'Current Raft term.', (s) => s.term)
    this.gauge('oncekv_raft_is_leader', '1 if this member leads.', (s) =>
      s.state === 'Leader' ? 1 : 0,
    )
    this.gauge(
      'oncekv_raft_last_log_index',
      'Index of the last log entry.',
      (s) => s.last_log_index,
    )
    this.gauge('oncekv_raft_commit_index', 'Commit index.', (s) => s.commit_index)
    this.gauge('oncekv_raft_applied_index', 'Applied index.', (s) => s.applied_index)
    this.gauge('oncekv_raft_num_peers', 'Voting peers besides this member.', (s) => s.num_peers)
    this.gauge('oncekv_pending_writes', 'Writes waiting to apply.', (s) => s.pending_writes)
    this.gauge('oncekv_keys', 'Keys stored.', (s) => s.keys)
    this.gauge('oncekv_db_bytes', 'Bytes used by the store.', (s) => s.db_bytes)
    this.gauge(
      'oncekv_storage_unavailable',
      "1 while the data directory's disk refuses writes (full or read-only), else 0.",
      (s) => (s.storage_error ? 1 : 0),
    )
    this.counter('oncekv_reads_total', 'Key reads answered.', (s) => s.reads)
    this.counter(
      'oncekv_snapshots_installed_total',
      'Snapshots received from the leader and installed.',
      (s) => s.snapshots_installed,
    )
    this.counter(
      'oncekv_values_corrupt_total',
      'Reads and writes that found a stored value failing its checksum (never served).',
      (s) => s.values_corrupt,
    )
    this.counter(
      'oncekv_disk_writes_total',
      'Fsynced transactions of the Raft loop (log entries, term and vote, snapshots).',
      (s) => s.disk_writes,
    )
    this.counter(
      'oncekv_log_entries_written_total',
      'Log entries written by those transactions (entries per fsync: group commit).',
      (s) => s.log_entries_written,
    )
    this.counter(
      'oncekv_disk_write_seconds_total',
      'Time those transactions took, from queueing to durable.',
      (s) => s.disk_write_seconds,
    )
    this.counter(
      'oncekv_reads_not_found_total',
      'Key reads answered 404.',
      (s) => s.reads_not_found,
    )
    this.latency = new Histogram({
      name: 'oncekv_op_duration_seconds',
      help: 'Duration of database operations.',
      labelNames: ['op'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    })
  }

  /** startTimer starts timing one operation; call the result when it ends. */
  startTimer(op: string): () => void {
    const end = this.latency.startTimer({ op })
    return () => {
      end()
    }
  }
}
