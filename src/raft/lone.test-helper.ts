// One member on its own for the core's unit tests: a log built to order, a Ready loop run by
// hand, and builders for the entries and messages a test steps into it. Where the harness
// (harness.test-helper.ts) runs a whole cluster, a lone member hears only what a test crafts.
import { SeededRng } from '../base/index.ts'
import { Raft, type RaftConfig, type Ready } from './raft.ts'
import { bootstrapSnapshot, MemoryStorage } from './storage.ts'
import type { AppendMessage, AppendResponse, Entry, Message, NodeId } from './types.ts'

// ------------------------------------------------------------------ entries

/** entry builds a normal entry whose data names its index and term (`3@2`), so equal data
 * means equal entry. */
export function entry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(`${index}@${term}`) }
}

/** blankEntry builds a normal entry with no data, for tests where only index and term count. */
export function blankEntry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(0) }
}

/** ents builds consecutive entries (with entry()) from index `first`, one per term given. */
export function ents(first: number, terms: number[]): Entry[] {
  return terms.map((t, i) => entry(first + i, t))
}

// ------------------------------------------------------------------ a lone member

/** Lone is one member outside any cluster: its core and the storage its Ready loop writes. */
export interface Lone {
  raft: Raft
  storage: MemoryStorage
}

/** LoneOptions shape a lone member; anything else is passed on as its configuration. */
export interface LoneOptions extends Partial<Omit<RaftConfig, 'id' | 'initial'>> {
  /** the member's id; '1' by default */
  id?: NodeId
  /** the voters of the bootstrap snapshot; ['1', '2', '3'] by default */
  voters?: NodeId[]
  /** terms of the entries after the bootstrap snapshot (index 1), from index 2 on */
  logTerms?: number[]
  /** the persisted term; the last of logTerms (at least 1) by default */
  term?: number
  /** the persisted vote; none by default */
  vote?: NodeId
  /** the seed of the member's Rng; 1 by default */
  seed?: number
  /** builds the entries of logTerms; entry() (data `index@term`) by default */
  makeEntry?: (index: number, term: number) => Entry
}

/** lone builds one member whose log and hard state are given; nothing is committed past 1. */
export function lone(o: LoneOptions = {}): Lone {
  const { id = '1', voters = ['1', '2', '3'], logTerms = [], term, vote = '', seed = 1 } = o
  const makeEntry = o.makeEntry ?? entry
  const {
    id: _i,
    voters: _v,
    logTerms: _l,
    term: _t,
    vote: _o,
    seed: _s,
    makeEntry: _e,
    ...config
  } = o
  const snap = bootstrapSnapshot(voters)
  const storage = new MemoryStorage(snap)
  storage.append(logTerms.map((t, i) => makeEntry(i + 2, t)))
  const hardState = { term: term ?? Math.max(1, ...logTerms), vote, commit: 1 }
  const raft = new Raft(
    { ...config, id, initial: { hardState, applied: 1, conf: snap.conf } },
    storage,
    new SeededRng(seed),
  )
  return { raft, storage }
}

/** drain runs the Ready loop of a lone member (persist, then advance) until it has no more
 * work, and returns the Readies in order. Messages are not sent anywhere. */
export function drain(n: Lone): Ready[] {
  const out: Ready[] = []
  for (let rd = n.raft.ready(); rd; rd = n.raft.ready()) {
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot)
    n.storage.append(rd.entries)
    out.push(rd)
    n.raft.advance(rd)
  }
  return out
}

// ------------------------------------------------------------------ messages

/** messagesOf lists the messages of the Readies, in order. */
export function messagesOf(readies: readonly Ready[]): Message[] {
  return readies.flatMap((rd) => rd.messages)
}

/** appResponses lists the append responses among the Readies' messages, in order. */
export function appResponses(readies: readonly Ready[]): AppendResponse[] {
  return messagesOf(readies).filter((m): m is AppendResponse => m.type === 'appResp')
}

/** app builds an append: entries after (index, logTerm), with the sender's commit index. */
export function app(
  from: NodeId,
  to: NodeId,
  term: number,
  index: number,
  logTerm: number,
  entries: Entry[],
  commit: number,
): AppendMessage {
  return { type: 'app', from, to, term, index, logTerm, entries, commit }
}
