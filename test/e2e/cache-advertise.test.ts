// End to end: advertised addresses. A cache node that listens on every interface (0.0.0.0)
// names itself by the URLs given with --advertise-http and --advertise-peer: the admin lists
// it under them, the others' rings hold its advertised peer URL, and reads cross the ring
// both ways. Without those flags such a node is refused with a usage error (exit 2), since
// "0.0.0.0" is no address another node can connect to.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'
import { HashRing } from '../../src/cache/ring.ts'
import { CacheProcess, freePort, waitFor, type Cluster } from './cluster.ts'
import { useClusters } from './hooks.ts'
import { keyPath, type HttpResponse } from './http.ts'

const BIN = fileURLToPath(new URL('../../bin/oncekv.js', import.meta.url))

/** portOf is the port of a "host:port" address. */
function portOf(address: string): string {
  return address.slice(address.lastIndexOf(':') + 1)
}

/** WildcardCache is a cache node that listens on 0.0.0.0 and advertises the loopback URLs
 * the harness knows it by (url, peerUrl). */
class WildcardCache extends CacheProcess {
  override args(): string[] {
    const args = super.args()
    args[args.indexOf('--http') + 1] = `0.0.0.0:${portOf(this.http)}`
    args[args.indexOf('--peer') + 1] = `0.0.0.0:${portOf(this.peer)}`
    return [...args, '--advertise-http', this.url, '--advertise-peer', this.peerUrl, '--insecure']
  }
}

/** Run is how a CLI run ended. */
interface Run {
  readonly code: number | null
  readonly stderr: string
}

/** oncekv runs the CLI to its end (at most 30 s) and says how it ended. */
async function oncekv(args: readonly string[]): Promise<Run> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_TEST_CONTEXT
  try {
    const { stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], {
      env,
      timeout: 30_000,
    })
    return { code: 0, stderr }
  } catch (e) {
    const failed = e as { code?: number | string; stderr?: string }
    return {
      code: typeof failed.code === 'number' ? failed.code : null,
      stderr: failed.stderr ?? '',
    }
  }
}

describe('advertised addresses of a cache node', () => {
  const clusters = useClusters()
  let cluster: Cluster
  let wild: WildcardCache

  before(async () => {
    // One member is enough: this file is about how cache nodes name themselves.
    cluster = await clusters.start({ name: 'cache-advertise', size: 1 })
    await cluster.startAdmin()
    await cluster.startCaches(2)
  })

  after(async () => {
    if (wild?.running) await wild.signal('SIGKILL')
  })

  it('joins the admin under its advertised URLs and serves reads through the ring', async (t) => {
    const [c1, c2] = cluster.caches() as [CacheProcess, CacheProcess]
    wild = new WildcardCache(
      'wild',
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${await freePort()}`,
      join(cluster.root, 'logs', 'wild.log'),
      { admin: cluster.admin.url },
    )
    wild.start()
    t.diagnostic(`started: ${wild.args().slice(1).join(' ')}`)
    const nodes = [c1, c2, wild]
    const urls = nodes.map((c) => c.url).sort()
    await waitFor('the admin to list the node under its advertised URL', async () => {
      if (!wild.running) throw new Error(`wild exited: ${wild.logTail()}`)
      return (await cluster.admin.caches()).join(' ') === urls.join(' ')
    })
    const peers = nodes.map((c) => c.peerUrl).sort()
    await waitFor('every ring to hold the advertised peer URL', async () => {
      for (const c of nodes) if ((await c.stats()).peers.join(' ') !== peers.join(' ')) return false
      return true
    })
    const stats = await wild.stats()
    assert.equal(stats.node, wild.url)
    assert.equal(stats.peer, wild.peerUrl)
    assert.doesNotMatch(JSON.stringify(await cluster.admin.caches()), /0\.0\.0\.0/)

    // One key the node owns, read through c1; one c1 owns, read through the node.
    const ring = new HashRing(peers)
    const member = cluster.running()[0]
    assert(member)
    const values = new Map<string, string>()
    for (let i = 0; i < 40; i++) {
      const key = `advertise/${i}`
      const value = `value ${i} ${randomBytes(6).toString('hex')}`
      const res: HttpResponse = await member.request(`/keys/${keyPath(key)}`, {
        method: 'PUT',
        body: value,
      })
      assert.equal(res.status, 201, res.text())
      values.set(key, value)
    }
    const ownedBy = (c: CacheProcess): string => {
      const key = [...values.keys()].find((k) => ring.owner(k) === c.peerUrl)
      assert(key, `${c.id} owns none of ${values.size} keys`)
      return key
    }
    const served = (await wild.stats()).ServerRequests
    const pairs: [CacheProcess, CacheProcess][] = [
      [c1, wild],
      [wild, c1],
    ]
    for (const [reader, owner] of pairs) {
      const key = ownedBy(owner)
      const res = await reader.request(`/keys/${keyPath(key)}`)
      assert.equal(res.status, 200, `${reader.id} ${key}: ${res.text()}`)
      assert.equal(res.text(), values.get(key))
      assert.equal(res.headers.get('x-oncekv-source'), 'peer', `${reader.id} asked ${owner.id}`)
    }
    assert.equal((await wild.stats()).ServerRequests, served + 1, 'the node served c1')
  })

  it('refuses to advertise the unspecified address, with a usage error naming the flag', async () => {
    const admin = ['--admin', cluster.admin.url]
    const [http, peer] = [await freePort(), await freePort()]
    // Every case but the first two gives --insecure (those are about protected mode).
    const cases: [string[], RegExp][] = [
      // Protected mode: beyond loopback, neither an admin token nor a cluster secret.
      [
        [
          '--http',
          `0.0.0.0:${http}`,
          '--peer',
          `127.0.0.1:${peer}`,
          '--advertise-http',
          `http://127.0.0.1:${http}`,
        ],
        /--http 0\.0\.0\.0:\d+ is not a loopback address .*ONCEKV_ADMIN_TOKEN.*--insecure/,
      ],
      // Protected mode: a peer listener beyond loopback without the cluster secret.
      [
        ['--http', `127.0.0.1:${http}`, '--peer', `0.0.0.0:${peer}`],
        /--peer 0\.0\.0\.0:\d+ is not a loopback address and no cluster secret .*--insecure/,
      ],
      [
        ['--http', `0.0.0.0:${http}`, '--peer', `127.0.0.1:${peer}`],
        /--http 0\.0\.0\.0:\d+ listens on every interface.* give --advertise-http http:\/\//,
      ],
      [
        ['--http', `127.0.0.1:${http}`, '--peer', `[::]:${peer}`],
        /--peer \[::\]:\d+ listens on every interface.* give --advertise-peer http:\/\//,
      ],
      [
        [
          '--http',
          `0.0.0.0:${http}`,
          '--peer',
          `127.0.0.1:${peer}`,
          '--advertise-http',
          `0:${http}`,
        ],
        /--advertise-http http:\/\/0:\d+ is no address others can reach/,
      ],
    ]
    for (const [i, [args, message]] of cases.entries()) {
      const run = await oncekv(['cache', ...args, ...admin, ...(i < 2 ? [] : ['--insecure'])])
      assert.equal(run.code, 2, `${args.join(' ')}: exit ${run.code}: ${run.stderr}`)
      assert.match(run.stderr, message, args.join(' '))
      assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`)
    }
    // Nothing joined.
    assert.deepEqual(
      (await cluster.admin.caches()).sort(),
      [...cluster.caches(), wild].map((c) => c.url).sort(),
    )
  })
})
