// End to end: kill -9 the leader of a three-member cluster while 32 clients write fresh keys
// through every member. A new leader takes over within seconds, every acknowledged write is
// readable from every member afterwards, and the killed member restarts from its data
// directory and catches up.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'
import { notAcked, readBack, startWriteLoad, summarize } from './load.ts'

describe('kill -9 the leader under write load', () => {
  const clusters = useClusters()
  // 500 answers seen by the clients, for the known-bug test below.
  let internalErrors: number | undefined
  // The cluster of the first test, all three members running again, for the last one.
  let shared: Cluster | undefined

  it('elects a new leader, loses no acknowledged write, and the killed member catches up', async (t) => {
    const cluster = await clusters.start({ name: 'failover', size: 3 })
    shared = cluster
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

  it('a member cut off from its quorum answers writes and linearizable misses 503 within seconds', async (t) => {
    assert(shared !== undefined, 'the first test did not get there')
    const c = shared
    for (const phase of ['the leader alone', 'a follower alone'] as const) {
      const { node: leader } = await c.leader()
      const followers = c.running().filter((n) => n.id !== leader.id)
      // Left alone: the leader (it must step down) or a follower (it must stop following).
      const alone = phase === 'the leader alone' ? leader : (followers[0] as DbProcess)
      const paused = c.running().filter((n) => n.id !== alone.id)
      for (const n of paused) n.pause()
      try {
        const write = await timedPut(alone, `cut-off-${alone.id}-${Date.now()}`)
        t.diagnostic(
          `${phase} (${alone.id}): write answered ${write.status} ${write.body.error} in ${write.ms} ms`,
        )
        assert.equal(write.status, 503, JSON.stringify(write.body))
        assert.equal(write.body.code, 1005)
        assert(write.ms < 6_000, `the write took ${write.ms} ms to fail`)
        if (phase === 'the leader alone') {
          // It proposed the write, then lost its quorum: the outcome is unknown.
          assert.match(write.body.error, /^(outcome_unknown|no_leader)$/)
          assert.match(write.body.message, /retrying .*is safe/)
        } else {
          assert.equal(write.body.error, 'no_leader')
          assert.equal(
            write.body.message,
            'no leader: the cluster has no quorum reachable from this member; retrying is safe',
          )
        }
        // Another write, now that it knows no leader: no_leader, within two election timeouts.
        const again = await timedPut(alone, `cut-off-again-${alone.id}-${Date.now()}`)
        assert.equal(again.status, 503)
        assert.equal(again.body.error, 'no_leader')
        assert(again.ms < 3_000, `the second write took ${again.ms} ms to fail`)
        t.diagnostic(`then another write answered 503 ${again.body.error} in ${again.ms} ms`)
        // A miss cannot be confirmed without a quorum: 503 with a code, not a hang; a stale
        // read answers from the local store at once.
        const missing = `/keys/${keyPath(`never-written-${Date.now()}`)}`
        const startedRead = Date.now()
        const read = await alone.request(missing, { timeoutMs: 10_000 })
        const readMs = Date.now() - startedRead
        assert.equal(read.status, 503, read.text())
        assert.equal(read.json<ErrorAnswer>().code, 1005)
        assert(readMs < 4_000, `the read took ${readMs} ms`)
        const stale = await alone.request(`${missing}?consistency=stale`, { timeoutMs: 1_000 })
        assert.equal(stale.status, 404, stale.text())
      } finally {
        for (const n of paused) n.resume()
      }
      await c.leader()
      await waitFor('writes to succeed again', async () => {
        const res = await alone.request(`/keys/${keyPath(`healed-${Date.now()}`)}`, {
          method: 'PUT',
          body: 'v',
        })
        return res.status === 201
      })
    }
  })
})

/** ErrorAnswer is an error body of the API. */
interface ErrorAnswer {
  code: number
  error: string
  message: string
}

/** timedPut writes key on node and returns the answer with how long it took. */
async function timedPut(
  node: DbProcess,
  key: string,
): Promise<{ status: number; body: ErrorAnswer; ms: number }> {
  const started = Date.now()
  const res = await node.request(`/keys/${keyPath(key)}`, {
    method: 'PUT',
    body: 'v',
    timeoutMs: 15_000,
  })
  return { status: res.status, body: res.json<ErrorAnswer>(), ms: Date.now() - started }
}
