// `oncekv dev`: a whole local system in one command: database members, cache nodes and the
// admin with its dashboard, each a real `oncekv` process, with data and logs under one folder.
// Ports are the original's defaults (11000…/12000…, 5551…/5541…, 5546) or free ones where
// those are taken; they are recorded in the folder so a restart finds its members where their
// address books say they are. Ctrl-C stops everything: caches and the admin first, then the
// members (each hands leadership over and closes its store cleanly).
import { spawn, type ChildProcess } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/oncekv.js', import.meta.url))

/** DevOptions are the flags of `oncekv dev`. */
export interface DevOptions {
  readonly nodes: number
  readonly caches: number
  readonly data: string
  readonly fresh: boolean
  readonly host?: string
  readonly logLevel?: string
  /** signal interrupts the start: what was started is stopped and start rejects. */
  readonly signal?: AbortSignal
  /** out prints a line for the user. */
  readonly out?: (line: string) => void
}

/** DevPorts are the ports of one local system, kept in <data>/ports.json. */
export interface DevPorts {
  readonly admin: number
  readonly dbs: readonly { readonly id: string; readonly http: number; readonly raft: number }[]
  readonly caches: readonly { readonly id: string; readonly http: number; readonly peer: number }[]
}

interface Proc {
  readonly id: string
  readonly kind: 'db' | 'cache' | 'admin'
  readonly args: string[]
  readonly log: string
  child?: ChildProcess
  exited?: Promise<void>
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer()
    srv.once('error', () => res(false))
    srv.listen(port, host, () => srv.close(() => res(true)))
  })
}

async function anyFreePort(host: string, taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const srv = createServer()
      srv.once('error', rej)
      srv.listen(0, host, () => {
        const a = srv.address()
        const p = typeof a === 'object' && a ? a.port : 0
        srv.close(() => res(p))
      })
    })
    if (!taken.has(port)) return port
  }
}

/** choosePorts takes each default port if it is free, else a free one. */
async function choosePorts(opts: DevOptions, host: string): Promise<DevPorts> {
  const taken = new Set<number>()
  const pick = async (wanted: number): Promise<number> => {
    const port =
      !taken.has(wanted) && (await portFree(wanted, host)) ? wanted : await anyFreePort(host, taken)
    taken.add(port)
    return port
  }
  const dbs = []
  for (let i = 0; i < opts.nodes; i++)
    dbs.push({ id: `n${i + 1}`, http: await pick(11000 + i), raft: await pick(12000 + i) })
  const caches = []
  for (let i = 0; i < opts.caches; i++)
    caches.push({ id: `c${i + 1}`, http: await pick(5551 + i), peer: await pick(5541 + i) })
  return { admin: await pick(5546), dbs, caches }
}

/** reusePorts checks the recorded ports. The members' addresses are stored in their data
 * directories, so a taken member port is an error that says what to do; the admin and the
 * caches store none, so a taken port of theirs is replaced by a free one (and said so). */
async function reusePorts(
  ports: DevPorts,
  host: string,
  portsFile: string,
  out: (line: string) => void,
): Promise<DevPorts> {
  for (const d of ports.dbs)
    for (const [what, p] of [
      ['HTTP', d.http],
      ['peer', d.raft],
    ] as const)
      if (!(await portFree(p, host)))
        throw new Error(
          `port ${p} (the ${what} port of member ${d.id}, recorded in ${portsFile} and in its ` +
            `data directory) is taken: stop what uses it, or start afresh with --fresh`,
        )
  const taken = new Set<number>(ports.dbs.flatMap((d) => [d.http, d.raft]))
  const keep = async (what: string, p: number): Promise<number> => {
    if (!taken.has(p) && (await portFree(p, host))) {
      taken.add(p)
      return p
    }
    const q = await anyFreePort(host, taken)
    taken.add(q)
    out(`  port ${p} of ${what} is taken; using ${q}`)
    return q
  }
  const caches = []
  for (const c of ports.caches)
    caches.push({
      id: c.id,
      http: await keep(`cache ${c.id}`, c.http),
      peer: await keep(`cache ${c.id} (peer)`, c.peer),
    })
  return { admin: await keep('the admin', ports.admin), dbs: ports.dbs, caches }
}

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  procs: Proc[],
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (signal?.aborted) throw new Error('interrupted while starting')
    const dead = procs.find((p) => p.child && p.child.exitCode !== null)
    if (dead) throw new Error(`${dead.id} exited (code ${dead.child?.exitCode}); see ${dead.log}`)
    if (await check().catch(() => false)) return
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
  if (!res.ok) throw new Error(`${url}: ${res.status}`)
  return (await res.json()) as T
}

/** DevCluster is a running local system. */
export class DevCluster {
  private stopping: Promise<void> | undefined

  private constructor(
    readonly ports: DevPorts,
    readonly host: string,
    readonly dataDir: string,
    private readonly procs: Proc[],
    private readonly out: (line: string) => void,
  ) {}

  /** adminUrl is the dashboard's URL. */
  get adminUrl(): string {
    return `http://${this.host}:${this.ports.admin}`
  }

  /** start starts every process and waits until the system serves. */
  static async start(opts: DevOptions): Promise<DevCluster> {
    const out = opts.out ?? ((l: string) => console.log(l))
    const host = opts.host ?? '127.0.0.1'
    const dataDir = resolve(opts.data)
    if (opts.fresh) rmSync(dataDir, { recursive: true, force: true })
    mkdirSync(join(dataDir, 'logs'), { recursive: true })
    const portsFile = join(dataDir, 'ports.json')
    let ports: DevPorts
    if (existsSync(portsFile)) {
      ports = JSON.parse(readFileSync(portsFile, 'utf8')) as DevPorts
      if (ports.dbs.length !== opts.nodes || ports.caches.length !== opts.caches)
        throw new Error(
          `${dataDir} holds a system of ${ports.dbs.length} members and ${ports.caches.length} caches; use --fresh to start another shape`,
        )
      ports = await reusePorts(ports, host, portsFile, out)
      writeFileSync(portsFile, JSON.stringify(ports, null, 2))
    } else {
      ports = await choosePorts(opts, host)
      writeFileSync(portsFile, JSON.stringify(ports, null, 2))
    }
    const level = opts.logLevel ?? 'info'
    const dbUrl = (p: number): string => `http://${host}:${p}`
    const first = ports.dbs[0]
    if (!first) throw new Error('--nodes must be at least 1')
    const procs: Proc[] = ports.dbs.map((d, i) => ({
      id: d.id,
      kind: 'db' as const,
      log: join(dataDir, 'logs', `${d.id}.log`),
      args: [
        'db',
        '--id',
        d.id,
        '--http',
        `${host}:${d.http}`,
        '--raft',
        `${host}:${d.raft}`,
        '--data',
        join(dataDir, d.id),
        '--log-level',
        level,
        ...(i === 0 ? [] : ['--join', dbUrl(first.http)]),
      ],
    }))
    const admin: Proc = {
      id: 'admin',
      kind: 'admin',
      log: join(dataDir, 'logs', 'admin.log'),
      args: [
        'admin',
        '--http',
        `${host}:${ports.admin}`,
        '--db',
        ...ports.dbs.map((d) => dbUrl(d.http)),
        '--log-level',
        level,
      ],
    }
    const caches: Proc[] = ports.caches.map((c) => ({
      id: c.id,
      kind: 'cache' as const,
      log: join(dataDir, 'logs', `${c.id}.log`),
      args: [
        'cache',
        '--http',
        `${host}:${c.http}`,
        '--peer',
        `${host}:${c.peer}`,
        '--admin',
        dbUrl(ports.admin),
        '--log-level',
        level,
      ],
    }))
    const all = [...procs, admin, ...caches]
    const dev = new DevCluster(ports, host, dataDir, all, out)
    try {
      out(
        `oncekv dev: starting ${opts.nodes} database members, ${opts.caches} cache nodes and the admin (data in ${dataDir})`,
      )
      // A first start bootstraps n1 and joins the rest through it; a restart starts every
      // member at once, since none can serve before a majority is back.
      const restart = ports.dbs.every((d) => existsSync(join(dataDir, d.id)))
      dev.spawn(procs[0] as Proc)
      if (!restart)
        await waitUntil(
          'n1 to be ready',
          async () => (await fetch(`${dbUrl(first.http)}/readyz`)).ok,
          30_000,
          all,
          opts.signal,
        )
      for (const p of procs.slice(1)) dev.spawn(p)
      await waitUntil(
        'every member to be a voter and ready',
        async () => {
          const c = await getJson<{ members: { id: string; suffrage: string }[] }>(
            `${dbUrl(first.http)}/cluster`,
          )
          if (
            !ports.dbs.every((d) => c.members.some((m) => m.id === d.id && m.suffrage === 'voter'))
          )
            return false
          const ready = await Promise.all(
            ports.dbs.map((d) => fetch(`${dbUrl(d.http)}/readyz`).then((r) => r.ok)),
          )
          return ready.every(Boolean)
        },
        60_000,
        all,
        opts.signal,
      )
      dev.spawn(admin)
      for (const c of caches) dev.spawn(c)
      const peers = ports.caches
        .map((c) => dbUrl(c.peer))
        .sort()
        .join(',')
      await waitUntil(
        'the caches to form their ring',
        async () => {
          for (const c of ports.caches) {
            const s = await getJson<{ peers: string[]; dbs: unknown[] }>(`${dbUrl(c.http)}/stats`)
            if (s.peers.join(',') !== peers || s.dbs.length === 0) return false
          }
          return true
        },
        30_000,
        all,
        opts.signal,
      )
      return dev
    } catch (e) {
      await dev.stop()
      throw e
    }
  }

  private spawn(p: Proc): void {
    const fd = openSync(p.log, 'a')
    try {
      // Each in its own process group: Ctrl-C in a terminal reaches only this process, which
      // then stops the others in order (caches and the admin, then the members).
      p.child = spawn(process.execPath, [BIN, ...p.args], {
        stdio: ['ignore', fd, fd],
        detached: true,
      })
    } finally {
      closeSync(fd)
    }
    const child = p.child
    p.exited = new Promise((res) => {
      child.once('exit', (code, signal) => {
        if (!this.stopping)
          this.out(`oncekv dev: ${p.id} exited (${signal ?? `code ${code}`}); its log is ${p.log}`)
        res()
      })
      child.once('error', () => res())
    })
  }

  /** describe is the banner: URLs, pids, logs and things to try. */
  describe(): string {
    const u = (p: number): string => `http://${this.host}:${p}`
    const pid = (id: string): string =>
      String(this.procs.find((p) => p.id === id)?.child?.pid ?? '-')
    const first = this.ports.dbs[0]
    const cache = this.ports.caches[0]
    const lines = [
      '',
      `  dashboard  ${u(this.ports.admin)}    (admin pid ${pid('admin')})`,
      ...this.ports.dbs.map(
        (d) => `  database   ${d.id}  ${u(d.http)}  raft ${this.host}:${d.raft}  pid ${pid(d.id)}`,
      ),
      ...this.ports.caches.map(
        (c) => `  cache      ${c.id}  ${u(c.http)}  peer ${this.host}:${c.peer}  pid ${pid(c.id)}`,
      ),
      `  data       ${this.dataDir}   logs in ${join(this.dataDir, 'logs')}`,
      '',
      'Try:',
    ]
    if (first) {
      lines.push(
        `  curl -XPOST ${u(first.http)}/key -H 'content-type: application/json' -d '{"key":"foo","value":"bar"}'`,
        `  curl ${u(first.http)}/i/key/foo`,
        `  curl -XPUT --data-binary @package.json ${u(first.http)}/keys/files/package.json`,
      )
    }
    if (cache)
      lines.push(
        `  curl ${u(cache.http)}/key/foo`,
        `  curl -i ${u(cache.http)}/keys/files/package.json`,
      )
    lines.push(
      `  curl ${u(this.ports.admin)}/caches`,
      `  curl ${u(this.ports.admin)}/dbs`,
      '',
      'Ctrl-C stops everything.',
    )
    return lines.join('\n')
  }

  /** stop sends SIGTERM to every process (caches and the admin first) and waits; any still
   * running after 15 s is killed. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const order: Proc['kind'][][] = [['cache', 'admin'], ['db']]
      for (const kinds of order) {
        const group = this.procs.filter(
          (p) =>
            kinds.includes(p.kind) &&
            p.child &&
            p.child.exitCode === null &&
            p.child.signalCode === null,
        )
        for (const p of group) p.child?.kill('SIGTERM')
        await Promise.race([
          Promise.all(group.map((p) => p.exited)),
          new Promise((r) => setTimeout(r, 15_000).unref()),
        ])
        for (const p of group)
          if (p.child && p.child.exitCode === null && p.child.signalCode === null)
            p.child.kill('SIGKILL')
      }
    })()
    return this.stopping
  }
}
