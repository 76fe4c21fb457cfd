// The member address book: where each member of the cluster serves HTTP and Raft. The store
// keeps it beside the configuration and ships it with snapshots (as a snapshot's extra bytes);
// deciding who is in it is the database layer's.
import { pack, unpack } from 'msgpackr'
import type { NodeId } from '../raft/index.ts'

/** MemberAddress is where one member listens: its HTTP API and its Raft transport. */
export interface MemberAddress {
  readonly http: string
  readonly raft: string
}

/** Members maps each member's id to its addresses. */
export type Members = Readonly<Record<NodeId, MemberAddress>>

/** encodeMembers turns an address book into bytes (MessagePack), for a snapshot's extra. */
export function encodeMembers(members: Members): Uint8Array {
  return new Uint8Array(pack(plainMembers(members)))
}

/** decodeMembers reads bytes made by encodeMembers; it throws a TypeError on anything else. */
export function decodeMembers(bytes: Uint8Array): Members {
  let v: unknown
  try {
    v = unpack(bytes)
  } catch (err) {
    throw new TypeError('member address book: not MessagePack', { cause: err })
  }
  const members = parseMembers(v)
  if (members === undefined) throw new TypeError('member address book: bad shape')
  return members
}

/** parseMembers checks that v is an address book and returns a copy, or undefined. */
export function parseMembers(v: unknown): Members | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const out: Record<NodeId, MemberAddress> = {}
  for (const [id, addr] of Object.entries(v)) {
    if (id === '' || typeof addr !== 'object' || addr === null) return undefined
    const { http, raft } = addr as Record<string, unknown>
    if (typeof http !== 'string' || typeof raft !== 'string') return undefined
    out[id] = { http, raft }
  }
  return out
}

/** plainMembers copies an address book into plain objects with only the known fields. */
export function plainMembers(members: Members): Record<NodeId, MemberAddress> {
  const out: Record<NodeId, MemberAddress> = {}
  for (const [id, { http, raft }] of Object.entries(members)) out[id] = { http, raft }
  return out
}
