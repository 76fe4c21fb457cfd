// The Raft core's data: log entries, hard state, configurations, snapshots metadata and the
// messages members exchange. Plain readonly data, no behaviour; network bytes are validated
// into these shapes by the transport's codec, never here.

/** NodeId names a member. The empty string means "no node" (no vote, no leader). */
export type NodeId = string

/** NONE is the NodeId meaning no node: no vote cast, no leader known. */
export const NONE: NodeId = ''

/** EntryType tells a normal proposal from a configuration change. */
export type EntryType = 'normal' | 'conf'

/** Entry is one log entry. Its index and term identify it (Raft §5.3 Log Matching). */
export interface Entry {
  readonly term: number
  readonly index: number
  readonly type: EntryType
  readonly data: Uint8Array
}

/** HardState is what a member persists before it sends anything that depends on it (§5.1). */
export interface HardState {
  readonly term: number
  readonly vote: NodeId
  readonly commit: number
}

/** ConfState is a configuration: voters count toward majorities, learners only replicate. */
export interface ConfState {
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
}

/** SnapshotMeta identifies a snapshot: the last index and term it covers and its configuration. */
export interface SnapshotMeta {
  readonly index: number
  readonly term: number
  readonly conf: ConfState
}

/** ConfChangeType is one single-server membership change (thesis §4.1). */
export type ConfChangeType = 'addVoter' | 'addLearner' | 'remove'

/** ConfChange is the payload of a 'conf' entry. context is opaque to Raft (addresses, say). */
export interface ConfChange {
  readonly type: ConfChangeType
  readonly node: NodeId
  readonly context?: string
}

/** ReadState releases a linearizable read: serve ctx once the applied index reaches index. */
export interface ReadState {
  readonly index: number
  readonly ctx: string
}

/** Role is a member's role in its current term. */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

interface Envelope {
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
}

/** AppendMessage carries entries after (index, logTerm) and the leader's commit (§5.3). */
export interface AppendMessage extends Envelope {
  readonly type: 'app'
  readonly index: number
  readonly logTerm: number
  readonly entries: readonly Entry[]
  readonly commit: number
}

/**
 * AppendResponse acknowledges entries up to index, or rejects the append at index. A
 * rejection carries a hint: rejectHint is the follower's guess of the last index that may
 * match and logTerm the term there, so the leader skips back a term at a time.
 */
export interface AppendResponse extends Envelope {
  readonly type: 'appResp'
  readonly index: number
  readonly reject: boolean
  readonly rejectHint: number
  readonly logTerm: number
}

/** HeartbeatMessage asserts leadership; ctx, when set, confirms ReadIndex requests up to it. */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat'
  readonly commit: number
  readonly ctx: string
}

/** HeartbeatResponse echoes the heartbeat's ctx. */
export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResp'
  readonly ctx: string
}

/**
 * VoteRequest asks for a vote (or, as 'preVote', whether a vote would be granted, at a term
 * the sender has not yet entered). transfer marks an election started by leadership
 * transfer, which may override a follower's leader stickiness.
 */
export interface VoteRequest extends Envelope {
  readonly type: 'vote' | 'preVote'
  readonly index: number
  readonly logTerm: number
  readonly transfer: boolean
}

/** VoteResponse grants or refuses a vote or pre-vote. */
export interface VoteResponse extends Envelope {
  readonly type: 'voteResp' | 'preVoteResp'
  readonly reject: boolean
}

/**
 * SnapshotMessage tells a follower to install the snapshot the metadata names. The snapshot's
 * data does not travel in the core: the host streams it in chunks and steps this message into
 * the follower's core only once the data has arrived whole.
 */
export interface SnapshotMessage extends Envelope {
  readonly type: 'snap'
  readonly snapshot: SnapshotMeta
}

/** ReadIndexRequest asks the leader for a read index on a follower's behalf (thesis §6.4). */
export interface ReadIndexRequest extends Envelope {
  readonly type: 'readIndex'
  readonly ctx: string
}

/** ReadIndexResponse carries the read index for ctx; reject means the leader could not serve. */
export interface ReadIndexResponse extends Envelope {
  readonly type: 'readIndexResp'
  readonly ctx: string
  readonly index: number
  readonly reject: boolean
}

/** TimeoutNow tells the transfer target to start an election at once (thesis §3.10). */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow'
}

/** TransferLeaderRequest is a follower forwarding a leadership transfer request to the leader. */
export interface TransferLeaderRequest extends Envelope {
  readonly type: 'transferLeader'
  readonly transferee: NodeId
}

/**
 * ProposalMessage carries proposals a follower passes to its leader (etcd's MsgProp), so that
 * writes arriving at any member reach the log without another protocol. It is outside Raft's
 * safety argument: a member that does not lead (or cannot take more) drops it, and the
 * proposer learns of its entry only by applying it (or times out and retries).
 */
export interface ProposalMessage extends Envelope {
  readonly type: 'prop'
  readonly data: readonly Uint8Array[]
}

/** Message is every message members exchange. */
export type Message =
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | VoteRequest
  | VoteResponse
  | SnapshotMessage
  | ReadIndexRequest
  | ReadIndexResponse
  | TimeoutNowMessage
  | TransferLeaderRequest
  | ProposalMessage

/** MessageType is the discriminant of Message. */
export type MessageType = Message['type']

/** entryBytes is the size an entry counts for in byte limits. */
export function entryBytes(e: Entry): number {
  return e.data.byteLength + 16
}

/** isVoterIn tells whether id is a voter of conf. */
export function isVoterIn(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id)
}

/** isLearnerIn tells whether id is a learner of conf. */
export function isLearnerIn(conf: ConfState, id: NodeId): boolean {
  return conf.learners.includes(id)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** encodeConfChange turns a ConfChange into the data of a 'conf' entry. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc))
}

/** decodeConfChange reads a 'conf' entry's data; it throws on anything not a ConfChange. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const v: unknown = JSON.parse(decoder.decode(data))
  if (typeof v !== 'object' || v === null) throw new TypeError('conf change: not an object')
  const o = v as Record<string, unknown>
  if (o.type !== 'addVoter' && o.type !== 'addLearner' && o.type !== 'remove') {
    throw new TypeError('conf change: bad type')
  }
  if (typeof o.node !== 'string' || o.node === '') throw new TypeError('conf change: bad node')
  if (o.context !== undefined && typeof o.context !== 'string') {
    throw new TypeError('conf change: bad context')
  }
  return o.context === undefined
    ? { type: o.type, node: o.node }
    : { type: o.type, node: o.node, context: o.context }
}

/**
 * applyConfChangeTo returns the configuration after cc. Adding a voter that is a learner
 * promotes it; adding a learner that is a voter demotes it; removing an absent node is a no-op.
 */
export function applyConfChangeTo(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((v) => v !== cc.node)
  const learners = conf.learners.filter((l) => l !== cc.node)
  if (cc.type === 'addVoter') voters.push(cc.node)
  else if (cc.type === 'addLearner') learners.push(cc.node)
  return { voters: voters.sort(), learners: learners.sort() }
}
