// End to end: a member that is the only voter of its configuration (a new cluster's first
// member, a one-member cluster restarted) campaigns as it starts, not after an election
// timeout. Its election timeout here is 20 to 40 s (1,000 ticks of 20 ms), so a leader, and
// a write acknowledged, within the test's 15 s can only come from that campaign.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'

const ELECTION_TICKS = 1_000
const WITHIN_MS = 15_000

describe('a sole voter', () => {
  const clusters = useClusters()

  it('leads as soon as it starts, when it founds a cluster and when it restarts', async () => {
    const cluster = await clusters.start({
      name: 'sole-voter',
      size: 1,
      electionTicks: ELECTION_TICKS,
      startTimeoutMs: WITHIN_MS,
    })
    const first = await cluster.leader({ timeoutMs: WITHIN_MS })
    assert.equal(first.node.id, 'n1')
    const put = await first.node.request(`/keys/${keyPath('founded')}`, {
      method: 'PUT',
      body: 'one',
    })
    assert.equal(put.status, 201, put.text())

    assert.equal((await cluster.terminate('n1')).code, 0)
    cluster.restart('n1')
    const again = await cluster.leader({ minTerm: first.stats.term + 1, timeoutMs: WITHIN_MS })
    assert.equal(again.node.id, 'n1')
    const put2 = await again.node.request(`/keys/${keyPath('restarted')}`, {
      method: 'PUT',
      body: 'two',
    })
    assert.equal(put2.status, 201, put2.text())
    assert.equal((await again.node.request(`/keys/${keyPath('founded')}`)).text(), 'one')
  })
})
