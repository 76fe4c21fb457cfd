// A small in-memory cluster for the core's unit tests: members with MemoryStorage, a message
// queue delivered in order (or dropped by a filter), and a faithful Ready loop. It is not the
// simulator (test/sim): no chance, no crashes, just exact control for one rule at a time.
import { SeededRng } from '../base/index.ts'
import { Raft, type RaftConfig, type Ready } from './raft.ts'
import { bootstrapSnapshot, MemoryStorage, EMPTY_CONF, EMPTY_HARD_STATE } from './storage.ts'
import type { ConfState, Entry, HardState, Message, NodeId, ReadState } from './types.ts'
import { decodeConfChange } from './types.ts'

/** Member is one node of the harness with what it persisted and applied. */
export interface Member {
  raft: Raft
  storage: MemoryStorage
  hardState: HardState
  applied: Entry[]
  readStates: ReadState[]
  conf: ConfState
}

/** ELECTION_TICKS is the cores' default minimum election timeout (RaftConfig.electionTicks). */
export const ELECTION_TICKS = 10

/** HarnessOptions tunes every member's configuration. */
export type HarnessOptions = Partial<Omit<RaftConfig, 'id' | 'initial'>>

/** ReadyHooks watch one Ready loop of Harness.process, in the contract's order: persist, then
 * send, then apply, then advance. */
export interface ReadyHooks {
  /** send sees each message once the Ready's state and entries are persisted, before it is sent. */
  send?: (msg: Message, m: Member) => void
  /** apply sees each committed entry before the member applies it. */
  apply?: (e: Entry, m: Member) => void
}

/** Harness is a cluster of members joined by a perfect, in-order network. */
export class Harness {
  readonly members = new Map<NodeId, Member>()
  /** queue holds messages sent and not yet delivered. */
  queue: Message[] = []
  /** drop, when it returns true, loses a message instead of queuing it. */
  drop: (m: Message) => boolean = () => false
  /** sent records every message ever sent, for assertions. */
  readonly sent: Message[] = []

  constructor(
    ids: readonly NodeId[],
    private readonly options: HarnessOptions = {},
  ) {
    const snap = bootstrapSnapshot(ids)
    for (const [i, id] of ids.entries()) {
      const storage = new MemoryStorage(snap)
      const hardState = { term: 1, vote: '', commit: 1 }
      const raft = new Raft(
        { ...options, id, initial: { hardState, applied: 1, conf: snap.conf } },
        storage,
        new SeededRng(i + 1),
      )
      this.members.set(id, {
        raft,
        storage,
        hardState,
        applied: [],
        readStates: [],
        conf: snap.conf,
      })
    }
  }

  /** addEmpty adds a member with an empty log and no configuration, waiting to join. */
  addEmpty(id: NodeId): Member {
    const storage = new MemoryStorage()
    const raft = new Raft(
      {
        ...this.options,
        id,
        initial: { hardState: EMPTY_HARD_STATE, applied: 0, conf: EMPTY_CONF },
      },
      storage,
      new SeededRng(99),
    )
    const m: Member = {
      raft,
      storage,
      hardState: EMPTY_HARD_STATE,
      applied: [],
      readStates: [],
      conf: EMPTY_CONF,
    }
    this.members.set(id, m)
    return m
  }

  /** member returns a member by id. */
  member(id: NodeId): Member {
    const m = this.members.get(id)
    if (!m) throw new Error(`no member ${id}`)
    return m
  }

  /** raft returns a member's core. */
  raft(id: NodeId): Raft {
    return this.member(id).raft
  }

  /** restart rebuilds a member from what it persisted (its storage and hard state). */
  restart(id: NodeId): void {
    const old = this.member(id)
    const applied = old.applied[old.applied.length - 1]?.index ?? old.storage.snapshot().index
    const raft = new Raft(
      {
        ...this.options,
        id,
        initial: {
          hardState: old.hardState,
          applied: Math.max(applied, old.storage.snapshot().index),
          conf: old.conf,
        },
      },
      old.storage,
      new SeededRng(7),
    )
    this.members.set(id, { ...old, raft })
  }

  /** process runs one Ready loop on a member; returns whether it had work. hooks, if given,
   * watch the loop between its steps. */
  process(id: NodeId, hooks: ReadyHooks = {}): boolean {
    const m = this.member(id)
    const rd: Ready | undefined = m.raft.ready()
    if (!rd) return false
    if (rd.hardState) m.hardState = rd.hardState
    if (rd.snapshot) {
      m.storage.applySnapshot(rd.snapshot)
      m.conf = rd.snapshot.conf
    }
    m.storage.append(rd.entries)
    for (const msg of rd.messages) {
      hooks.send?.(msg, m)
      this.sent.push(msg)
      if (!this.drop(msg)) this.queue.push(msg)
    }
    for (const e of rd.committedEntries) {
      hooks.apply?.(e, m)
      if (e.type === 'conf') m.conf = m.raft.applyConfChange(decodeConfChange(e.data), e.index)
      m.applied.push(e)
    }
    m.readStates.push(...rd.readStates)
    m.raft.advance(rd)
    return true
  }

  /** processAll runs Ready loops on every member until none has work. */
  processAll(): void {
    for (let busy = true; busy;) {
      busy = false
      for (const id of this.members.keys()) if (this.process(id)) busy = true
    }
  }

  /** deliver hands every queued message to its recipient once. */
  deliver(): number {
    const batch = this.queue
    this.queue = []
    for (const msg of batch) this.members.get(msg.to)?.raft.step(msg)
    return batch.length
  }

  /** stabilize processes and delivers until nothing moves (bounded). */
  stabilize(roundsMax = 1000): void {
    for (let i = 0; i < roundsMax; i++) {
      this.processAll()
      if (this.deliver() === 0) {
        this.processAll()
        if (this.queue.length === 0) return
      }
    }
    throw new Error('harness did not stabilize')
  }

  /** tick ticks one member n times. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.raft(id).tick()
  }

  /** tickAll ticks every member n times, stabilizing after each tick. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) m.raft.tick()
      this.stabilize()
    }
  }

  /** elect makes id leader by campaigning and stabilizing. */
  elect(id: NodeId): void {
    this.raft(id).campaign()
    this.stabilize()
  }

  /** leaders lists the members that believe they lead. */
  leaders(): NodeId[] {
    return [...this.members.values()]
      .filter((m) => m.raft.status().role === 'leader')
      .map((m) => m.raft.id)
  }

  /** propose proposes a string on id and returns the result. */
  propose(id: NodeId, text: string): ReturnType<Raft['propose']> {
    return this.raft(id).propose(new TextEncoder().encode(text))
  }

  /** appliedData lists what a member applied, as strings, without empty entries. */
  appliedData(id: NodeId): string[] {
    return this.member(id)
      .applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data))
  }
}

/** cut is a drop filter (for Harness.drop) that loses every message to or from the given
 * members, cutting them off from the rest. */
export function cut(...ids: NodeId[]): (m: Message) => boolean {
  return (m) => ids.includes(m.from) || ids.includes(m.to)
}

/** tickUntil ticks the given members one tick at a time, stabilizing in between, until cond
 * holds; returns the ticks it took, or throws after max. */
export function tickUntil(
  h: Harness,
  ids: readonly NodeId[],
  cond: () => boolean,
  max = 500,
): number {
  for (let i = 1; i <= max; i++) {
    for (const id of ids) h.raft(id).tick()
    h.stabilize()
    if (cond()) return i
  }
  throw new Error(`condition not reached within ${max} ticks`)
}

/** cluster starts members 1, 2 and 3, elects 1 and has every member apply one entry, 'a'. */
export function cluster(options: HarnessOptions = {}): Harness {
  const h = new Harness(['1', '2', '3'], options)
  h.elect('1')
  h.propose('1', 'a')
  h.stabilize()
  return h
}
