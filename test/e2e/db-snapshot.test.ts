// End to end: a member stopped long enough that the leader compacted its log past the
// member's last entry catches up by snapshot when it comes back (the cluster runs with a
// small --snapshot-entries, and a small --snapshot-chunk-bytes so that the snapshot comes in
// many chunks), while clients go on writing, and then holds every key.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { useClusters } from './hooks.ts'
import { readBack, startWriteLoad, summarize } from './load.ts'

const SNAPSHOT_ENTRIES = 50
// About 45 bytes a pair: the 440 pairs of the test take some 20 chunks.
const SNAPSHOT_CHUNK_BYTES = 1024

describe('catch-up by snapshot', () => {
  const clusters = useClusters()

  it('brings a member back whose log was compacted away, with every key', async (t) => {
    const cluster = await clusters.start({
      name: 'snapshot',
      size: 3,
      snapshotEntries: SNAPSHOT_ENTRIES,
      extraArgs: ['--snapshot-chunk-bytes', String(SNAPSHOT_CHUNK_BYTES)],
    })
    const urls = (): string[] => cluster.running().map((n) => n.url)
    const early = await startWriteLoad({
      targets: urls,
      clients: 4,
      durationMs: 5_000,
      maxWritesPerClient: 10,
      keyPrefix: 'early',
    }).done
    assert.equal(early.acked.size, 40, summarize(early))
    assert.equal(early.internalErrors + early.unavailable, 0, summarize(early))

    const { node: leader } = await cluster.leader()
    const lagger = cluster.running().find((n) => n !== leader)
    assert(lagger)
    await cluster.waitCaughtUp([lagger.id])
    await cluster.kill(lagger.id)
    const before = await leader.stats()

    // Many more entries than one compaction interval while the member is down.
    const late = await startWriteLoad({
      targets: urls,
      clients: 16,
      durationMs: 10_000,
      maxWritesPerClient: 25,
      keyPrefix: 'late',
    }).done
    t.diagnostic(`while ${lagger.id} was down: ${summarize(late)}`)
    assert.equal(late.acked.size, 400, summarize(late))
    assert.deepEqual(late.unexpected, [])
    assert.equal(late.internalErrors, 0, summarize(late))
    const compacted = await leader.stats()
    assert(
      compacted.last_snapshot_index > before.applied_index,
      `the leader compacted to ${compacted.last_snapshot_index}, not past ${before.applied_index}`,
    )

    // It comes back while clients keep writing through the other two.
    const others = cluster.running().map((n) => n.url)
    const during = startWriteLoad({
      targets: () => others,
      clients: 4,
      durationMs: 20_000,
      maxWritesPerClient: 1_000,
      keyPrefix: 'during',
    })
    cluster.restart(lagger.id)
    let target: number
    let s: Awaited<ReturnType<typeof lagger.stats>>
    try {
      await cluster.waitReady(lagger.id)
      target = await cluster.waitCaughtUp([lagger.id])
      s = await lagger.stats()
    } finally {
      during.stop()
    }
    const concurrent = await during.done
    t.diagnostic(`while ${lagger.id} caught up: ${summarize(concurrent)}`)
    assert.deepEqual(concurrent.unexpected, [])
    assert.equal(concurrent.internalErrors, 0, summarize(concurrent))
    assert(concurrent.acked.size > 0, summarize(concurrent))
    t.diagnostic(
      `${lagger.id}: stopped at ${before.applied_index}, leader snapshot at ` +
        `${compacted.last_snapshot_index}; after restart applied ${s.applied_index} ` +
        `(target ${target}), last_snapshot_index ${s.last_snapshot_index}`,
    )
    assert(s.last_snapshot_index > 0)
    assert(s.last_snapshot_index > before.applied_index, 'no newer snapshot on the member')
    assert(s.snapshots_installed >= 1, `${s.snapshots_installed} snapshots installed`)
    assert(s.last_snapshot_chunks > 1, `the snapshot came in ${s.last_snapshot_chunks} chunk(s)`)
    t.diagnostic(
      `${s.snapshots_installed} snapshot(s) installed, the latest in ${s.last_snapshot_chunks} chunks`,
    )
    const log = lagger.logOfLastRun()
    assert.match(log, /"event":"snapshot_receive"/, 'the member did not receive a snapshot')
    assert.match(leader.logOfLastRun(), new RegExp(`"event":"snapshot_send","to":"${lagger.id}"`))

    // It holds every key in its own store (stale reads never ask the leader), those written
    // while it caught up included.
    await cluster.waitCaughtUp([lagger.id])
    const all = new Map([...early.acked, ...late.acked, ...concurrent.acked])
    assert.deepEqual(await readBack([lagger.url], all, { stale: true }), [])
    assert.equal((await lagger.stats()).keys, (await leader.stats()).keys)

    // And it keeps replicating normally afterwards.
    const more = await startWriteLoad({
      targets: () => [lagger.url],
      clients: 4,
      durationMs: 5_000,
      maxWritesPerClient: 5,
      keyPrefix: 'more',
    }).done
    assert.equal(more.acked.size, 20, summarize(more))
    assert.equal(more.internalErrors, 0, summarize(more))
    await cluster.waitCaughtUp()
    assert.deepEqual(await readBack(urls(), more.acked, { stale: true }), [])
  })
})
