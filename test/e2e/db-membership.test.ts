// End to end: membership changes under write load. A 4th and a 5th member join (as learners,
// promoted once caught up), leadership is transferred, a follower and then the leader itself
// are removed, while 32 clients keep writing through the members. No acknowledged write is
// lost; clients see nothing worse than brief retries (503s and slow requests are counted and
// reported).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GiveUp, waitFor, type Cluster, type DbProcess, type ExitInfo } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { postJson } from './http.ts'
import {
  describeRetries,
  notAcked,
  readBack,
  startWriteLoad,
  serverErrorsBut503,
  summarize,
  type WriteLoadResult,
} from './load.ts'

/** STOP_WAIT_MS is how long a graceful stop may take before the test kills the member. */
const STOP_WAIT_MS = 12_000

/** voterIds is the sorted voter list that member n reports. */
async function voterIds(n: DbProcess): Promise<string[]> {
  const view = await n.clusterView()
  return view.members
    .filter((m) => m.suffrage === 'voter')
    .map((m) => m.id)
    .sort()
}

/** waitConfiguration waits until every given member reports exactly these voters. */
async function waitConfiguration(members: readonly DbProcess[], voters: string[]): Promise<void> {
  const want = [...voters].sort().join(',')
  await waitFor(
    `every member to report voters ${want}`,
    async () => {
      const views = await Promise.all(members.map(voterIds))
      return views.every((v) => v.join(',') === want)
    },
    { timeoutMs: 20_000, intervalMs: 50 },
  )
}

/** waitRemoved waits until member n (in its current run) logged that it was removed and
 * answers data and membership requests with 503 "removed", while still describing itself. */
async function waitRemoved(n: DbProcess): Promise<void> {
  await waitFor(
    `${n.id} to know it was removed`,
    async () => {
      if (!n.running) throw new GiveUp(`${n.id} exited: ${n.logTail()}`)
      return n.logOfLastRun().includes('"event":"removed"')
    },
    { timeoutMs: 15_000, intervalMs: 50 },
  )
  for (const res of [
    await n.request('/key/removed-probe'),
    await n.request('/keys/removed-probe', { method: 'PUT', body: 'x' }),
    await postJson(`${n.url}/transfer-leader`, { id: n.id }),
    await n.request('/readyz'),
  ]) {
    assert.equal(res.status, 503, res.text())
    const body = res.json<{ code: number; error: string; message: string }>()
    assert.equal(body.code, 1005)
    assert.equal(body.error, 'removed')
    assert.match(body.message, /removed from the cluster/)
  }
  assert.equal((await n.request('/healthz')).status, 200)
  assert.equal((await n.clusterView()).id, n.id)
}

describe('membership changes under write load', () => {
  const clusters = useClusters()
  // Figures of the first test that the known-bug test below checks.
  let removedLeaderStop: { exit?: ExitInfo; ms: number } | undefined
  let loadResult: WriteLoadResult | undefined
  // n4's suffrage the first time /cluster listed it.
  let seenAsLearner: string | undefined

  it('joins two members, transfers leadership and removes two, losing no acknowledged write', async (t) => {
    const cluster: Cluster = await clusters.start({ name: 'membership', size: 3 })
    const removed = new Set<string>()
    const members = (): DbProcess[] => cluster.running().filter((n) => !removed.has(n.id))
    // Clients write through the members that are in the configuration and serving.
    const serving = new Set(members().map((n) => n.id))
    const startedAt = Date.now()
    const load = startWriteLoad({
      targets: () => [...serving].map((id) => cluster.node(id).url),
      clients: 32,
      durationMs: 40_000,
      maxWritesPerClient: 400,
      keyPrefix: 'membership',
    })
    const step = async (what: string, fn: () => Promise<void>): Promise<number> => {
      const started = Date.now()
      await fn()
      const ms = Date.now() - started
      t.diagnostic(`${what}: ${ms} ms (at ${started - startedAt} ms)`)
      return ms
    }
    let result: WriteLoadResult | undefined
    let removedFollower: DbProcess | undefined
    try {
      const { stats } = await cluster.leader()
      await waitFor('writes to flow', async () => {
        return (await cluster.leader()).stats.commit_index >= stats.commit_index + 100
      })

      // Two members join through whichever members are there: each is a learner first (the
      // writes so far give it a snapshot to catch up on), then a voter.
      await step('n4 joined as a learner and promoted', async () => {
        const n4 = await cluster.addMember({ id: 'n4', waitVoter: false })
        await cluster.waitVoters([n4.id], { timeoutMs: 20_000 })
        // The members' logs say in which order n4's configuration changes applied (a poll
        // of /cluster may come after a quick promotion).
        seenAsLearner = firstSuffrage(
          ['n1', 'n2', 'n3'].map((id) => cluster.node(id).log()),
          'n4',
        )
        serving.add('n4')
      })
      await step('n5 joined and promoted', async () => {
        await cluster.addMember({ id: 'n5' })
        serving.add('n5')
      })
      await waitConfiguration(members(), ['n1', 'n2', 'n3', 'n4', 'n5'])

      // Leadership moves to n4, asked through a member that does not lead (it forwards).
      const before = await cluster.leader()
      const asker = members().find((n) => n.id !== before.node.id && n.id !== 'n4') as DbProcess
      await step(`leadership transferred from ${before.node.id} to n4`, async () => {
        const res = await postJson(`${asker.url}/transfer-leader`, { id: 'n4' }, 15_000)
        assert.equal(res.status, 200, res.text())
        const after = await cluster.leader({ minTerm: before.stats.term + 1 })
        assert.equal(after.node.id, 'n4')
      })

      // A follower leaves: clients stop using it first, then it is removed and stopped.
      const follower = members().find((n) => n.id !== 'n4' && n.id !== 'n1') as DbProcess
      await step(`follower ${follower.id} removed`, async () => {
        removed.add(follower.id)
        serving.delete(follower.id)
        const res = await postJson(`${cluster.node('n1').url}/remove`, { id: follower.id }, 15_000)
        assert.equal(res.status, 200, res.text())
        const left = ['n1', 'n2', 'n3', 'n4', 'n5'].filter((id) => id !== follower.id)
        await waitConfiguration(members(), left)
      })
      // It finds out it was removed (the leader stopped talking to it) and says so.
      await step(`removed follower ${follower.id} knows it was removed`, async () => {
        await waitRemoved(follower)
      })
      await step(`removed follower ${follower.id} stopped (SIGTERM)`, async () => {
        assert.equal((await cluster.terminate(follower.id)).code, 0)
      })
      removedFollower = follower

      // The leader removes itself: it steps down once the change commits, another leads.
      const leader = await cluster.leader()
      await step(`leader ${leader.node.id} removed`, async () => {
        removed.add(leader.node.id)
        serving.delete(leader.node.id)
        const res = await postJson(`${leader.node.url}/remove`, { id: leader.node.id }, 15_000)
        assert.equal(res.status, 200, res.text())
        const next = await cluster.leader({
          exclude: [leader.node.id],
          minTerm: leader.stats.term + 1,
        })
        assert.notEqual(next.node.id, leader.node.id)
        await waitConfiguration(
          members(),
          members().map((n) => n.id),
        )
      })
      assert.equal((await voterIds(members()[0] as DbProcess)).length, 3)
      const stop = await cluster.terminateOrKill(leader.node.id, STOP_WAIT_MS)
      removedLeaderStop = stop
      t.diagnostic(
        stop.exit
          ? `removed leader ${leader.node.id} exited ${JSON.stringify(stop.exit)} ${stop.ms} ms after SIGTERM`
          : `removed leader ${leader.node.id} had not exited ${stop.ms} ms after SIGTERM; killed`,
      )
    } finally {
      load.stop()
      result = await load.done
      loadResult = result
      t.diagnostic(`load: ${summarize(result)}`)
      t.diagnostic(`retries: ${describeRetries(result, startedAt) || 'none'}`)
    }

    assert.deepEqual(result.unexpected, [])
    // 500s can come from followers whose forward to the stopped leader failed: a known bug
    // (db-failover.test.ts); they are in the summary above and were sent again.
    assert(result.acked.size >= 100, `only ${result.acked.size} writes acknowledged`)
    // A few 503s while leadership moves are expected; many would mean clients suffer.
    assert(result.unavailable <= 100, `${result.unavailable} answers were 503`)
    assert(result.maxAttempts <= 5, `a key needed ${result.maxAttempts} attempts`)

    // Restarted from its data directory, the removed follower says so again rather than
    // campaigning forever (after the load: a process start under it slows the writers).
    assert(removedFollower, 'the test did not get to the follower removal')
    cluster.restart(removedFollower.id)
    await waitRemoved(removedFollower)
    assert.equal((await cluster.terminate(removedFollower.id)).code, 0)

    // Every remaining member, including the two that joined, holds every acknowledged write.
    const remaining = members()
    await cluster.waitCaughtUp(remaining.map((n) => n.id))
    const urls = remaining.map((n) => n.url)
    assert.deepEqual(await readBack(urls, result.acked, { stale: true }), [])
    assert.deepEqual(await readBack(urls, notAcked(result), { allowMissing: true }), [])
  })

  it('a leader that removes itself fails its writes in flight at once and stops promptly', async () => {
    assert(loadResult && removedLeaderStop, 'the test above did not get there')
    assert.deepEqual(removedLeaderStop.exit, { code: 0, signal: null })
    assert(removedLeaderStop.ms < 3_000, `SIGTERM took ${removedLeaderStop.ms} ms`)
    assert.equal(loadResult.slowRequests, 0, summarize(loadResult))
  })

  it('a joining member is listed as a learner before its promotion', () => {
    assert(seenAsLearner !== undefined, 'the test above did not get there')
    assert.equal(seenAsLearner, 'learner')
  })

  it('clients writing through membership changes get no 5xx answer but 503', () => {
    assert(loadResult, 'the test above did not get there')
    assert.deepEqual(serverErrorsBut503(loadResult), {}, summarize(loadResult))
  })
})

/** firstSuffrage is what member first became in the configuration, read from the members'
 * conf_change_applied log lines: 'learner' when one member applied learner_added before
 * learner_promoted, 'voter' when a member applied it as a voter first, else undefined. */
function firstSuffrage(logs: readonly string[], member: string): string | undefined {
  let first: string | undefined
  for (const log of logs) {
    const changes = log
      .split('\n')
      .filter((l) => l.includes('"conf_change_applied"') && l.includes(`"member":"${member}"`))
      .map((l) => (JSON.parse(l) as { change: string }).change)
    const added = changes.indexOf('learner_added')
    if (
      added >= 0 &&
      (changes.indexOf('learner_promoted') < 0 || added < changes.indexOf('learner_promoted'))
    )
      return 'learner'
    if (changes.includes('voter_added')) first = 'voter'
  }
  return first
}
