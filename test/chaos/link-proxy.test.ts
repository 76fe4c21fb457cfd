// The chaos network works on real members: a leader cut off from the others by the link
// proxies loses its majority (the others elect a new leader in a higher term), and after the
// heal it follows. A one-way cut from the leader alone also moves leadership (its heartbeats
// stop arriving), while the cut member still hears the others.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Cluster, freePort, waitFor } from '../e2e/cluster.ts'
import { Network } from './link-proxy.ts'

describe('link proxies between members', () => {
  const net = new Network()
  let cluster: Cluster

  before(async () => {
    cluster = await Cluster.start({
      name: 'link-proxy',
      size: 3,
      raftProxy: async (id, raftPort) => {
        const port = await freePort()
        await net.proxy(id, port, raftPort)
        return port
      },
    })
  })

  after(async () => {
    await cluster?.close()
    await net.close()
  })

  it('a partitioned leader loses leadership and follows after the heal', async () => {
    const { node: old, stats } = await cluster.leader()
    const others = cluster.all().filter((n) => n !== old)
    net.partition(
      [old.id],
      others.map((n) => n.id),
    )
    const next = await cluster.leader({ minTerm: stats.term + 1, exclude: [old.id] })
    assert.notEqual(next.node.id, old.id)
    net.heal()
    await waitFor('the old leader to follow the new one', async () => {
      const s = await old.stats()
      return s.state === 'Follower' && s.leader === next.node.id
    })
  })

  it('a one-way cut from the leader moves leadership; the cut member keeps hearing', async () => {
    const { node: old, stats } = await cluster.leader()
    for (const n of cluster.all()) if (n !== old) net.set(old.id, n.id, { cut: true })
    const next = await cluster.leader({ minTerm: stats.term + 1, exclude: [old.id] })
    // The old leader hears the new one's heartbeats and steps down to follow it.
    await waitFor('the cut member to follow the new leader', async () => {
      const s = await old.stats()
      return s.state === 'Follower' && s.leader === next.node.id
    })
    net.heal()
  })
})
