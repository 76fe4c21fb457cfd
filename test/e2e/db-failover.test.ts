// End to end: kill -9 the leader of a three-member cluster while 32 clients write fresh keys
// through every member. A new leader takes over within seconds, every acknowledged write is
// readable from every member afterwards, and the killed member restarts from its data
// directory and catches up.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { notAcked, readBack, startWriteLoad, summarize } from './load.ts'

describe('kill -9 the leader under write load', () => {
  const clusters = useClusters()
  // 500 answers seen by the clients, for the known-bug test below.
  let internalErrors: number | undefined

  it('elects a new leader, loses no acknowledged write, and the killed member catches up', async (t) => {
    const cluster = await clusters.start({ name: 'failover', size: 3 })
    const old = await cluster.leader()
    const victim = old.node
    const load = startWriteLoad({
      targets: () => cluster.running().map((n) => n.url),
      clients: 32,
      durationMs: 4_000,
      maxWritesPerClient: 200,
      keyPrefix: 'failover',
    })

    // Kill once writes are flowing, not at a fixed time.
    const startCommit = old.stats.commit_index
    await waitFor('writes to flow', async () => {
      return (await victim.stats()).commit_index >= startCommit + 150
    })
    const killedAt = Date.now()
    await cluster.kill(victim.id)
    const next = await cluster.leader({ minTerm: old.stats.term + 1, exclude: [victim.id] })
    const electionMs = Date.now() - killedAt
    assert.notEqual(next.node.id, victim.id)
    assert(electionMs < 5_000, `a new leader took ${electionMs} ms`)

    const result = await load.done
    const ackedAfter = [...result.ackedAtMs.values()].filter((at) => at > killedAt).length
    t.diagnostic(`old leader ${victim.id} (term ${old.stats.term}) killed`)
    t.diagnostic(`new leader ${next.node.id} (term ${next.stats.term}) after ${electionMs} ms`)
    t.diagnostic(`load: ${summarize(result)}; ${ackedAfter} acked after the kill`)
    assert.deepEqual(result.unexpected, [])
    // A follower whose forward to the dying leader fails answers 500 (known bug, below); the
    // clients send those keys again, so the checks that follow still hold.
    internalErrors = result.internalErrors
    assert(result.acked.size >= 100, `only ${result.acked.size} writes acknowledged`)
    assert(ackedAfter > 0, 'no write was acknowledged after the kill')

    // Every acknowledged write is readable from both survivors; nothing else is half there.
    const survivors = cluster.running().map((n) => n.url)
    assert.deepEqual(await readBack(survivors, result.acked), [])
    assert.deepEqual(await readBack(survivors, notAcked(result), { allowMissing: true }), [])

    // The killed member restarts from its data directory and catches up.
    const restartedAt = Date.now()
    cluster.restart(victim.id)
    await cluster.waitReady(victim.id)
    const target = await cluster.waitCaughtUp([victim.id])
    t.diagnostic(
      `${victim.id} restarted and applied index ${target} in ${Date.now() - restartedAt} ms`,
    )
    assert.match(victim.logOfLastRun(), /"event":"restart"/)
    // Stale reads answer from the member's own store only: it holds every acknowledged key.
    assert.deepEqual(await readBack([victim.url], result.acked, { stale: true }), [])
    assert.deepEqual(
      await readBack([victim.url], notAcked(result), { allowMissing: true, stale: true }),
      [],
    )
    const counts = await Promise.all(cluster.running().map(async (n) => (await n.stats()).keys))
    assert.equal(new Set(counts).size, 1, `key counts differ: ${counts.join(', ')}`)
  })

  it('followers answer a write whose forward to the killed leader failed with 503, not 500', async () => {
    assert(internalErrors !== undefined, 'the test above did not get there')
    assert.equal(internalErrors, 0)
  })
})
