// End to end, on one cluster: a member that was down while a new member joined and took the
// lead catches up from that leader (a leader it does not know yet), and a member started with
// --join that gets SIGTERM while its join cannot be answered (no quorum) stops cleanly, exit
// 0, and finishes its join when started again with no flags.
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { waitFor, type Cluster, type DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath, postJson } from './http.ts'

describe('members at the edges of the configuration', () => {
  const clusters = useClusters()
  let cluster: Cluster
  before(async () => {
    cluster = await clusters.start({ name: 'robust', size: 3 })
  })

  it('a member that was down while a new member joined and took the lead catches up from it', async (t) => {
    const { node: leader } = await cluster.leader()
    const lagging = cluster.running().find((n) => n !== leader) as DbProcess
    await cluster.kill(lagging.id)
    const n4 = await cluster.addMember({ id: 'n4', via: [leader.url] })
    const moved = await postJson(`${leader.url}/transfer-leader`, { id: 'n4' }, 15_000)
    assert.equal(moved.status, 200, moved.text())
    const now = await cluster.leader({ exclude: [leader.id] })
    assert.equal(now.node.id, n4.id)
    const res = await n4.request(`/keys/${keyPath('written-while-down')}`, {
      method: 'PUT',
      body: 'x',
    })
    assert.equal(res.status, 201, res.text())

    // Its configuration has no n4 and its log not even the entry adding it.
    const restartedAt = Date.now()
    cluster.restart(lagging.id)
    await cluster.waitReady(lagging.id)
    await cluster.waitCaughtUp([lagging.id])
    t.diagnostic(
      `${lagging.id} caught up from ${n4.id} ${Date.now() - restartedAt} ms after restart`,
    )
    const s = await lagging.stats()
    assert.equal(s.leader, n4.id)
    assert.equal(s.num_peers, 3)
    const got = await lagging.request(`/keys/${keyPath('written-while-down')}?consistency=stale`)
    assert.equal(got.status, 200)
  })

  it('SIGTERM while joining without a quorum exits 0 at once; the join resumes at the next start', async (t) => {
    const { node: leader } = await cluster.leader()
    const survivor = cluster.running().find((n) => n !== leader) as DbProcess
    const paused = cluster
      .running()
      .filter((n) => n !== survivor)
      .slice(0, 2)
    for (const n of paused) n.pause()
    let n5: DbProcess | undefined
    try {
      n5 = await cluster.addMember({ id: 'n5', via: [survivor.url], waitVoter: false })
      const joiner = n5
      await waitFor('n5 to be refused for want of a leader', () =>
        /"event":"join_(refused|retry)"/.test(joiner.logOfLastRun()),
      )
      const signalled = Date.now()
      const exit = await joiner.signal('SIGTERM', 10_000)
      const ms = Date.now() - signalled
      t.diagnostic(`joining n5 exited ${JSON.stringify(exit)} ${ms} ms after SIGTERM`)
      assert.deepEqual(exit, { code: 0, signal: null })
      assert.ok(ms < 5_000, `${ms} ms`)
      assert.match(joiner.logOfLastRun(), /"event":"join_interrupted"/)
      assert.match(joiner.logOfLastRun(), /"msg":"stopped cleanly"/)
    } finally {
      for (const n of paused) n.resume()
    }
    await cluster.leader()
    cluster.restart('n5')
    await cluster.waitVoters(['n5'])
    assert.match(cluster.node('n5').logOfLastRun(), /resuming an unfinished join/)
  })
})
