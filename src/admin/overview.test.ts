// A member's lag on the dashboard: replication (entries of the leader's log it does not hold
// yet) and apply (entries it knows committed but has not applied), apart.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DbStats } from '../protocol/index.ts'
import { lagOf } from './overview.ts'

function stats(id: string, last: number, commit: number, applied: number): DbStats {
  return {
    id,
    state: id === 'n1' ? 'Leader' : 'Follower',
    leader: 'n1',
    term: 2,
    last_log_index: last,
    last_log_term: 2,
    commit_index: commit,
    applied_index: applied,
    fsm_pending: commit - applied,
    last_snapshot_index: 0,
    last_snapshot_term: 0,
    num_peers: 2,
    num_learners: 0,
    last_contact: 0,
    pending_writes: 0,
    keys: 0,
    reads: 0,
    reads_not_found: 0,
    values_corrupt: 0,
    writes: 0,
    writes_in_flight: 0,
    db_bytes: 0,
    snapshots_installed: 0,
    last_snapshot_chunks: 0,
    disk_writes: 0,
    log_entries_written: 0,
    disk_write_seconds: 0,
    uptime_seconds: 1,
    rss_bytes: 1,
  }
}

describe('lagOf', () => {
  const leader = stats('n1', 120, 118, 110)

  it('tells replication lag and apply lag apart', () => {
    // n2 holds 100 entries of the leader's 120, knows 95 committed and applied 90.
    assert.deepEqual(lagOf(stats('n2', 100, 95, 90), leader), { replication: 20, apply: 5 })
    // Caught up in its log, behind in applying.
    assert.deepEqual(lagOf(stats('n3', 120, 118, 60), leader), { replication: 0, apply: 58 })
  })

  it("is the leader's own apply lag, and no replication lag, on the leader", () => {
    assert.deepEqual(lagOf(leader, leader), { replication: 0, apply: 8 })
  })

  it('has no replication lag without a known leader, and never a negative one', () => {
    assert.deepEqual(lagOf(stats('n2', 100, 100, 100), undefined), { replication: null, apply: 0 })
    // A follower's log can run ahead of a leader's last sample (the samples are not taken at
    // one instant).
    assert.deepEqual(lagOf(stats('n2', 125, 118, 118), leader), { replication: 0, apply: 0 })
  })
})
