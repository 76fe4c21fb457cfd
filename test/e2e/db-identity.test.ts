// End to end: a data directory remembers which member it belongs to. A member killed while its
// join was still unanswered goes on joining when started again without --join (it must not
// found a second one-member cluster), and a directory started under another member id is
// refused with a clear message and exit code 2, before anything is served.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { before, describe, it } from 'node:test'
import { BlackHole, HoldingProxy } from './client-net.test-helper.ts'
import { freePort, waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { postJson } from './http.ts'

const BIN = fileURLToPath(new URL('../../bin/oncekv.js', import.meta.url))

/** run runs the CLI to its exit (killed after 30 s) and returns the exit code and stderr. */
function run(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })
}

describe('a data directory remembers its member', () => {
  const clusters = useClusters()
  let cluster: Cluster
  before(async () => {
    cluster = await clusters.start({ name: 'identity', size: 3 })
  })

  it('a member restarted before its join was answered goes on joining, not founding a cluster', async () => {
    // The join goes to an address that accepts and never answers, so it stays unanswered.
    const hole = await BlackHole.start()
    const joinPort = Number(new URL(hole.url).port)
    const n4 = await cluster.addMember({ via: [hole.url], waitVoter: false })
    await waitFor('n4 to send its join', () => hole.accepted > 0)
    await cluster.kill(n4.id)
    await hole.close()

    // The recorded address now leads to the cluster; n4 starts with no --join at all.
    const { node: leader } = await cluster.leader()
    const proxy = await HoldingProxy.start(leader.url, { port: joinPort })
    try {
      cluster.restart(n4.id)
      await cluster.waitVoters([n4.id])
      await cluster.waitReady(n4.id)
      await cluster.waitCaughtUp([n4.id])
    } finally {
      await proxy.close()
    }
    assert.match(n4.logOfLastRun(), /resuming an unfinished join/)
    assert.doesNotMatch(n4.logOfLastRun(), /"event":"bootstrap"/)
    const stats = await n4.stats()
    assert.equal(stats.leader, (await cluster.leader()).node.id)

    // A write through n4 is one the cluster holds.
    const put = await postJson(`${n4.url}/key`, { key: 'identity-k', value: 'v' })
    assert.equal(put.status, 200, put.text())
    const other = await fetch(`${leader.url}/keys/identity-k`)
    assert.equal(other.status, 200)
    assert.equal(await other.text(), 'v')

    // Restarted again, it restarts from its own state and forgets the join address.
    await cluster.terminate(n4.id)
    cluster.restart(n4.id)
    await cluster.waitReady(n4.id)
    assert.match(n4.logOfLastRun(), /"event":"restart"/)
  })

  it('refuses to start a directory as another member, with exit code 2', async () => {
    const victim = cluster.running().find((n) => n.id === 'n3')!
    await cluster.kill(victim.id)
    const started = Date.now()
    const r = await run([
      'db',
      '--id',
      'n9',
      '--data',
      victim.dataDir,
      '--http',
      `127.0.0.1:${await freePort()}`,
      '--raft',
      `127.0.0.1:${await freePort()}`,
    ])
    assert.equal(r.code, 2, r.stderr)
    assert.match(
      r.stderr,
      /^oncekv db: data directory .+ belongs to member n3, not n9: start it with --id n3/m,
    )
    assert.ok(Date.now() - started < 20_000)
    // The directory is untouched: n3 starts from it and catches up.
    cluster.restart(victim.id)
    await cluster.waitReady(victim.id)
    await cluster.waitCaughtUp([victim.id])
  })
})
