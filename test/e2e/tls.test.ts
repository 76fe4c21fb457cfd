// End to end: a system with TLS everywhere. Three members (the first bootstraps, the others
// join through https://; their Raft transport is TLS with client certificates), the admin
// and two cache nodes, all with --tls-cert, --tls-key, --tls-ca and --peer-mtls. Through
// https with the CA: puts on a follower (forwarded to the leader over https), gets, a 409
// conflict, a 404; the admin lists https member URLs and reads through; the caches read
// through from the members and from each other's peer listener, which wants a client
// certificate. A client without the CA is refused, and the CLI says why; with --tls-ca the
// CLI reads, and its status shows every node up under https://.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import { KeyConflictError, OnceKV } from '../../src/client/index.ts'
import { caFetch } from '../../src/cli/commands/client-flags.ts'
import type { CacheNodeStats, ClusterResponse } from '../../src/protocol/index.ts'
import { makeCerts } from './certs.ts'
import { freePort, trackChild, waitFor } from './cluster.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(REPO_ROOT, 'bin', 'oncekv.js')

describe('TLS on every HTTP listener', () => {
  const certs = makeCerts()
  const ca = readFileSync(certs.ca)
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-e2e-tls-'))
  const tlsArgs = [
    '--tls-cert',
    certs.cert,
    '--tls-key',
    certs.key,
    '--tls-ca',
    certs.ca,
    '--peer-mtls',
  ]
  const agent = new Agent({ connect: { ca } })
  const children: { name: string; child: ChildProcess; log: string }[] = []
  let failed = false

  function run(name: string, args: string[]): void {
    const log = join(dir, `${name}.log`)
    const fd = openSync(log, 'a')
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT
    delete env.NODE_OPTIONS
    const child = spawn(process.execPath, [BIN, ...args, ...tlsArgs], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', fd, fd],
    })
    closeSync(fd)
    trackChild(child)
    children.push({ name, child, log })
  }

  async function get(url: string): Promise<{ status: number; text: string }> {
    const res = await request(url, { dispatcher: agent, headersTimeout: 2_000 })
    return { status: res.statusCode, text: await res.body.text() }
  }

  async function ready(url: string): Promise<boolean> {
    return (await get(`${url}/readyz`).catch(() => ({ status: 0 }))).status === 200
  }

  const ports: Record<string, number> = {}
  const url = (name: string): string => `https://127.0.0.1:${ports[name]}`

  before(async () => {
    for (const n of [
      'n1',
      'n2',
      'n3',
      'n1r',
      'n2r',
      'n3r',
      'admin',
      'cache',
      'peer',
      'cache2',
      'peer2',
    ])
      ports[n] = await freePort()
    const db = (id: string, via: string[]): void =>
      run(id, [
        'db',
        '--id',
        id,
        '--http',
        `127.0.0.1:${ports[id]}`,
        '--raft',
        `127.0.0.1:${ports[`${id}r`]}`,
        '--data',
        join(dir, id),
        '--tick-ms',
        '20',
        ...(via.length > 0 ? ['--join', ...via] : []),
      ])
    db('n1', [])
    await waitFor('n1 ready over https', () => ready(url('n1')), { timeoutMs: 15_000 })
    db('n2', [url('n1')])
    db('n3', [url('n1')])
    await waitFor(
      'three voters',
      async () => {
        const c = JSON.parse((await get(`${url('n1')}/cluster`)).text) as ClusterResponse
        return c.members.filter((m) => m.suffrage === 'voter').length === 3
      },
      { timeoutMs: 20_000 },
    )
    run('admin', ['admin', '--http', `127.0.0.1:${ports.admin}`, '--db', url('n1')])
    for (const [name, peer] of [
      ['cache', 'peer'],
      ['cache2', 'peer2'],
    ] as const)
      run(name, [
        'cache',
        '--http',
        `127.0.0.1:${ports[name]}`,
        '--peer',
        `127.0.0.1:${ports[peer]}`,
        '--admin',
        url('admin'),
      ])
  })

  afterEach((t) => {
    // TestContext.passed exists since Node 20.12; @types/node 20 does not declare it yet.
    if ((t as { passed?: boolean }).passed === false) failed = true
  })

  after(async () => {
    for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL')
    await Promise.all(
      children.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) resolve()
            else child.once('exit', () => resolve())
          }),
      ),
    )
    await agent.close()
    if (failed) {
      for (const { name, log } of children)
        console.error(
          `--- ${name} (${log}):\n${readFileSync(log, 'utf8').split('\n').slice(-20).join('\n')}`,
        )
      console.error(`kept ${dir}`)
    } else {
      rmSync(dir, { recursive: true, force: true })
      rmSync(certs.dir, { recursive: true, force: true })
    }
  })

  it('puts, gets, conflicts and misses through a follower over https', async () => {
    const c = JSON.parse((await get(`${url('n1')}/cluster`)).text) as ClusterResponse
    const follower = c.members.find((m) => !m.leader) as { http: string }
    // The Raft port speaks TLS too: a handshake with the node certificate completes.
    const cert = readFileSync(certs.cert)
    const key = readFileSync(certs.key)
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: ports.n1r as number, ca, cert, key }, () => {
        resolve(s.authorized)
        s.destroy()
      })
      s.once('error', reject)
    })
    assert.equal(authorized, true)
    const client = new OnceKV({ dbs: [`https://${follower.http}`], fetch: caFetch(ca) })
    assert.deepEqual(await client.put('tls/a', 'one'), { created: true })
    assert.equal(new TextDecoder().decode(await client.get('tls/a')), 'one')
    await assert.rejects(client.put('tls/a', 'two'), KeyConflictError)
    assert.equal(await client.get('tls/missing'), undefined)
    for (let i = 0; i < 8; i++) await client.put(`tls/k${i}`, `v${i}`)
  })

  it('has the admin list https members and the caches read through, from each other over mTLS', async () => {
    const dbs = await waitFor('the admin lists three members', async () => {
      const list = JSON.parse((await get(`${url('admin')}/dbs`)).text) as string[]
      return list.length === 3 && list
    })
    assert.ok(
      dbs.every((u) => u.startsWith('https://127.0.0.1:')),
      dbs.join(', '),
    )
    const caches = await waitFor('the caches join the admin', async () => {
      const list = JSON.parse((await get(`${url('admin')}/caches`)).text) as string[]
      return list.length === 2 && list
    })
    assert.deepEqual(caches.sort(), [url('cache'), url('cache2')].sort())
    // Both know each other (the admin's heartbeat lists both peers) before the reads.
    await waitFor('the caches know their peers', async () => {
      for (const c of ['cache', 'cache2']) {
        const s = JSON.parse((await get(`${url(c)}/stats`)).text) as CacheNodeStats
        if (s.peers.length !== 2) return false
      }
      return true
    })
    const read = await get(`${url('cache')}/keys/tls%2Fa`)
    assert.deepEqual(read, { status: 200, text: 'one' })
    // Half the keys are the other node's: read through its peer listener, with certificates.
    for (let i = 0; i < 8; i++)
      assert.deepEqual(await get(`${url('cache')}/keys/tls%2Fk${i}`), {
        status: 200,
        text: `v${i}`,
      })
    const stats = JSON.parse((await get(`${url('cache')}/stats`)).text) as CacheNodeStats
    assert.ok(stats.PeerLoads > 0, JSON.stringify(stats))
    assert.equal(stats.PeerErrors, 0)
    const viaAdmin = await get(`${url('admin')}/api/lookup/tls%2Fa`)
    assert.equal(viaAdmin.status, 200, viaAdmin.text)
    // The peer listener wants a client certificate signed by the CA (--peer-mtls).
    await assert.rejects(get(`https://127.0.0.1:${ports.peer}/healthz`))
    const withCert = new Agent({
      connect: { ca, cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    })
    try {
      const res = await request(`https://127.0.0.1:${ports.peer}/healthz`, { dispatcher: withCert })
      await res.body.dump()
      // An answer (the listener has no /healthz: 404) means the handshake was accepted.
      assert.equal(res.statusCode, 404)
    } finally {
      await withCert.close()
    }
  })

  it('refuses a client without the CA, and the CLI says why', async () => {
    const run = (
      args: string[],
    ): Promise<{ code: number | null; stderr: string; stdout: string }> =>
      new Promise((resolve, reject) => {
        const env = { ...process.env }
        delete env.NODE_OPTIONS
        delete env.NODE_TEST_CONTEXT
        delete env.NODE_EXTRA_CA_CERTS
        const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env })
        let stderr = ''
        let stdout = ''
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        child.on('error', reject)
        child.on('close', (code) => {
          clearTimeout(timer)
          resolve({ code, stderr, stdout })
        })
      })
    const [without, withCa] = await Promise.all([
      run(['get', '--db', url('n1'), '--timeout', '3000', 'tls/a']),
      run(['get', '--db', url('n1'), '--tls-ca', certs.ca, 'tls/a']),
    ])
    assert.equal(without.code, 1, without.stderr)
    assert.match(without.stderr, /not trusted.*--tls-ca/)
    assert.equal(withCa.code, 0, withCa.stderr)
    assert.equal(withCa.stdout.trim(), 'one')
    // The admin's overview polls each member's /stats with a short deadline: on a busy
    // machine a member may show as down for a poll, so status is asked until all are up.
    type Row = { kind: string; url: string; health: string }
    let last = ''
    const rows = await waitFor(
      'oncekv status over https to show the 3 members up',
      async () => {
        const status = await run([
          'status',
          '--admin',
          url('admin'),
          '--tls-ca',
          certs.ca,
          '--json',
        ])
        assert.equal(status.code, 0, status.stderr)
        last = status.stdout
        const rows = JSON.parse(status.stdout) as Row[]
        return rows.filter((r) => r.kind === 'db' && r.health === 'up').length === 3
          ? rows
          : undefined
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last: ${last}`)
    })
    assert.ok(
      rows.every((r) => r.url.startsWith('https://')),
      last,
    )
  })
})
