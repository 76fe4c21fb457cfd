// End to end: group commit (`oncekv db --batch-wait-ms`). Writers that write again as soon as
// they are answered end up in one disk transaction per round on the leader, instead of
// taking turns in smaller ones; grouped writes still get each its own answer (writers racing
// for one key in a group: one creates it, the others learn it holds another value); and
// writes passed on by followers mix with grouped ones.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DbProcess } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'

const WRITERS = 16

/** writeRounds has `writers` writers each write `rounds` fresh keys through node, one after
 * the other, then (when `last` is given) the key `last`, and returns every answer. */
async function writeRounds(
  node: DbProcess,
  prefix: string,
  rounds: number,
  writers = WRITERS,
  last?: string,
): Promise<{ key: string; body: string; status: number }[]> {
  const answers: { key: string; body: string; status: number }[] = []
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const keys = Array.from({ length: rounds }, (_, i) => `${prefix}-${w}-${i}`)
      if (last !== undefined) keys.push(last)
      for (const key of keys) {
        const body = `${prefix}-${w}:${key}`
        const res = await node.request(`/keys/${keyPath(key)}`, { method: 'PUT', body })
        answers.push({ key, body, status: res.status })
      }
    }),
  )
  return answers
}

describe('group commit', () => {
  const clusters = useClusters()

  it('writes the next writes of the writers it answered in one transaction, each with its own answer', async (t) => {
    // A wait far above the time writers take to come back, so that every round groups.
    const cluster = await clusters.start({
      name: 'group',
      size: 3,
      extraArgs: ['--batch-wait-ms', '200'],
    })
    const { node: leader } = await cluster.leader()
    const followers = cluster.all().filter((n) => n !== leader)
    const warm = await writeRounds(leader, 'warm', 3)
    assert.deepEqual(new Set(warm.map((a) => a.status)), new Set([201]))

    // 30 rounds of fresh keys, then every writer's next write is the same key: those 16 are
    // held together like the rounds before them.
    const before = await leader.stats()
    const rounds = 30
    const answers = await writeRounds(leader, 'g', rounds, WRITERS, 'contested')
    const after = await leader.stats()
    const fresh = answers.filter((a) => a.key !== 'contested')
    assert.equal(fresh.length, WRITERS * rounds)
    assert.deepEqual(new Set(fresh.map((a) => a.status)), new Set([201]))
    const writes = after.disk_writes - before.disk_writes
    const entries = after.log_entries_written - before.log_entries_written
    const perWrite = entries / writes
    t.diagnostic(`${entries} log entries in ${writes} transactions: ${perWrite.toFixed(1)} each`)
    // Taking turns, 16 writers make transactions of about 16 / 2 entries or fewer.
    assert(perWrite >= 11, `${perWrite.toFixed(1)} entries per transaction`)
    const race = answers.filter((a) => a.key === 'contested')
    const winners = race.filter((a) => a.status === 201)
    assert.equal(winners.length, 1, JSON.stringify(race))
    assert.equal(race.filter((a) => a.status === 409).length, WRITERS - 1, JSON.stringify(race))

    // Every member has every value, and the winner's under the contested key.
    await cluster.waitCaughtUp()
    for (const n of cluster.all()) {
      for (const a of [fresh[0], fresh[fresh.length - 1], fresh[7 * rounds + 13], winners[0]]) {
        assert(a !== undefined)
        const res = await n.request(`/keys/${keyPath(a.key)}`)
        assert.equal(res.status, 200, `${n.id} ${a.key}`)
        assert.equal(res.text(), a.body)
      }
    }

    // Writes passed on by followers (proposed at once, never held) mix with the leader's
    // grouped ones: all apply, and no held write waits until the hold bound gives it up.
    const mixed = await Promise.all([
      writeRounds(leader, 'm', 20),
      ...followers.map((f) => writeRounds(f, `f${f.id}`, 20, 4)),
    ])
    for (const a of mixed.flat()) assert.equal(a.status, 201, JSON.stringify(a))
    assert.doesNotMatch(leader.logOfLastRun(), /"event":"writes_held_long"/)
  })
})
