// `oncekv dev`: a whole local system in one command: database members, cache nodes and the
// admin with its dashboard, each a real `oncekv` process, with data and logs under one folder.
// Ports are the original's defaults (11000…/12000…, 5551…/5541…, 5546) or free ones where
// those are taken; they are recorded in the folder so a restart finds its members where their
// address books say they are. On a restart, a cache node or the admin whose port is taken
// moves to a free one (they store no address); a member cannot, so its port taken is an
// error that names it. Ctrl-C stops everything: caches and the admin first, then the members
// that follow, then the leader once it has stepped down (see stop), each closing its store
// cleanly.
import { spawn, type ChildProcess } from 'node:child_process'
import { CACHE_NODE_FLAGS } from '../cache/node-flags.ts'
import { DB_NODE_FLAGS } from '../db/node-flags.ts'
import { SECRET_SOURCES } from '../security/index.ts'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { connect, createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../bin/oncekv.js', import.meta.url))

/** STOP_TIMEOUT_MS bounds the graceful stop of each group of processes. */
export const STOP_TIMEOUT_MS = 15_000

/** STEP_DOWN_WAIT_MS bounds the wait for a leader left alone to step down (it does within
 * one or two election timeouts, 0.5 to 1 s by default). */
export const STEP_DOWN_WAIT_MS = 3_000

/** DevOptions are the flags of `oncekv dev`. */
export interface DevOptions {
  readonly nodes: number
  readonly caches: number
  readonly data: string
  readonly fresh: boolean
  readonly host?: string
  readonly logLevel?: string
  /** stopTimeoutMs bounds each group's graceful stop (default STOP_TIMEOUT_MS). */
  readonly stopTimeoutMs?: number
  /** signal interrupts the start: what was started is stopped and start rejects. */
  readonly signal?: AbortSignal
  /** out prints a line for the user. */
  readonly out?: (line: string) => void
}

/**
 * clearDevFolder empties dir for --fresh, but only when it is the folder of an oncekv dev
 * system (it holds ports.json) that is not running (none of its recorded member or admin
 * ports answers): --fresh on a folder of anything else, or on a live system's, would delete
 * data that is not ours to delete.
 */
export async function clearDevFolder(dir: string, host = '127.0.0.1'): Promise<void> {
  if (!existsSync(dir) || readdirSync(dir).length === 0) return
  const portsFile = join(dir, 'ports.json')
  if (!existsSync(portsFile))
    throw new Error(
      `--fresh empties the folder of an oncekv dev system, and ${dir} is not one (it has no ` +
        `ports.json): nothing was deleted; give --data a folder of its own`,
    )
  const recorded = parsePorts(readFileSync(portsFile, 'utf8'), portsFile)
  for (const port of [recorded.admin, ...recorded.dbs.map((d) => d.http)]) {
    if (await portAnswers(host, port))
      throw new Error(
        `--fresh: port ${port} recorded in ${portsFile} answers, so this system may be running ` +
          `(another npm run dev?): stop it first; nothing was deleted`,
      )
  }
  rmSync(dir, { recursive: true, force: true })
}

/** portAnswers tells whether something accepts connections on host:port. */
function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.setTimeout(1_000, () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
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
  /** nodeFlags go to Node.js itself, before the script. */
  readonly nodeFlags?: readonly string[]
  readonly args: string[]
  readonly log: string
  child?: ChildProcess
  exited?: Promise<void>
}

// The original's ports: members' HTTP and Raft, caches' client and peer listeners, the admin.
const DEFAULT_PORTS = {
  dbHttp: 11000,
  dbRaft: 12000,
  cacheHttp: 5551,
  cachePeer: 5541,
  admin: 5546,
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

/** planPorts is where a system of nodes members and caches cache nodes wants to be: the
 * original's ports (members' HTTP 11000…, Raft 12000…; caches' HTTP 5551…, peer 5541…; the
 * admin 5546), each series skipping the ports planned before it, so that no two listeners
 * ever want the same port (seven caches or more would run the peer series into the
 * admin's 5546, ten or more into the caches' HTTP ports). */
export function planPorts(nodes: number, caches: number): DevPorts {
  const used = new Set<number>()
  const series = (start: number): (() => number) => {
    let next = start
    return () => {
      while (used.has(next)) next++
      if (next > 65535) throw new Error('the system needs more ports than there are')
      used.add(next)
      return next++
    }
  }
  const admin = series(DEFAULT_PORTS.admin)()
  const dbHttp = series(DEFAULT_PORTS.dbHttp)
  const dbRaft = series(DEFAULT_PORTS.dbRaft)
  const dbs = []
  for (let i = 0; i < nodes; i++) dbs.push({ id: `n${i + 1}`, http: dbHttp(), raft: dbRaft() })
  const cacheHttp = series(DEFAULT_PORTS.cacheHttp)
  const https = Array.from({ length: caches }, () => cacheHttp())
  const cachePeer = series(DEFAULT_PORTS.cachePeer)
  const list = https.map((http, i) => ({ id: `c${i + 1}`, http, peer: cachePeer() }))
  return { admin, dbs, caches: list }
}

/** allPorts lists every port of a system. */
function allPorts(p: DevPorts): number[] {
  return [
    p.admin,
    ...p.dbs.flatMap((d) => [d.http, d.raft]),
    ...p.caches.flatMap((c) => [c.http, c.peer]),
  ]
}

/** PortPicker hands out the ports of one system: never one twice, never one in use, and a
 * free one in place of a taken one is never a port another listener of the system wants. */
class PortPicker {
  private readonly taken = new Set<number>()
  private readonly reserved: Set<number>

  /** reserved are ports wanted by listeners of the system (planned or recorded). */
  constructor(
    private readonly host: string,
    reserved: readonly number[],
  ) {
    this.reserved = new Set(reserved)
  }

  /** keep records a port the system uses whatever its state (a member's stored address). */
  keep(port: number): void {
    this.taken.add(port)
  }

  /** pick takes the first wanted port that is free, else any free port. */
  async pick(...wanted: number[]): Promise<number> {
    let port: number | undefined
    for (const w of wanted)
      if (!this.taken.has(w) && (await portFree(w, this.host))) {
        port = w
        break
      }
    port ??= await anyFreePort(this.host, new Set([...this.taken, ...this.reserved]))
    this.taken.add(port)
    return port
  }
}

/** PortChoice is the ports of a system and a line saying what was not where expected. */
interface PortChoice {
  readonly ports: DevPorts
  readonly note?: string
}

/** choosePorts, on a first start, takes each planned port if it is free, else a free one. */
async function choosePorts(opts: DevOptions, host: string): Promise<PortChoice> {
  const plan = planPorts(opts.nodes, opts.caches)
  const picker = new PortPicker(host, allPorts(plan))
  const busy: number[] = []
  const pick = async (wanted: number): Promise<number> => {
    const port = await picker.pick(wanted)
    if (port !== wanted) busy.push(wanted)
    return port
  }
  const admin = await pick(plan.admin)
  const dbs = []
  for (const d of plan.dbs)
    dbs.push({ id: d.id, http: await pick(d.http), raft: await pick(d.raft) })
  const caches = []
  for (const c of plan.caches)
    caches.push({ id: c.id, http: await pick(c.http), peer: await pick(c.peer) })
  const ports = { admin, dbs, caches }
  if (busy.length === 0) return { ports }
  const list = busy.sort((a, b) => a - b).join(', ')
  return {
    ports,
    note: `${busy.length === 1 ? 'port' : 'ports'} ${list} ${busy.length === 1 ? 'is' : 'are'} taken; free ones are used instead (listed below)`,
  }
}

/**
 * reusePorts, on a restart, keeps the recorded ports. A member that has a data directory
 * must keep its addresses (the cluster's address book, in every member's data directory,
 * holds them): one of those taken is an error that names it. The caches and the admin
 * store no address, so a taken port of theirs is replaced by a free one, and said so.
 */
async function reusePorts(
  recorded: DevPorts,
  dataDir: string,
  portsFile: string,
  host: string,
): Promise<PortChoice> {
  const plan = planPorts(recorded.dbs.length, recorded.caches.length)
  const picker = new PortPicker(host, [...allPorts(plan), ...allPorts(recorded)])
  const stored = recorded.dbs.filter((d) => existsSync(join(dataDir, d.id)))
  const busy: string[] = []
  for (const d of stored)
    for (const [port, what] of [
      [d.http, 'HTTP'],
      [d.raft, 'Raft'],
    ] as const) {
      if (!(await portFree(port, host))) busy.push(`${port} (${d.id}'s ${what} address)`)
      picker.keep(port)
    }
  if (busy.length > 0)
    throw new Error(
      `${busy.length === 1 ? 'port' : 'ports'} ${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} taken by another process, and a member keeps its addresses (they are stored in the data directories under ${dataDir}): stop that process (another oncekv dev on this folder?) and run again, or start an empty system with --fresh (it deletes ${dataDir})`,
    )
  const moved: string[] = []
  const move = async (what: string, port: number, fallback: number): Promise<number> => {
    const now = await picker.pick(port, fallback)
    if (now !== port) moved.push(`${what} ${port} → ${now}`)
    return now
  }
  const dbs = []
  for (const [i, d] of recorded.dbs.entries())
    dbs.push(
      stored.includes(d)
        ? d
        : {
            id: d.id,
            http: await move(`${d.id} HTTP`, d.http, plan.dbs[i]?.http ?? d.http),
            raft: await move(`${d.id} Raft`, d.raft, plan.dbs[i]?.raft ?? d.raft),
          },
    )
  const caches = []
  for (const [i, c] of recorded.caches.entries())
    caches.push({
      id: c.id,
      http: await move(`${c.id}`, c.http, plan.caches[i]?.http ?? c.http),
      peer: await move(`${c.id} peer`, c.peer, plan.caches[i]?.peer ?? c.peer),
    })
  const ports = { admin: await move('the admin', recorded.admin, plan.admin), dbs, caches }
  if (moved.length === 0) return { ports }
  return {
    ports,
    note: `recorded ${moved.length === 1 ? 'port' : 'ports'} taken, moved: ${moved.join(', ')} (${portsFile} updated)`,
  }
}

/** parsePorts reads ports.json, refusing anything oncekv dev did not write. */
function parsePorts(text: string, file: string): DevPorts {
  const bad = new Error(
    `${file} is not a ports file of oncekv dev: delete it, or start an empty system with --fresh`,
  )
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw bad
  }
  const isPort = (x: unknown): x is number =>
    Number.isInteger(x) && (x as number) > 0 && (x as number) < 65536
  const isList = (x: unknown, second: 'raft' | 'peer'): boolean =>
    Array.isArray(x) &&
    x.every(
      (e: Record<string, unknown> | null) =>
        typeof e === 'object' &&
        e !== null &&
        typeof e.id === 'string' &&
        isPort(e.http) &&
        isPort(e[second]),
    )
  const o = v as Record<string, unknown> | null
  if (
    typeof o !== 'object' ||
    o === null ||
    !isPort(o.admin) ||
    !isList(o.dbs, 'raft') ||
    !isList(o.caches, 'peer')
  )
    throw bad
  return o as unknown as DevPorts
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

/** shellWord quotes a word for a POSIX shell when it needs it (a folder with a space). */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/** DevCluster is a running local system. */
export class DevCluster {
  private stopping: Promise<readonly string[]> | undefined

  private constructor(
    readonly ports: DevPorts,
    readonly host: string,
    readonly dataDir: string,
    private readonly procs: Proc[],
    private readonly out: (line: string) => void,
    private readonly stopTimeoutMs: number,
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
    if (opts.fresh) await clearDevFolder(dataDir, host)
    mkdirSync(join(dataDir, 'logs'), { recursive: true })
    const portsFile = join(dataDir, 'ports.json')
    let choice: PortChoice
    if (existsSync(portsFile)) {
      const recorded = parsePorts(readFileSync(portsFile, 'utf8'), portsFile)
      if (recorded.dbs.length !== opts.nodes || recorded.caches.length !== opts.caches)
        throw new Error(
          `${dataDir} holds a system of ${recorded.dbs.length} members and ${recorded.caches.length} caches; use --fresh to start another shape`,
        )
      choice = await reusePorts(recorded, dataDir, portsFile, host)
    } else {
      choice = await choosePorts(opts, host)
    }
    const ports = choice.ports
    writeFileSync(portsFile, JSON.stringify(ports, null, 2))
    if (choice.note) out(`oncekv dev: ${choice.note}`)
    const level = opts.logLevel ?? 'info'
    const dbUrl = (p: number): string => `http://${host}:${p}`
    const first = ports.dbs[0]
    if (!first) throw new Error('--nodes must be at least 1')
    const procs: Proc[] = ports.dbs.map((d, i) => ({
      id: d.id,
      kind: 'db' as const,
      log: join(dataDir, 'logs', `${d.id}.log`),
      nodeFlags: DB_NODE_FLAGS,
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
        '--started-by',
        'dev',
        '--log-level',
        level,
      ],
    }
    const caches: Proc[] = ports.caches.map((c) => ({
      id: c.id,
      kind: 'cache' as const,
      log: join(dataDir, 'logs', `${c.id}.log`),
      nodeFlags: CACHE_NODE_FLAGS,
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
    const dev = new DevCluster(
      ports,
      host,
      dataDir,
      all,
      out,
      opts.stopTimeoutMs ?? STOP_TIMEOUT_MS,
    )
    try {
      out(
        `oncekv dev: starting ${opts.nodes} database ${opts.nodes === 1 ? 'member' : 'members'}, ${opts.caches} cache ${opts.caches === 1 ? 'node' : 'nodes'} and the admin (data in ${dataDir})`,
      )
      const withheld = SECRET_VARIABLES.filter((v) => process.env[v] !== undefined)
      out(
        `oncekv dev: auth off (oncekv dev)${withheld.length > 0 ? `: ${withheld.join(', ')} not passed to the processes` : ''}`,
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
      p.child = spawn(process.execPath, [...(p.nodeFlags ?? []), BIN, ...p.args], {
        env: devChildEnv(process.env),
        stdio: ['ignore', fd, fd],
        detached: true,
      })
    } finally {
      closeSync(fd)
    }
    const child = p.child
    p.exited = new Promise((res) => {
      child.once('exit', (code, signal) => {
        if (!this.stopping) {
          // The rest of the system goes on without it; the same command starts it again (a
          // member catches up from the others).
          // Without the token and secret variables, as this command starts its processes
          // (devChildEnv), even if the shell it is pasted in has them.
          const again = [
            ...(SECRET_VARIABLES.some((v) => process.env[v] !== undefined)
              ? ['env', ...SECRET_VARIABLES.flatMap((v) => ['-u', v])]
              : []),
            process.execPath,
            ...(p.nodeFlags ?? []),
            BIN,
            ...p.args,
          ]
            .map(shellWord)
            .join(' ')
          this.out(
            `oncekv dev: ${p.id} exited (${signal ?? `code ${code}`}); its log is ${p.log}\n` +
              `  to start it again: ${again} >> ${shellWord(p.log)} 2>&1 &`,
          )
        }
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
    // A file to store as a blob: package.json where it runs (npm run dev runs in the
    // project), else the ports file, which is always there.
    const file = existsSync('package.json')
      ? { path: 'package.json', name: 'package.json' }
      : { path: join(this.dataDir, 'ports.json'), name: 'ports.json' }
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
        `  curl -XPUT --data-binary ${shellWord(`@${file.path}`)} ${u(first.http)}/keys/files/${file.name}`,
      )
    }
    if (cache)
      lines.push(
        `  curl ${u(cache.http)}/key/foo`,
        `  curl -i ${u(cache.http)}/keys/files/${file.name}`,
      )
    lines.push(
      `  curl ${u(this.ports.admin)}/caches`,
      `  curl ${u(this.ports.admin)}/dbs`,
      '',
      'Ctrl-C stops everything.',
    )
    return lines.join('\n')
  }

  /**
   * stop stops every process with SIGTERM and waits; one still running after stopTimeoutMs
   * is killed. It resolves, once every process has exited, with the ids of those that had to
   * be killed (none on a clean stop).
   *
   * The order saves the leader's hand-over, which is no use when the whole cluster goes down:
   * a leader told to stop first hands leadership to the most caught-up voter and waits up to
   * 3 s for it to take over, and with every member stopping at once that voter is gone before
   * it can, so the wait runs out (3.1 s measured). So: the caches and the admin first (they
   * read from the members), then every member but the leader (a follower stops at once), then
   * the leader, once it has stepped down for want of a majority (Raft's check-quorum, within
   * one or two election timeouts): a member that is not the leader hands nothing over. If the
   * leader is not known, or does not step down within STEP_DOWN_WAIT_MS, it is stopped anyway
   * (and waits out its hand-over).
   */
  stop(): Promise<readonly string[]> {
    this.stopping ??= (async () => {
      const killed: string[] = []
      const leader = this.findLeader()
      await this.stopGroup(
        this.procs.filter((p) => p.kind === 'cache' || p.kind === 'admin'),
        killed,
      )
      const lead = await leader
      const members = this.procs.filter((p) => p.kind === 'db')
      await this.stopGroup(
        members.filter((p) => p.id !== lead?.id),
        killed,
      )
      const last = members.find((p) => p.id === lead?.id)
      if (last) {
        // A leader without peers (--nodes 1) hands nothing over, and never steps down.
        if (lead && lead.peers > 0) await this.waitStepDown(last.id)
        await this.stopGroup([last], killed)
      }
      return killed
    })()
    return this.stopping
  }

  /** stopGroup sends SIGTERM to the procs that run, waits up to stopTimeoutMs, kills those
   * still running (adding them to killed) and waits for them to be gone too. */
  private async stopGroup(procs: readonly Proc[], killed: string[]): Promise<void> {
    const running = (p: Proc): boolean =>
      p.child !== undefined && p.child.exitCode === null && p.child.signalCode === null
    const group = procs.filter(running)
    for (const p of group) p.child?.kill('SIGTERM')
    const all = Promise.all(group.map((p) => p.exited))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, this.stopTimeoutMs)))])
    clearTimeout(timer)
    for (const p of group)
      if (running(p)) {
        killed.push(p.id)
        p.child?.kill('SIGKILL')
      }
    // Wait for the killed ones too: dev never exits before a process it started.
    await all
  }

  /** memberState is a member's Raft state and peer count from its /stats, undefined when
   * it does not answer. */
  private async memberState(id: string): Promise<{ state: string; num_peers: number } | undefined> {
    const d = this.ports.dbs.find((x) => x.id === id)
    if (!d) return undefined
    try {
      const res = await fetch(`http://${this.host}:${d.http}/stats`, {
        signal: AbortSignal.timeout(500),
      })
      if (!res.ok) return undefined
      return (await res.json()) as { state: string; num_peers: number }
    } catch {
      return undefined
    }
  }

  /** findLeader is the member that says it leads, if one does, and its number of peers. */
  private async findLeader(): Promise<{ id: string; peers: number } | undefined> {
    const ids = this.procs.filter((p) => p.kind === 'db' && p.child).map((p) => p.id)
    const states = await Promise.all(ids.map((id) => this.memberState(id)))
    const i = states.findIndex((s) => s?.state === 'Leader')
    const id = ids[i]
    return id === undefined ? undefined : { id, peers: states[i]?.num_peers ?? 0 }
  }

  /** waitStepDown waits until member id no longer says it leads (or does not answer), at
   * most STEP_DOWN_WAIT_MS. */
  private async waitStepDown(id: string): Promise<void> {
    const deadline = Date.now() + STEP_DOWN_WAIT_MS
    while (Date.now() < deadline && (await this.memberState(id))?.state === 'Leader')
      await new Promise((r) => setTimeout(r, 50))
  }
}

/** SECRET_VARIABLES are the environment variables that carry tokens and the cluster secret. */
const SECRET_VARIABLES = Object.values(SECRET_SOURCES).map((s) => s.env)

/** devChildEnv is env without the token and secret variables: `oncekv dev` runs with auth
 * off, whatever its own environment holds. */
export function devChildEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env }
  for (const v of SECRET_VARIABLES) delete out[v]
  return out
}
