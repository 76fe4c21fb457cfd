// End to end: group commit (`oncekv db --batch-wait-ms`). Writers that write again as soon as
// they are answered end up in one disk transaction per round on the leader, instead of
// taking turns in smaller ones; held writes keep their order, so writers racing for one key
// still see exactly one winner.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'

const WRITERS = 16

/** writeRounds has WRITERS writers each write `rounds` fresh keys to node, one after the
 * other, and returns the statuses of all answers. */
async function writeRounds(node: DbProcess, prefix: string, rounds: number): Promise<number[]> {
  const statuses: number[] = []
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < rounds; i++) {
        const key = `${prefix}-${w}-${i}`
        const res = await node.request(`/keys/${keyPath(key)}`, { method: 'PUT', body: key })
        statuses.push(res.status)
      }
    }),
  )
  return statuses
}

describe('group commit', () => {
  const clusters = useClusters()

  it('writes the next writes of the writers it answered in one transaction, and one wins a race', async (t) => {
    // A wait far above the time writers take to come back, so that every round groups.
    const cluster = await clusters.start({
      name: 'group',
      size: 3,
      extraArgs: ['--batch-wait-ms', '200'],
    })
    const { node: leader } = await cluster.leader()
    assert.deepEqual(new Set(await writeRounds(leader, 'warm', 3)), new Set([201]))

    const before = await leader.stats()
    const rounds = 30
    const statuses = await writeRounds(leader, 'g', rounds)
    const after = await leader.stats()
    assert.equal(statuses.length, WRITERS * rounds)
    assert.deepEqual(new Set(statuses), new Set([201]))
    const writes = after.disk_writes - before.disk_writes
    const entries = after.log_entries_written - before.log_entries_written
    const perWrite = entries / writes
    t.diagnostic(`${entries} log entries in ${writes} transactions: ${perWrite.toFixed(1)} each`)
    // Taking turns, 16 writers make transactions of about 16 / 2 entries or fewer.
    assert(perWrite >= 11, `${perWrite.toFixed(1)} entries per transaction`)

    // Every member has every value.
    await cluster.waitCaughtUp()
    for (const n of cluster.all()) {
      for (const key of [`g-0-0`, `g-${WRITERS - 1}-${rounds - 1}`, `g-7-13`]) {
        const res = await n.request(`/keys/${keyPath(key)}`)
        assert.equal(res.status, 200, `${n.id} ${key}`)
        assert.equal(res.text(), key)
      }
    }

    // Writers racing for one key, all held in one group: one creates it, the others find
    // another value there, and every member serves the winner's.
    const race = await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const res = await leader.request('/keys/contested', { method: 'PUT', body: `writer-${w}` })
        return { w, status: res.status }
      }),
    )
    const winners = race.filter((r) => r.status === 201)
    assert.equal(winners.length, 1, JSON.stringify(race))
    assert.equal(race.filter((r) => r.status === 409).length, WRITERS - 1, JSON.stringify(race))
    await cluster.waitCaughtUp()
    for (const n of cluster.all()) {
      const res = await n.request('/keys/contested')
      assert.equal(res.status, 200)
      assert.equal(res.text(), `writer-${winners[0]?.w}`)
    }
  })
})
