// The nemesis: on a schedule drawn from the run's seed, it injects faults into the running
// system and heals them: kill -9 and restart of a member (the leader half the time), SIGSTOP
// and SIGCONT, partitions (majority/minority, a bridge, one-way cuts), slow links, cache node
// kills, and a membership change (remove a member, wipe it, join it again) while a slow link
// is in place. Sometimes two faults overlap. Every fault is logged with its time.
import { rmSync } from 'node:fs'
import type { SeededRng } from '../../src/base/index.ts'
import type { Cluster, DbProcess } from '../e2e/cluster.ts'
import { waitFor } from '../e2e/cluster.ts'
import { postJson } from '../e2e/http.ts'
import type { Network } from './link-proxy.ts'

export const FAULT_KINDS = [
  'kill',
  'pause',
  'partition',
  'bridge',
  'one-way',
  'slow',
  'cache-kill',
  'membership',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** NemesisEvent is one line of the fault log. */
export interface NemesisEvent {
  /** at is ms since the run started. */
  readonly at: number
  readonly what: string
}

export interface NemesisOptions {
  readonly cluster: Cluster
  readonly net: Network
  readonly rng: SeededRng
  /** until is when the nemesis stops injecting (performance.now() ms). */
  readonly until: number
  readonly startedAt: number
  readonly kinds?: readonly FaultKind[]
  readonly log?: (e: NemesisEvent) => void
}

/** An active fault: heal undoes it. */
interface Active {
  readonly kind: FaultKind
  heal(): Promise<void>
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Nemesis injects faults until its deadline, then heals everything. */
export class Nemesis {
  readonly events: NemesisEvent[] = []
  readonly counts = new Map<FaultKind, number>()
  private readonly kinds: readonly FaultKind[]

  constructor(private readonly opts: NemesisOptions) {
    this.kinds = opts.kinds ?? FAULT_KINDS
  }

  private note(what: string): void {
    const e = { at: Math.round(performance.now() - this.opts.startedAt), what }
    this.events.push(e)
    this.opts.log?.(e)
  }

  /** run injects faults until the deadline; every fault is healed before it returns. */
  async run(): Promise<void> {
    const { rng } = this.opts
    while (performance.now() < this.opts.until) {
      await sleep(rng.range(300, 1_200))
      if (performance.now() >= this.opts.until) break
      const first = this.draw()
      const kinds: FaultKind[] = [first]
      // Sometimes a second fault at the same time; a membership change always runs over a
      // slow link (the "during faults" case) and with nothing else.
      if (first === 'membership') {
        if (this.kinds.includes('slow')) kinds.unshift('slow')
      } else if (rng.chance(0.3)) {
        const second = this.kinds[rng.int(this.kinds.length)]!
        if (second !== first && second !== 'membership') kinds.push(second)
      }
      const active: Active[] = []
      const busy = new Set<string>()
      try {
        for (const k of kinds) {
          const a = await this.inject(k, busy)
          if (a) {
            active.push(a)
            this.counts.set(k, (this.counts.get(k) ?? 0) + 1)
          }
        }
        if (!kinds.includes('membership')) await sleep(rng.range(800, 3_000))
      } finally {
        for (const a of active.reverse()) await a.heal()
        if (active.length > 0) this.note('healed')
      }
    }
  }

  private deck: FaultKind[] = []

  /** draw deals the kinds in a shuffled order, each once per round, so a short run still
   * sees every kind. */
  private draw(): FaultKind {
    if (this.deck.length === 0) {
      this.deck = [...this.kinds]
      for (let i = this.deck.length - 1; i > 0; i--) {
        const j = this.opts.rng.int(i + 1)
        ;[this.deck[i], this.deck[j]] = [this.deck[j]!, this.deck[i]!]
      }
    }
    return this.deck.pop()!
  }

  /** leaderId is the current leader's id, if one answers quickly. */
  private async leaderId(): Promise<string | undefined> {
    try {
      return (await this.opts.cluster.leader({ timeoutMs: 1_500 })).node.id
    } catch {
      return undefined
    }
  }

  /** target picks a running member, the leader half the time, not one already faulted. */
  private async target(busy: Set<string>): Promise<DbProcess | undefined> {
    const { cluster, rng } = this.opts
    const candidates = cluster.running().filter((n) => !busy.has(n.id))
    if (candidates.length === 0) return undefined
    if (rng.chance(0.5)) {
      const leader = await this.leaderId()
      const n = candidates.find((c) => c.id === leader)
      if (n) return n
    }
    return candidates[rng.int(candidates.length)]
  }

  private shuffledIds(): string[] {
    const ids = this.opts.cluster.all().map((n) => n.id)
    for (let i = ids.length - 1; i > 0; i--) {
      const j = this.opts.rng.int(i + 1)
      ;[ids[i], ids[j]] = [ids[j]!, ids[i]!]
    }
    return ids
  }

  private async inject(kind: FaultKind, busy: Set<string>): Promise<Active | undefined> {
    const { cluster, net, rng } = this.opts
    switch (kind) {
      case 'kill': {
        const n = await this.target(busy)
        if (!n) return undefined
        busy.add(n.id)
        await cluster.kill(n.id)
        this.note(`kill -9 ${n.id}`)
        return {
          kind,
          heal: async () => {
            cluster.restart(n.id)
            this.note(`restart ${n.id}`)
          },
        }
      }
      case 'pause': {
        const n = await this.target(busy)
        if (!n) return undefined
        busy.add(n.id)
        n.pause()
        this.note(`SIGSTOP ${n.id}`)
        return {
          kind,
          heal: async () => {
            n.resume()
            this.note(`SIGCONT ${n.id}`)
          },
        }
      }
      case 'partition': {
        const ids = this.shuffledIds()
        const minority = ids.slice(0, Math.max(1, Math.floor((ids.length - 1) / 2)))
        const majority = ids.slice(minority.length)
        net.partition(minority, majority)
        this.note(`partition ${minority.join(',')} | ${majority.join(',')}`)
        return this.netFault(kind)
      }
      case 'bridge': {
        const ids = this.shuffledIds()
        const side = Math.max(1, Math.floor((ids.length - 1) / 2))
        const a = ids.slice(0, side)
        const b = ids.slice(side, 2 * side)
        net.partition(a, b)
        this.note(
          `bridge ${a.join(',')} | ${b.join(',')}, ${ids.slice(2 * side).join(',')} sees both`,
        )
        return this.netFault(kind)
      }
      case 'one-way': {
        const ids = this.shuffledIds()
        const from = rng.chance(0.5) ? ((await this.leaderId()) ?? ids[0]!) : ids[0]!
        const others = ids.filter((x) => x !== from)
        const cut = rng.chance(0.5) ? others : [others[rng.int(others.length)]!]
        for (const to of cut) net.set(from, to, { cut: true })
        this.note(`one-way cut ${from} -> ${cut.join(',')}`)
        return this.netFault(kind)
      }
      case 'slow': {
        const ids = this.shuffledIds()
        const links = 1 + rng.int(ids.length)
        const desc: string[] = []
        for (let i = 0; i < links; i++) {
          const from = ids[rng.int(ids.length)]!
          const others = ids.filter((x) => x !== from)
          const to = others[rng.int(others.length)]!
          const delayMs = Math.round(rng.range(20, 150))
          net.set(from, to, { ...net.rule(from, to), delayMs })
          desc.push(`${from}->${to} +${delayMs} ms`)
        }
        this.note(`slow links ${desc.join(', ') || '(none)'}`)
        return this.netFault(kind)
      }
      case 'cache-kill': {
        const running = cluster.runningCaches()
        if (running.length === 0) return undefined
        const c = running[rng.int(running.length)]!
        await cluster.kill(c.id)
        this.note(`kill -9 cache ${c.id}`)
        return {
          kind,
          heal: async () => {
            cluster.restart(c.id)
            this.note(`restart cache ${c.id}`)
          },
        }
      }
      case 'membership':
        // Counted only when the change was made; a skipped one is logged as such.
        return (await this.changeMembership(busy)) ? { kind, heal: async () => {} } : undefined
    }
  }

  private netFault(kind: FaultKind): Active {
    return {
      kind,
      heal: async () => {
        this.opts.net.heal()
      },
    }
  }

  /** changeMembership removes a follower, wipes its directory and joins it again, waiting
   * (with deadlines) for each step. A step that cannot finish is logged; the member is left
   * running in any case. */
  private async changeMembership(busy: Set<string>): Promise<boolean> {
    const { cluster } = this.opts
    const leader = await this.leaderId()
    const followers = cluster.running().filter((n) => n.id !== leader && !busy.has(n.id))
    if (!leader || followers.length === 0 || cluster.running().length < cluster.all().length) {
      this.note('membership change skipped (no leader or a member is down)')
      return false
    }
    const f = followers[this.opts.rng.int(followers.length)]!
    busy.add(f.id)
    const via = cluster.node(leader)
    try {
      const res = await postJson(`${via.url}/remove`, { id: f.id }, 10_000)
      if (res.status !== 200) {
        this.note(`remove ${f.id} refused: ${res.status} ${res.text().slice(0, 100)}`)
        return false
      }
      this.note(`removed ${f.id}`)
      await waitFor(
        `${f.id} to leave the configuration`,
        async () => {
          const view = await via.clusterView()
          return view.members.every((m) => m.id !== f.id)
        },
        { timeoutMs: 10_000 },
      )
      await cluster.kill(f.id)
      rmSync(f.dataDir, { recursive: true, force: true })
      f.start(cluster.running().map((n) => n.url))
      this.note(`wiped ${f.id}, joining again`)
      await cluster.waitVoters([f.id], { timeoutMs: 30_000 })
      this.note(`${f.id} is a voter again`)
      return true
    } catch (e) {
      this.note(`membership change of ${f.id} did not finish: ${(e as Error).message}`)
      return true
    } finally {
      if (!f.running) {
        f.start(cluster.running().map((n) => n.url))
        this.note(`${f.id} started again with --join`)
      }
    }
  }
}
