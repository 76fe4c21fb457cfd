// A harness that runs real `oncekv db` processes on loopback for end-to-end tests and
// benchmarks: free ports, temp data directories, one log file per member, start, kill -9,
// SIGTERM and restart by id, the leader, and waits on conditions with a deadline (never a
// fixed sleep). It only ever signals processes it spawned itself, and it kills every one of
// them on close and when this process exits, whatever the outcome of the tests.
//
// Usage (tests get Cluster.start through useClusters in hooks.ts, which closes it for them):
//   const cluster = await Cluster.start({ name: 'bench', size: 3, tickMs: 20 })
//   const { node, stats } = await cluster.leader()  // agreed by a majority
//   await cluster.kill(node.id)                     // SIGKILL, waits for the exit
//   cluster.restart(node.id)                        // same id, ports and data directory
//   await cluster.waitReady(node.id)
//   await cluster.waitCaughtUp([node.id])           // applied the leader's commit index
//   await cluster.close()                           // kills what is left, removes the dir
// Write load and read-back checks are in load.ts, the HTTP client in http.ts.
import { spawn, type ChildProcess } from 'node:child_process'
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CACHE_NODE_FLAGS } from '../../src/cache/node-flags.ts'
import { DB_NODE_FLAGS } from '../../src/db/node-flags.ts'
import type { CacheNodeStats, ClusterResponse, DbStats } from '../../src/protocol/index.ts'
import { getJson, request, type HttpResponse, type RequestOptions } from './http.ts'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(REPO_ROOT, 'bin', 'oncekv.js')
const START_MARKER = '=== e2e harness: start '

// ------------------------------------------------------------------ process registry

// Every child this module spawned and has not seen exit. Kept process-wide on purpose: the
// exit hook must find them however a test file ends (failure, timeout, a signal).
const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false
let watchdog: ChildProcess | undefined

// The watchdog is a tiny process that outlives this one by a moment: it learns the pid of
// every member spawned ("+pid") and exited ("-pid") on its stdin, and when its stdin closes
// (this process ended in any way, even by SIGKILL, when no exit hook runs) it SIGKILLs the
// members still listed. It only ever kills pids this module told it about.
const WATCHDOG_SCRIPT = `
const pids = new Set()
let buf = ''
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {})
process.stdin.setEncoding('utf8')
process.stdin.on('data', (d) => {
  buf += d
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const line = buf.slice(0, i)
    buf = buf.slice(i + 1)
    const pid = Number(line.slice(1))
    if (line[0] === '+') pids.add(pid)
    else pids.delete(pid)
  }
})
process.stdin.on('close', () => {
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
  process.exit(0)
})
`

function tellWatchdog(line: string): void {
  if (!watchdog) {
    watchdog = spawn(process.execPath, ['-e', WATCHDOG_SCRIPT], {
      stdio: ['pipe', 'ignore', 'ignore'],
    })
    watchdog.unref()
    const stdin = watchdog.stdin as unknown as { unref?: () => void } | null
    stdin?.unref?.()
    watchdog.on('error', () => {})
  }
  watchdog.stdin?.write(`${line}\n`)
}

function killLiveChildren(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', killLiveChildren)
  const signals: [NodeJS.Signals, number][] = [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ]
  for (const [signal, code] of signals) {
    process.once(signal, () => {
      killLiveChildren()
      process.exit(code)
    })
  }
}

/** trackChild puts a process spawned elsewhere (a benchmark's etcd or Redis server) under
 * the same guard as the members: it is SIGKILLed when this process exits, on SIGINT, SIGTERM
 * and SIGHUP, and by the watchdog if this process dies without an exit hook. */
export function trackChild(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  installExitHook()
  liveChildren.add(child)
  const pid = child.pid
  tellWatchdog(`+${pid}`)
  child.once('exit', () => {
    liveChildren.delete(child)
    tellWatchdog(`-${pid}`)
  })
}

// ------------------------------------------------------------------ waiting

/** WaitOptions bound a wait. */
export interface WaitOptions {
  readonly timeoutMs?: number
  readonly intervalMs?: number
}

/** GiveUp thrown by a waitFor check ends the wait at once (a member died: no use waiting). */
export class GiveUp extends Error {
  override readonly name = 'GiveUp'
}

/**
 * waitFor polls check until it returns a value other than undefined or false, and returns it.
 * A check that throws counts as "not yet" (the last error is quoted on timeout), except
 * GiveUp, which ends the wait. It throws after timeoutMs (10 s by default) with `what` in
 * the message.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const intervalMs = opts.intervalMs ?? 25
  const started = Date.now()
  for (;;) {
    let last = ''
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (e) {
      if (e instanceof GiveUp) {
        throw new Error(`gave up waiting for ${what}: ${e.message}`, { cause: e })
      }
      last = e instanceof Error ? e.message : String(e)
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` +
          (last ? `; last error: ${last}` : ''),
      )
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

// ------------------------------------------------------------------ ports

// Members listen on ports below the OS's ephemeral range (32768-60999 on Linux): a port from
// that range, freed by a killed member, can be taken as the local port of any outgoing
// connection before the member restarts on it. Ports are still checked by listening.
const PORT_LOW = 20_000
const PORT_HIGH = 32_000

// Test files may run side by side (`ONCEKV_TEST_CONCURRENCY=2 npm test`), each in its own
// process. A port one of them handed out stays its own until that process exits, though
// nothing listens on it while its member is down (a restart test): test/run.ts makes a lock
// folder for the run (ONCEKV_TEST_PORT_LOCKS) and each handed-out port gets a file there,
// created exclusively, so no other test process of the run takes it. The folder goes with the
// run, so a lock never outlives it (nothing is ever taken over). Without the variable (one
// file run alone, the benchmarks) ports are kept apart within the process only.
const PORT_LOCKS = process.env.ONCEKV_TEST_PORT_LOCKS
const portsHandedOut = new Set<number>()

/** lockPort claims port for this process among the run's test processes; false when another
 * has it. */
function lockPort(port: number): boolean {
  if (!PORT_LOCKS) return true
  try {
    closeSync(openSync(join(PORT_LOCKS, String(port)), 'wx'))
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(undefined))
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address()
      const p = typeof addr === 'object' && addr ? addr.port : undefined
      srv.close(() => resolve(p))
    })
  })
}

/** freePort finds a free loopback port: it listens on it and closes. It tries random ports
 * below the ephemeral range first, then port 0 (any port the OS picks). It never hands out
 * the same port twice in one process, nor one another test process of the run holds
 * (lockPort); a process that is not a test may still take it (a small race). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const wanted = attempt < 50 ? PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW)) : 0
    if (portsHandedOut.has(wanted)) continue
    const port = await tryListen(wanted)
    if (port !== undefined && port > 0 && !portsHandedOut.has(port) && lockPort(port)) {
      portsHandedOut.add(port)
      return port
    }
  }
  throw new Error('could not find a free port')
}

// ------------------------------------------------------------------ one member

/** ExitInfo is how a member process ended. */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** DbFlagOptions are the flags a member is started with beyond its id and addresses. */
export interface DbFlagOptions {
  readonly tickMs?: number
  readonly electionTicks?: number
  readonly snapshotEntries?: number
  readonly maxValueBytes?: number
  readonly extraArgs?: readonly string[]
  /** env is added to the process's environment (undefined removes a variable). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** nodeFlags go to Node.js instead of DB_NODE_FLAGS (a member started by hand: []). */
  readonly nodeFlags?: readonly string[]
}

/** NodeProcess is one oncekv process (a database member, a cache node or the admin): fixed
 * id, addresses and log file, and the process currently running it, if any. */
export abstract class NodeProcess {
  /** url is the node's HTTP base URL ("http://127.0.0.1:port"). */
  readonly url: string
  private child: ChildProcess | undefined
  // Invariant: alive is true from a spawn until its 'exit' (or 'error') event.
  private alive = false
  private exitPromise: Promise<ExitInfo> | undefined
  private starts = 0
  /** exits lists how every earlier run of this node ended, oldest first. */
  readonly exits: ExitInfo[] = []

  constructor(
    readonly id: string,
    readonly http: string,
    readonly logPath: string,
  ) {
    this.url = `http://${http}`
  }

  /** pid is the running process's id, or undefined. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined
  }

  /** running is true while the process has not exited. */
  get running(): boolean {
    return this.alive
  }

  /** start spawns the process with its usual arguments. */
  abstract start(): void

  /** nodeFlags go to Node.js itself on every start, before the script (what the dev
   * cluster passes to a process of this kind). */
  protected nodeFlags(): readonly string[] {
    return []
  }

  /** extraEnv is added to the environment of every start (undefined removes a variable). */
  protected extraEnv(): Readonly<Record<string, string | undefined>> {
    return {}
  }

  /** auth is what the harness's own reads (stats, cluster, lists) send: the process's
   * cluster secret when its env holds one, which every route of a protected process takes. */
  auth(): Record<string, string> {
    const secret = this.extraEnv().ONCEKV_CLUSTER_SECRET
    return secret ? { authorization: `Bearer ${secret}` } : {}
  }

  /** spawnWith spawns `node args` (it must not be running). Output goes to logPath. */
  protected spawnWith(args: string[]): void {
    if (this.running) throw new Error(`${this.id} is already running (pid ${this.child?.pid})`)
    installExitHook()
    this.starts++
    appendFileSync(
      this.logPath,
      `${START_MARKER}#${this.starts} at ${new Date().toISOString()}: node ${args.join(' ')}\n`,
    )
    const fd = openSync(this.logPath, 'a')
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.extraEnv() }
    delete env.NODE_TEST_CONTEXT
    delete env.NODE_OPTIONS
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
    let child: ChildProcess
    try {
      // ONCEKV_NODE_ARGS passes Node.js flags to every process started (for profiling:
      // '--cpu-prof --cpu-prof-dir=/tmp/prof'; NODE_OPTIONS refuses --cpu-prof).
      const nodeArgs = (process.env.ONCEKV_NODE_ARGS ?? '').split(' ').filter(Boolean)
      child = spawn(process.execPath, [...this.nodeFlags(), ...nodeArgs, ...args], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', fd, fd],
      })
    } finally {
      closeSync(fd)
    }
    this.child = child
    this.alive = true
    liveChildren.add(child)
    if (child.pid !== undefined) tellWatchdog(`+${child.pid}`)
    this.exitPromise = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.alive = false
        liveChildren.delete(child)
        if (child.pid !== undefined) tellWatchdog(`-${child.pid}`)
        const info = { code, signal }
        this.exits.push(info)
        resolve(info)
      })
      child.once('error', (err) => {
        // An error after the exit (a signal to a dead process) changes nothing.
        if (this.child !== child || !this.alive) return
        this.alive = false
        liveChildren.delete(child)
        appendFileSync(this.logPath, `=== e2e harness: spawn failed: ${err.message}\n`)
        const info = { code: -1, signal: null }
        this.exits.push(info)
        resolve(info)
      })
    })
  }

  /** signal sends sig to the running process and waits for it to exit (timeoutMs). */
  async signal(sig: NodeJS.Signals, timeoutMs = 15_000): Promise<ExitInfo> {
    const child = this.child
    if (!child || !this.running) throw new Error(`${this.id} is not running`)
    child.kill(sig)
    return this.waitExit(timeoutMs)
  }

  /** waitExit waits for the current process to exit and says how it did. */
  async waitExit(timeoutMs = 15_000): Promise<ExitInfo> {
    const exited = this.exitPromise
    if (!exited) throw new Error(`${this.id} was never started`)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.id} did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** pause stops the process with SIGSTOP (it keeps its sockets and state); resume sends
   * SIGCONT. A paused process can still be killed. */
  pause(): void {
    if (this.child && this.running) this.child.kill('SIGSTOP')
  }

  resume(): void {
    if (this.child && this.running) this.child.kill('SIGCONT')
  }

  /** kill9Now kills the process at once (SIGKILL) without waiting. Used to kill several
   * members at the same instant; waitExit collects them. */
  kill9Now(): void {
    if (this.child && this.running) this.child.kill('SIGKILL')
  }

  /** log is the whole log file (every run). */
  log(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : ''
  }

  /** logOfLastRun is the part of the log written by the latest run. */
  logOfLastRun(): string {
    const all = this.log()
    const at = all.lastIndexOf(START_MARKER)
    return at < 0 ? all : all.slice(at)
  }

  /** logTail is the last `lines` lines of the log. */
  logTail(lines = 25): string {
    return this.log().trimEnd().split('\n').slice(-lines).join('\n')
  }

  /** request sends a request to path on this member. */
  request(path: string, opts?: RequestOptions): Promise<HttpResponse> {
    return request(this.url + path, opts)
  }

  /** isReady is true when GET /readyz answers 200. */
  async isReady(): Promise<boolean> {
    try {
      return (await this.request('/readyz', { timeoutMs: 1_000 })).status === 200
    } catch {
      return false
    }
  }

  /** statsJson is GET /stats. */
  statsJson<T>(timeoutMs = 2_000): Promise<T> {
    return getJson<T>(`${this.url}/stats`, timeoutMs, this.auth())
  }
}

/** DbProcess is one `oncekv db` member (its data directory survives restarts). */
export class DbProcess extends NodeProcess {
  constructor(
    id: string,
    http: string,
    readonly raft: string,
    readonly dataDir: string,
    logPath: string,
    private readonly flags: DbFlagOptions,
  ) {
    super(id, http, logPath)
  }

  protected override nodeFlags(): readonly string[] {
    return this.flags.nodeFlags ?? DB_NODE_FLAGS
  }

  /** args are the command-line arguments of a start (join: URLs to join through). */
  args(join: readonly string[] = []): string[] {
    const f = this.flags
    const args = [
      BIN,
      'db',
      '--id',
      this.id,
      '--http',
      this.http,
      '--raft',
      this.raft,
      '--data',
      this.dataDir,
      '--tick-ms',
      String(f.tickMs ?? 20),
      '--election-ticks',
      String(f.electionTicks ?? 10),
    ]
    if (f.snapshotEntries !== undefined) args.push('--snapshot-entries', String(f.snapshotEntries))
    if (f.maxValueBytes !== undefined) args.push('--max-value-bytes', String(f.maxValueBytes))
    if (join.length > 0) args.push('--join', ...join)
    args.push(...(f.extraArgs ?? []))
    return args
  }

  protected override extraEnv(): Readonly<Record<string, string | undefined>> {
    return this.flags.env ?? {}
  }

  /** start spawns the member (join: URLs to join through, for a first start). */
  start(join: readonly string[] = []): void {
    this.spawnWith(this.args(join))
  }

  /** stats is GET /stats. */
  stats(timeoutMs = 2_000): Promise<DbStats> {
    return getJson<DbStats>(`${this.url}/stats`, timeoutMs, this.auth())
  }

  /** clusterView is GET /cluster. */
  clusterView(timeoutMs = 2_000): Promise<ClusterResponse> {
    return getJson<ClusterResponse>(`${this.url}/cluster`, timeoutMs, this.auth())
  }
}

/** CacheFlagOptions are the flags of a cache node beyond its addresses. */
export interface CacheFlagOptions {
  readonly cacheBytes?: number
  /** admin: the admin URL to join; else peers and dbs are passed as flags. */
  readonly admin?: string
  readonly peers?: readonly string[]
  readonly dbs?: readonly string[]
  readonly extraArgs?: readonly string[]
  /** env is added to the process's environment (undefined removes a variable). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** nodeFlags go to Node.js instead of CACHE_NODE_FLAGS (a node started by hand: []). */
  readonly nodeFlags?: readonly string[]
}

/** CacheProcess is one `oncekv cache` node. */
export class CacheProcess extends NodeProcess {
  /** peerUrl is its peer-protocol URL. */
  readonly peerUrl: string

  constructor(
    id: string,
    http: string,
    readonly peer: string,
    logPath: string,
    readonly flags: CacheFlagOptions,
  ) {
    super(id, http, logPath)
    this.peerUrl = `http://${peer}`
  }

  args(): string[] {
    const f = this.flags
    const args = [BIN, 'cache', '--http', this.http, '--peer', this.peer]
    if (f.admin) args.push('--admin', f.admin)
    if (f.peers && f.peers.length > 0) args.push('--peers', ...f.peers)
    if (f.dbs && f.dbs.length > 0) args.push('--db', ...f.dbs)
    if (f.cacheBytes !== undefined) args.push('--cache-bytes', String(f.cacheBytes))
    args.push(...(f.extraArgs ?? []))
    return args
  }

  start(): void {
    this.spawnWith(this.args())
  }

  protected override nodeFlags(): readonly string[] {
    return this.flags.nodeFlags ?? CACHE_NODE_FLAGS
  }

  protected override extraEnv(): Readonly<Record<string, string | undefined>> {
    return this.flags.env ?? {}
  }

  /** stats is GET /stats. */
  stats(timeoutMs = 2_000): Promise<CacheNodeStats> {
    return this.statsJson<CacheNodeStats>(timeoutMs)
  }
}

/** AdminProcess is the `oncekv admin`. */
export class AdminProcess extends NodeProcess {
  constructor(
    id: string,
    http: string,
    logPath: string,
    readonly dbs: readonly string[],
    readonly extraArgs: readonly string[] = [],
    private readonly env: Readonly<Record<string, string | undefined>> = {},
  ) {
    super(id, http, logPath)
  }

  protected override extraEnv(): Readonly<Record<string, string | undefined>> {
    return this.env
  }

  args(): string[] {
    return [BIN, 'admin', '--http', this.http, '--db', ...this.dbs, ...this.extraArgs]
  }

  start(): void {
    this.spawnWith(this.args())
  }

  /** caches is GET /caches; dbs GET /dbs. */
  caches(): Promise<string[]> {
    return getJson<string[]>(`${this.url}/caches`, 2_000, this.auth())
  }

  dbList(): Promise<string[]> {
    return getJson<string[]>(`${this.url}/dbs`, 2_000, this.auth())
  }
}

// ------------------------------------------------------------------ cluster

/** ClusterOptions configure Cluster.start. */
export interface ClusterOptions extends DbFlagOptions {
  /** name labels the temp directory ("oncekv-e2e-<name>-…"). */
  readonly name: string
  /** size is how many voters to start with (1 bootstraps, the rest join). Default 3. */
  readonly size?: number
  /** startTimeoutMs bounds the start of the whole cluster. Default 30 s. */
  readonly startTimeoutMs?: number
  /** raftProxy, when given, is called for each new member with its id and peer port and
   * returns the port of a proxy in front of it: the member advertises that one
   * (--advertise-raft), so every peer connection to it passes the proxy (test/chaos). */
  readonly raftProxy?: (id: string, raftPort: number) => Promise<number>
  /** memberEnv adds to env for one member (by id). */
  readonly memberEnv?: (id: string) => Readonly<Record<string, string | undefined>> | undefined
  /** dataRoot, when given, holds the members' data directories instead of the temp
   * directory (a small file system of the test's own); logs stay in the temp directory. */
  readonly dataRoot?: string
}

/** LeaderOptions narrow Cluster.leader. */
export interface LeaderOptions extends WaitOptions {
  /** minTerm: only a leader of at least this term counts (a new leader after a kill). */
  readonly minTerm?: number
  /** exclude: ids that must not be the answer (a member just stopped). */
  readonly exclude?: readonly string[]
}

/** Leader is a member that leads, with the stats that showed it. */
export interface Leader {
  readonly node: DbProcess
  readonly stats: DbStats
}

/** Cluster is a set of members in one temp directory. */
export class Cluster {
  private readonly members = new Map<string, DbProcess>()
  private readonly cacheNodes = new Map<string, CacheProcess>()
  private adminNode: AdminProcess | undefined
  private nextCacheId = 1
  private nextId: number
  private failed = false
  private closed = false

  private constructor(
    readonly name: string,
    /** root is the temp directory holding every member's data directory and log. */
    readonly root: string,
    private readonly flags: ClusterOptions,
  ) {
    this.nextId = 1
  }

  /** start starts `size` members (n1 bootstraps, the others join through it) and waits until
   * all are voters, agree on a leader and are ready. On failure it reports, closes and throws. */
  static async start(opts: ClusterOptions): Promise<Cluster> {
    const root = mkdtempSync(join(tmpdir(), `oncekv-e2e-${opts.name}-`))
    const cluster = new Cluster(opts.name, root, opts)
    try {
      const size = opts.size ?? 3
      const first = await cluster.createMember()
      first.start()
      const others: DbProcess[] = []
      for (let i = 1; i < size; i++) others.push(await cluster.createMember())
      for (const n of others) n.start([first.url])
      await cluster.waitVoters(
        cluster.all().map((n) => n.id),
        { timeoutMs: opts.startTimeoutMs ?? 30_000 },
      )
      await cluster.waitAllReady({ timeoutMs: opts.startTimeoutMs ?? 30_000 })
      return cluster
    } catch (e) {
      cluster.reportFailure(`starting cluster ${opts.name}`)
      await cluster.close()
      throw e
    }
  }

  private async createMember(
    id = `n${this.nextId}`,
    env?: Readonly<Record<string, string | undefined>>,
  ): Promise<DbProcess> {
    this.nextId++
    if (this.members.has(id)) throw new Error(`member ${id} exists`)
    const dataDir = join(this.flags.dataRoot ?? this.root, id)
    mkdirSync(join(this.root, 'logs'), { recursive: true })
    const raftPort = await freePort()
    const own = this.flags.memberEnv?.(id)
    let flags: DbFlagOptions = env
      ? { ...this.flags, env }
      : own
        ? { ...this.flags, env: { ...this.flags.env, ...own } }
        : this.flags
    if (this.flags.raftProxy) {
      const advertised = await this.flags.raftProxy(id, raftPort)
      const extraArgs = [...(flags.extraArgs ?? []), '--advertise-raft', `127.0.0.1:${advertised}`]
      flags = { ...flags, extraArgs }
    }
    const node = new DbProcess(
      id,
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${raftPort}`,
      dataDir,
      join(this.root, 'logs', `${id}.log`),
      flags,
    )
    this.members.set(id, node)
    return node
  }

  /** node is the member with id; it throws if there is none. */
  node(id: string): DbProcess {
    const n = this.members.get(id)
    if (!n) throw new Error(`no member ${id} in cluster ${this.name}`)
    return n
  }

  /** proc is any process of the cluster by id (n1…, c1…, admin). */
  proc(id: string): NodeProcess {
    const p =
      this.members.get(id) ??
      this.cacheNodes.get(id) ??
      (id === 'admin' ? this.adminNode : undefined)
    if (!p) throw new Error(`no process ${id} in cluster ${this.name}`)
    return p
  }

  /** everything is every process ever started: members, caches and the admin. */
  everything(): NodeProcess[] {
    return [
      ...this.members.values(),
      ...this.cacheNodes.values(),
      ...(this.adminNode ? [this.adminNode] : []),
    ]
  }

  /** admin is the admin process; it throws if none was started. */
  get admin(): AdminProcess {
    if (!this.adminNode) throw new Error(`cluster ${this.name} has no admin`)
    return this.adminNode
  }

  /** startAdmin starts `oncekv admin` following the running members, and waits until it
   * lists every voter. */
  async startAdmin(
    extraArgs: readonly string[] = [],
    env: Readonly<Record<string, string | undefined>> = {},
  ): Promise<AdminProcess> {
    if (this.adminNode) throw new Error('the admin is already started')
    const admin = new AdminProcess(
      'admin',
      `127.0.0.1:${await freePort()}`,
      join(this.root, 'logs', 'admin.log'),
      this.running().map((n) => n.url),
      extraArgs,
      env,
    )
    this.adminNode = admin
    admin.start()
    const voters = this.running()
      .map((n) => n.url)
      .sort()
    await waitFor(
      'the admin to list every database member',
      async () => {
        if (!admin.running) throw new GiveUp(`admin exited: ${JSON.stringify(admin.exits.at(-1))}`)
        const dbs = await admin.dbList()
        return voters.every((u) => dbs.includes(u))
      },
      { timeoutMs: 15_000, intervalMs: 50 },
    )
    return admin
  }

  /** addCache starts a cache node: joined to the admin when there is one (unless flags say
   * otherwise), else with --db set to the running members. It does not wait. */
  async addCache(flags: CacheFlagOptions & { id?: string } = {}): Promise<CacheProcess> {
    const id = flags.id ?? `c${this.nextCacheId++}`
    const withAdmin =
      flags.admin === undefined && flags.dbs === undefined && this.adminNode
        ? { admin: this.adminNode.url }
        : {}
    const dbs = flags.dbs ?? (this.adminNode ? undefined : this.running().map((n) => n.url))
    const cache = new CacheProcess(
      id,
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${await freePort()}`,
      join(this.root, 'logs', `${id}.log`),
      { ...flags, ...withAdmin, dbs },
    )
    this.cacheNodes.set(id, cache)
    cache.start()
    return cache
  }

  /** startCaches starts n cache nodes and waits until each one's ring holds all of them and
   * it knows every database member. */
  async startCaches(n: number, flags: CacheFlagOptions = {}): Promise<CacheProcess[]> {
    const started: CacheProcess[] = []
    for (let i = 0; i < n; i++) started.push(await this.addCache(flags))
    await this.waitRing()
    return started
  }

  /** cache is the cache node with id. */
  cache(id: string): CacheProcess {
    const c = this.cacheNodes.get(id)
    if (!c) throw new Error(`no cache ${id} in cluster ${this.name}`)
    return c
  }

  /** caches is every cache node, running or not; runningCaches those alive. */
  caches(): CacheProcess[] {
    return [...this.cacheNodes.values()]
  }

  runningCaches(): CacheProcess[] {
    return this.caches().filter((c) => c.running)
  }

  /** waitRing waits until every running cache node's ring is exactly the running cache nodes
   * and each knows every running database member. */
  async waitRing(opts: WaitOptions = {}): Promise<void> {
    const caches = this.runningCaches()
    const peers = caches.map((c) => c.peerUrl).sort()
    const dbs = this.running().map((n) => n.url)
    await waitFor(
      `the cache ring to be ${peers.join(', ')}`,
      async () => {
        for (const c of caches) {
          if (!c.running) throw new GiveUp(`${c.id} exited: ${JSON.stringify(c.exits.at(-1))}`)
          const st = await c.stats(1_000)
          if (st.peers.join(',') !== peers.join(',')) return false
          const known = st.dbs.map((d) => d.url)
          if (!dbs.every((u) => known.includes(u))) return false
        }
        return true
      },
      { timeoutMs: 20_000, intervalMs: 50, ...opts },
    )
  }

  /** all is every member ever started, running or not. */
  all(): DbProcess[] {
    return [...this.members.values()]
  }

  /** running is every member whose process is alive. */
  running(): DbProcess[] {
    return this.all().filter((n) => n.running)
  }

  /** addMember starts a new member that joins through `via` (every running member's URL by
   * default). It waits until the member is a voter unless waitVoter is false. */
  async addMember(
    opts: {
      id?: string
      via?: readonly string[]
      waitVoter?: boolean
      /** env replaces the cluster's env option for this member. */
      env?: Readonly<Record<string, string | undefined>>
    } & WaitOptions = {},
  ): Promise<DbProcess> {
    const node = await this.createMember(opts.id, opts.env)
    node.start(opts.via ?? this.running().map((n) => n.url))
    if (opts.waitVoter !== false) await this.waitVoters([node.id], opts)
    return node
  }

  /** kill kills a member with SIGKILL and waits for it to exit. */
  async kill(id: string): Promise<ExitInfo> {
    return this.proc(id).signal('SIGKILL')
  }

  /** terminate sends SIGTERM (a graceful stop) and waits for the exit. */
  async terminate(id: string, timeoutMs = 20_000): Promise<ExitInfo> {
    return this.proc(id).signal('SIGTERM', timeoutMs)
  }

  /** terminateOrKill sends SIGTERM and waits up to timeoutMs for the exit; a member still
   * running then is killed with SIGKILL. It says how the graceful stop went: the exit, or
   * none if it had to be killed, and how long it waited. */
  async terminateOrKill(id: string, timeoutMs: number): Promise<{ exit?: ExitInfo; ms: number }> {
    const started = Date.now()
    try {
      const exit = await this.proc(id).signal('SIGTERM', timeoutMs)
      return { exit, ms: Date.now() - started }
    } catch {
      const ms = Date.now() - started
      await this.kill(id)
      return { ms }
    }
  }

  /** restart starts a stopped member again from its data directory (same id and ports). */
  restart(id: string): NodeProcess {
    const n = this.proc(id)
    n.start()
    return n
  }

  /** waitReady waits until member id answers /readyz with 200. */
  async waitReady(id: string, opts: WaitOptions = {}): Promise<void> {
    const n = this.node(id)
    await waitFor(
      `${id} to be ready`,
      async () => {
        if (!n.running) throw new GiveUp(`${id} exited: ${JSON.stringify(n.exits.at(-1))}`)
        return n.isReady()
      },
      { timeoutMs: 20_000, ...opts },
    )
  }

  /** waitAllReady waits until every running member is ready. */
  async waitAllReady(opts: WaitOptions = {}): Promise<void> {
    await Promise.all(this.running().map((n) => this.waitReady(n.id, opts)))
  }

  /** leader waits for a member that leads with the agreement of a majority of the voters it
   * counts (so a deposed leader that has not noticed yet is not returned). */
  async leader(opts: LeaderOptions = {}): Promise<Leader> {
    const exclude = new Set(opts.exclude ?? [])
    return waitFor(
      'a leader agreed by a majority' + (opts.minTerm ? ` in term >= ${opts.minTerm}` : ''),
      async () => {
        const nodes = this.running()
        const all = await Promise.all(nodes.map((n) => n.stats(1_000).catch(() => undefined)))
        let best: { node: DbProcess; stats: DbStats } | undefined
        for (const [i, s] of all.entries()) {
          if (s?.state !== 'Leader' || exclude.has(s.id)) continue
          if (opts.minTerm !== undefined && s.term < opts.minTerm) continue
          if (!best || s.term > best.stats.term) best = { node: nodes[i] as DbProcess, stats: s }
        }
        if (!best) return undefined
        const b = best
        const agree = all.filter((s) => s?.leader === b.stats.id && s.term === b.stats.term).length
        const voters = b.stats.num_peers + 1
        return agree > voters / 2 ? b : undefined
      },
      { timeoutMs: 15_000, intervalMs: 20, ...opts },
    )
  }

  /** waitVoters waits until the leader's /cluster lists every id as a voter. */
  async waitVoters(ids: readonly string[], opts: WaitOptions = {}): Promise<ClusterResponse> {
    return waitFor(
      `${ids.join(', ')} to be voters`,
      async () => {
        for (const id of ids) {
          const n = this.node(id)
          if (!n.running) throw new GiveUp(`${id} exited: ${JSON.stringify(n.exits.at(-1))}`)
        }
        const { node } = await this.leader({ timeoutMs: 2_000 })
        const view = await node.clusterView()
        const voters = new Set(view.members.filter((m) => m.suffrage === 'voter').map((m) => m.id))
        return ids.every((id) => voters.has(id)) ? view : undefined
      },
      { timeoutMs: 30_000, intervalMs: 50, ...opts },
    )
  }

  /** waitCaughtUp waits until every given member (every running one by default) has applied
   * the leader's commit index as read now. It returns that index. */
  async waitCaughtUp(ids?: readonly string[], opts: WaitOptions = {}): Promise<number> {
    const { stats } = await this.leader()
    const target = stats.commit_index
    const nodes = ids ? ids.map((id) => this.node(id)) : this.running()
    await Promise.all(
      nodes.map((n) =>
        waitFor(
          `${n.id} to apply index ${target}`,
          async () => {
            if (!n.running) throw new GiveUp(`${n.id} exited: ${JSON.stringify(n.exits.at(-1))}`)
            return (await n.stats()).applied_index >= target
          },
          { timeoutMs: 20_000, intervalMs: 50, ...opts },
        ),
      ),
    )
    return target
  }

  /** reportFailure prints every member's state, log path and log tail to stderr, and keeps
   * the temp directory for inspection. */
  reportFailure(context: string): void {
    this.failed = true
    const lines = [`\n=== e2e failure in ${context}: cluster ${this.name}, kept at ${this.root}`]
    for (const n of this.everything()) {
      lines.push(
        `--- ${n.id} (${n.running ? `running, pid ${n.pid}` : 'not running'}; exits ${JSON.stringify(n.exits)}) log ${n.logPath}:`,
        n.logTail(20),
      )
    }
    console.error(lines.join('\n'))
  }

  /** closeGracefully stops every process with SIGTERM first, so that processes run with
   * ONCEKV_NODE_ARGS='--cpu-prof …' write their profiles, then closes: whatever still runs
   * after timeoutMs is killed. */
  async closeGracefully(timeoutMs = 10_000): Promise<void> {
    const running = this.everything().filter((n) => n.running)
    await Promise.all(running.map((n) => n.signal('SIGTERM', timeoutMs).catch(() => undefined)))
    await this.close()
  }

  /** close kills every member still running (SIGKILL), waits for them, and removes the temp
   * directory unless a failure was reported. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const running = this.everything().filter((n) => n.running)
    for (const n of running) n.kill9Now()
    await Promise.all(running.map((n) => n.waitExit(10_000).catch(() => undefined)))
    if (!this.failed) rmSync(this.root, { recursive: true, force: true })
  }
}
