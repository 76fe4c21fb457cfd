// End to end, on one 3-member cluster run with a cluster secret: it elects and serves writes;
// raw TCP clients that send garbage, oversized length prefixes, or hellos without the right
// HMAC to a member's raft port are dropped, the member stays healthy and its memory does not
// grow; a member restarted with another secret cannot disturb the election (leader and term
// unchanged: nothing it sends arrives) and a new member with another secret cannot join.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { encodeHello, encodeProof, PROTOCOL_VERSION } from '../../src/transport/codec.ts'
import { DbProcess, freePort, waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath } from './http.ts'

const dir = mkdtempSync(join(tmpdir(), 'oncekv-secret-'))
const SECRET_FILE = join(dir, 'cluster-secret')
const OTHER_FILE = join(dir, 'other-secret')
writeFileSync(SECRET_FILE, 'e2e-cluster-secret-0123456789abcdef\n')
writeFileSync(OTHER_FILE, 'some-other-secret-fedcba9876543210\n')

/** rssKiB is a process's resident set size from /proc. */
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  assert.ok(m, 'VmRSS in /proc')
  return Number(m[1])
}

/** attack connects to address, writes bytes, and resolves once the member closed the socket
 * (the member must drop it: the wait fails otherwise). */
async function attack(address: string, bytes: Uint8Array[]): Promise<void> {
  const [host, port] = address.split(':') as [string, string]
  const socket = net.connect({ host, port: Number(port) })
  socket.on('error', () => {})
  socket.on('data', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  for (const b of bytes) socket.write(b)
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('not dropped in 8 s')), 8_000)),
  ]).finally(() => socket.destroy())
}

describe('a cluster with a cluster secret', () => {
  const clusters = useClusters()
  let cluster: Cluster
  const intruders: DbProcess[] = []
  before(async () => {
    cluster = await clusters.start({
      name: 'secret',
      size: 3,
      extraArgs: ['--cluster-secret-file', SECRET_FILE],
    })
  })
  after(async () => {
    for (const n of intruders) if (n.running) await n.signal('SIGKILL')
  })

  it('elects and serves writes', async () => {
    const { node } = await cluster.leader()
    const res = await node.request(`/keys/${keyPath('with-secret')}`, { method: 'PUT', body: 'v' })
    assert.equal(res.status, 201, res.text())
  })

  it('garbage, oversized frames and hellos without the HMAC are dropped; the member stays healthy', async (t) => {
    const { node: leader } = await cluster.leader()
    const target = cluster.running().find((n) => n !== leader) as DbProcess
    const pid = target.pid as number
    const before = rssKiB(pid)
    const hello = (nonce?: Uint8Array): Buffer =>
      encodeHello({
        version: PROTOCOL_VERSION,
        clusterName: 'oncekv',
        id: 'intruder',
        purpose: 'raft',
        ...(nonce ? { nonce } : {}),
      })
    const mib = new Uint8Array(1024 * 1024).fill(0x41)
    const started = Date.now()
    for (let round = 0; round < 8; round++) {
      await Promise.all([
        attack(target.raft, [Buffer.from('GET / HTTP/1.1\r\n\r\n'), mib]),
        // A 64 MiB length prefix, then a MiB of it: the member must not wait for the rest.
        attack(target.raft, [Buffer.from([0x04, 0x00, 0x00, 0x00]), mib]),
        attack(target.raft, [Buffer.from([0xff, 0xff, 0xff, 0xff]), mib]),
        attack(target.raft, [hello()]),
        attack(target.raft, [hello(new Uint8Array(32)), encodeProof(new Uint8Array(32))]),
        attack(target.raft, [
          hello(new Uint8Array(32)),
          Buffer.from([0x00, 0x10, 0x00, 0x00]),
          mib,
        ]),
      ])
    }
    const after = rssKiB(pid)
    t.diagnostic(
      `48 hostile connections (up to 40 MiB written) dropped in ${Date.now() - started} ms; RSS ${before} -> ${after} KiB`,
    )
    // Read buffers of the dropped connections may still be held until the next collection:
    // the growth must come down under 8 MiB within seconds (a leak would not).
    await waitFor(`RSS back within 8 MiB of ${before} KiB`, () => rssKiB(pid) - before < 8 * 1024, {
      timeoutMs: 10_000,
      intervalMs: 200,
    }).catch((e: unknown) => {
      throw new Error(
        `${(e as Error).message}: RSS grew by ${rssKiB(pid) - before} KiB (right after: ${after - before})`,
      )
    })
    assert.ok(target.running)
    assert.ok(await target.isReady())
    const res = await leader.request(`/keys/${keyPath('after-attacks')}`, {
      method: 'PUT',
      body: 'v',
    })
    assert.equal(res.status, 201, res.text())
    await cluster.waitCaughtUp([target.id])
    const logged = target.logOfLastRun()
    assert.match(logged, /bad_peer/)
    assert.ok(!logged.includes('e2e-cluster-secret'), 'the secret is never logged')
  })

  it('a member restarted with another secret cannot disturb the election; a new one cannot join', async (t) => {
    const t0 = Date.now()
    const n4 = await cluster.addMember({ id: 'n4' })
    await cluster.waitCaughtUp([n4.id])
    await cluster.kill(n4.id)
    const t1 = Date.now()
    const { node: leader, stats } = await cluster.leader()
    // The same member, data and addresses, but another secret, and quick to campaign.
    const impostor = new DbProcess(
      'n4',
      n4.http,
      n4.raft,
      n4.dataDir,
      join(cluster.root, 'logs', 'n4-impostor.log'),
      { electionTicks: 5, extraArgs: ['--cluster-secret-file', OTHER_FILE] },
    )
    intruders.push(impostor)
    impostor.start()
    const joiner = new DbProcess(
      'n5',
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${await freePort()}`,
      join(cluster.root, 'n5'),
      join(cluster.root, 'logs', 'n5.log'),
      { extraArgs: ['--cluster-secret-file', OTHER_FILE] },
    )
    intruders.push(joiner)
    joiner.start([leader.url])
    // Wait until the impostor, dialling the members to campaign, has refused them (their
    // challenges do not carry its secret), and the joiner was refused: by the leader's
    // transport when it dials the joiner to replicate, or already at POST /join where that
    // route is guarded. (The leader's lines about n4 may be held back by the log's rate limit:
    // n4 was just killed.)
    await waitFor(
      'the intruders refused on both sides',
      async () => {
        const missing: string[] = []
        if (!/does not hold our cluster secret/.test(impostor.logOfLastRun())) {
          // It dials the members only to campaign: its state says whether it does.
          const s = await impostor.stats().catch((e: Error) => e.message)
          const state = typeof s === 'string' ? s : `${s.state}, term ${s.term}`
          missing.push(`the impostor refusing a member (running: ${impostor.running}; ${state})`)
        }
        if (
          !/"peer":"n5"[^\n]*does not hold our cluster secret/.test(leader.logOfLastRun()) &&
          !/forbidden|unauthorized/.test(joiner.logOfLastRun())
        ) {
          missing.push(`the joiner refused (running: ${joiner.running})`)
        }
        // (Thrown, the list is quoted if the wait times out.)
        if (missing.length > 0) throw new Error(`not yet: ${missing.join('; ')}`)
        return true
      },
      // Both processes start (the impostor's election timeout is short); on a loaded machine
      // this has taken over 15 s once.
      { timeoutMs: 30_000 },
    )
    t.diagnostic(`n4 joined in ${t1 - t0} ms; intruders refused ${Date.now() - t1} ms later`)
    const s = await impostor.stats()
    t.diagnostic(`impostor: state ${s.state}, term ${s.term}, leader "${s.leader}"`)
    assert.notEqual(s.state, 'Leader')
    assert.notEqual(s.leader, leader.id, 'the impostor never heard from the leader')
    const now = await cluster.leader()
    assert.equal(now.node.id, leader.id)
    assert.equal(now.stats.term, stats.term)
    // The joiner got nothing: refused at POST /join (which takes the cluster secret alone),
    // it exits, and it is not even a learner.
    assert.equal((await joiner.waitExit(20_000)).code, 1)
    const view = await leader.clusterView()
    assert.ok(!view.members.some((m) => m.id === 'n5'), JSON.stringify(view.members))
    const res = await leader.request(`/keys/${keyPath('after-intruders')}`, {
      method: 'PUT',
      body: 'v',
    })
    assert.equal(res.status, 201, res.text())
  })
})
