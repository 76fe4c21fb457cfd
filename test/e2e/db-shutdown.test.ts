// End to end: graceful shutdown. SIGTERM on the leader hands leadership to another member
// first (quickly), lets requests in flight end, exits 0 and logs "stopped cleanly"; the
// member then restarts from its data directory. Under write load forwarded by followers,
// leadership still moves at once and nothing acknowledged is lost.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { waitFor, type ExitInfo } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'
import {
  describeRetries,
  notAcked,
  readBack,
  serverErrorsBut503,
  startWriteLoad,
  summarize,
  type WriteLoadResult,
} from './load.ts'

/** EXIT_WAIT_MS is how long a graceful stop may take before the test calls it stuck. */
const EXIT_WAIT_MS = 10_000

describe('graceful shutdown', () => {
  const clusters = useClusters()
  // What the test under load saw when it stopped the leader, for the known-bug test.
  let underLoadExit: { exit?: ExitInfo; ms: number } | undefined
  let underLoadResult: WriteLoadResult | undefined

  it('SIGTERM on the leader moves leadership, exits 0, logs "stopped cleanly", and it restarts', async (t) => {
    const cluster = await clusters.start({ name: 'shutdown', size: 3 })
    const old = await cluster.leader()
    const written = new Map<string, string>()
    for (let i = 0; i < 20; i++) {
      const key = `before-${i}`
      const res = await old.node.request(`/keys/${keyPath(key)}`, { method: 'PUT', body: key })
      assert.equal(res.status, 201)
      written.set(key, key)
    }

    const signalledAt = Date.now()
    const exiting = old.node.signal('SIGTERM', EXIT_WAIT_MS)
    const next = await cluster.leader({ minTerm: old.stats.term + 1, exclude: [old.node.id] })
    const movedMs = Date.now() - signalledAt
    const exit = await exiting
    const exitMs = Date.now() - signalledAt
    t.diagnostic(`leadership moved ${old.node.id} -> ${next.node.id} in ${movedMs} ms`)
    t.diagnostic(`${old.node.id} exited ${JSON.stringify(exit)} ${exitMs} ms after SIGTERM`)
    assert.deepEqual(exit, { code: 0, signal: null })
    assert(movedMs < 3_000, `leadership took ${movedMs} ms to move`)
    const log = old.node.logOfLastRun()
    assert.match(log, /"event":"transfer_on_shutdown","to":"n\d","moved":true/)
    assert.match(log, /"msg":"stopped cleanly"/)

    // The other two go on serving writes.
    const others = cluster.running()
    const meanwhile = await startWriteLoad({
      targets: () => others.map((n) => n.url),
      clients: 4,
      durationMs: 5_000,
      maxWritesPerClient: 5,
      keyPrefix: 'meanwhile',
    }).done
    assert.equal(meanwhile.acked.size, 20, summarize(meanwhile))
    assert.equal(meanwhile.internalErrors, 0, summarize(meanwhile))
    for (const [k, v] of meanwhile.acked) written.set(k, v)

    // It comes back from its data directory as a follower and catches up.
    cluster.restart(old.node.id)
    await cluster.waitReady(old.node.id)
    await cluster.waitCaughtUp([old.node.id])
    assert.equal((await old.node.stats()).state, 'Follower')
    assert.deepEqual(await readBack([old.node.url], written, { stale: true }), [])

    // SIGTERM on a follower: exit 0 as well, and the leader stays the leader.
    const leader = await cluster.leader()
    const follower = cluster.running().find((n) => n !== leader.node)
    assert(follower)
    assert.deepEqual(await cluster.terminate(follower.id, EXIT_WAIT_MS), { code: 0, signal: null })
    assert.match(follower.logOfLastRun(), /"msg":"stopped cleanly"/)
    const after = await cluster.leader()
    assert.equal(after.node.id, leader.node.id)
    assert.equal(after.stats.term, leader.stats.term)
  })

  it('SIGTERM on the leader under write load through followers: leadership moves, nothing acknowledged is lost', async (t) => {
    const cluster = await clusters.start({ name: 'shutdown-load', size: 3 })
    const old = await cluster.leader()
    const others = cluster.running().filter((n) => n !== old.node)
    const startedAt = Date.now()
    const load = startWriteLoad({
      // Clients use the other members, which forward to the leader until leadership moves.
      targets: () => others.map((n) => n.url),
      clients: 8,
      durationMs: 3_000,
      maxWritesPerClient: 200,
      keyPrefix: 'shutdown',
    })
    await waitFor('writes to flow', async () => {
      return (await old.node.stats()).commit_index >= old.stats.commit_index + 50
    })

    const signalledAt = Date.now()
    const exiting = cluster.terminateOrKill(old.node.id, EXIT_WAIT_MS)
    const next = await cluster.leader({ minTerm: old.stats.term + 1, exclude: [old.node.id] })
    const movedMs = Date.now() - signalledAt
    t.diagnostic(`leadership moved ${old.node.id} -> ${next.node.id} in ${movedMs} ms`)
    assert(movedMs < 3_000, `leadership took ${movedMs} ms to move`)
    // The member logs the handover once it sees it, a moment after the others do.
    await waitFor('the handover in the log', () =>
      /"event":"transfer_on_shutdown","to":"n\d","moved":true/.test(old.node.logOfLastRun()),
    )

    const result = await load.done
    underLoadResult = result
    t.diagnostic(`load: ${summarize(result)}`)
    t.diagnostic(`retries: ${describeRetries(result, startedAt) || 'none'}`)
    assert.deepEqual(result.unexpected, [])
    // 500s from a follower whose forward to the stopping leader failed are a known bug
    // (db-failover.test.ts); they are in the summary above and were sent again.
    assert(result.unavailable <= 20, `${result.unavailable} answers were 503`)
    const urls = others.map((n) => n.url)
    assert.deepEqual(await readBack(urls, result.acked), [])
    assert.deepEqual(await readBack(urls, notAcked(result), { allowMissing: true }), [])

    underLoadExit = await exiting
    t.diagnostic(
      underLoadExit.exit
        ? `${old.node.id} exited ${JSON.stringify(underLoadExit.exit)} ${underLoadExit.ms} ms after SIGTERM`
        : `${old.node.id} had not exited ${underLoadExit.ms} ms after SIGTERM; killed`,
    )
  })

  it('SIGTERM on a leader that followers forwarded writes to exits promptly', async () => {
    assert(underLoadExit, 'the test above did not get there')
    assert.deepEqual(underLoadExit.exit, { code: 0, signal: null }, `${underLoadExit.ms} ms`)
  })

  it('clients writing through a graceful leader change get no 5xx answer but 503', async () => {
    assert(underLoadResult, 'the test above did not get there')
    assert.deepEqual(serverErrorsBut503(underLoadResult), {}, summarize(underLoadResult))
  })

  it('a miss waiting for its ReadIndex round when the member starts to stop is answered with connection: close', async () => {
    const cluster = await clusters.start({ name: 'drain-miss', size: 3 })
    const { node: leader } = await cluster.leader()
    const member = cluster.all().find((n) => n !== leader)
    assert(member)
    const others = cluster.all().filter((n) => n !== member)
    const before = (await member.stats()).reads
    for (const n of others) n.pause()
    try {
      // With the other two paused the member cannot confirm the miss: the read waits on the
      // fast path (a follower stops at once: no leadership to hand over first).
      const read = member.request('/keys/never-written-while-stopping')
      await waitFor('the read to arrive', async () => (await member.stats()).reads > before)
      const exit = member.signal('SIGTERM', EXIT_WAIT_MS)
      const res = await read
      assert.equal(res.status, 503, res.text())
      // As a route's answer during shutdown (the onSend hook): the client moves on at once.
      assert.equal(res.headers.get('connection'), 'close')
      await exit
    } finally {
      for (const n of others) n.resume()
    }
  })
})
