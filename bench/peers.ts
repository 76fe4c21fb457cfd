// The systems oncekv is compared with, run on loopback with their data under a temp folder:
// a 3-member etcd cluster (Debian's etcd-server, default fsync settings, explicit ports) and
// Redis servers (Debian's redis-server) with an append-only file. Each is a set of processes
// started by PID under the harness's guard (bench/servers.ts), stopped by stop().
import type { ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { freePort, GiveUp, waitFor } from '../test/e2e/cluster.ts'
import { running, spawnServer, stopChild } from './servers.ts'

/** PeerSystem is a running server system: its processes and how to stop them. */
export interface PeerSystem {
  readonly procs: readonly ChildProcess[]
  stop(): Promise<void>
}

/** EtcdCluster is a running etcd cluster; endpoints are the members' client URLs. */
export interface EtcdCluster extends PeerSystem {
  readonly endpoints: readonly string[]
}

/** startEtcd starts `members` etcd members (one bootstrapped cluster) with their data under
 * root/etcd, logs in root/logs, and waits until every member reports itself healthy. */
export async function startEtcd(binary: string, root: string, members = 3): Promise<EtcdCluster> {
  const names = Array.from({ length: members }, (_, i) => `e${i + 1}`)
  const ports: { client: number; peer: number }[] = []
  for (const _ of names) ports.push({ client: await freePort(), peer: await freePort() })
  const initial = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i]?.peer}`).join(',')
  const token = `oncekv-compare-${process.pid}-${Date.now().toString(36)}`
  const procs: ChildProcess[] = []
  const endpoints: string[] = []
  for (const [i, name] of names.entries()) {
    const p = ports[i] as (typeof ports)[number]
    const client = `http://127.0.0.1:${p.client}`
    const peer = `http://127.0.0.1:${p.peer}`
    const dataDir = join(root, 'etcd', name)
    mkdirSync(dataDir, { recursive: true })
    endpoints.push(client)
    procs.push(
      spawnServer(
        binary,
        [
          '--name',
          name,
          '--data-dir',
          dataDir,
          '--listen-client-urls',
          client,
          '--advertise-client-urls',
          client,
          '--listen-peer-urls',
          peer,
          '--initial-advertise-peer-urls',
          peer,
          '--initial-cluster',
          initial,
          '--initial-cluster-token',
          token,
          '--initial-cluster-state',
          'new',
          '--logger',
          'zap',
          '--log-level',
          'warn',
        ],
        join(root, 'logs', `etcd-${name}.log`),
      ),
    )
  }
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((c) => stopChild(c)))
  }
  try {
    await waitFor(
      'every etcd member to be healthy',
      async () => {
        for (const [i, c] of procs.entries()) {
          if (!running(c)) throw new GiveUp(`etcd member e${i + 1} exited (${c.exitCode})`)
        }
        const health = await Promise.all(
          endpoints.map(async (u) => {
            const res = await fetch(`${u}/health`, { signal: AbortSignal.timeout(1_000) })
            return ((await res.json()) as { health?: string }).health === 'true'
          }),
        )
        return health.every(Boolean)
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
  } catch (e) {
    await stop()
    throw e
  }
  return { procs, endpoints, stop }
}

/** RedisServer is one running redis-server. */
export interface RedisServer extends PeerSystem {
  readonly port: number
}

/** startRedis starts redis-server on a free loopback port with its data in root/redis-<name>:
 * appendonly yes with the given appendfsync policy; RDB snapshots and automatic AOF rewrites
 * are off, so no fork runs during a measurement (the AOF alone holds the data). */
export async function startRedis(
  binary: string,
  root: string,
  name: string,
  appendfsync: 'always' | 'everysec',
): Promise<RedisServer> {
  const port = await freePort()
  const dir = join(root, `redis-${name}`)
  mkdirSync(dir, { recursive: true })
  const child = spawnServer(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      appendfsync,
      '--save',
      '',
      '--auto-aof-rewrite-percentage',
      '0',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ],
    join(root, 'logs', `redis-${name}.log`),
  )
  const stop = (): Promise<void> => stopChild(child)
  try {
    await waitFor(
      `redis-server ${name} to answer PING`,
      async () => {
        if (!running(child)) throw new GiveUp(`redis-server ${name} exited (${child.exitCode})`)
        return (await redisPing(port)) === '+PONG'
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    )
  } catch (e) {
    await stop()
    throw e
  }
  return { procs: [child], port, stop }
}

/** redisPing sends PING over a fresh connection and returns the first line of the answer. */
async function redisPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let buf = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('no answer to PING'))
    }, 1_000)
    s.on('connect', () => s.write('PING\r\n'))
    s.on('data', (d) => {
      buf += d.toString('latin1')
      const i = buf.indexOf('\r\n')
      if (i >= 0) {
        clearTimeout(timer)
        s.destroy()
        resolve(buf.slice(0, i))
      }
    })
    s.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}
