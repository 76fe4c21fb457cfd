// The peer transport's contract: how a database member exchanges Raft messages and streams
// snapshots with the other members. The Replica depends on this interface only.
import type { Message, NodeId, SnapshotMeta } from '../raft/index.ts'

/** KvPair is one key/value pair of a snapshot stream. */
export interface KvPair {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

/** SnapshotSource produces a snapshot's data in bounded chunks, from a consistent view. */
export interface SnapshotSource {
  readonly meta: SnapshotMeta
  /** extra is small opaque data travelling with the snapshot (the member address book). */
  readonly extra: Uint8Array
  /** chunks yields the pairs, each chunk at most about chunkBytes. */
  chunks(chunkBytes: number): AsyncIterable<readonly KvPair[]>
  /** close releases the consistent view. */
  close(): void
}

/** IncomingSnapshot is a snapshot arriving from the leader, consumed chunk by chunk. */
export interface IncomingSnapshot {
  readonly from: NodeId
  readonly meta: SnapshotMeta
  readonly extra: Uint8Array
  /** chunks yields the pairs as they arrive; it throws if the transfer breaks. It can be
   * iterated only once. */
  chunks(): AsyncIterable<readonly KvPair[]>
}

/** TransportHandlers are the callbacks a Transport delivers to. */
export interface TransportHandlers {
  /** onMessages receives a batch of messages from one peer, already validated. */
  onMessages(from: NodeId, msgs: readonly Message[]): void
  /** onSnapshot receives an incoming snapshot stream; the transfer completes when the
   * returned promise resolves (success) or rejects (failure, reported to the sender).
   * Resolving without reading every chunk is reported to the sender as a failure. */
  onSnapshot(snapshot: IncomingSnapshot): Promise<void>
}

/** Transport carries Raft messages between members. */
export interface Transport {
  /** start listens on the member's raft address. */
  start(handlers: TransportHandlers): Promise<void>
  /** setPeers sets the raft address of every other member (id -> "host:port"). */
  setPeers(peers: ReadonlyMap<NodeId, string>): void
  /** send queues messages to their recipients; it never blocks and never throws for a
   * down peer (messages to it are dropped, as Raft tolerates). */
  send(msgs: readonly Message[]): void
  /** sendSnapshot streams a snapshot to a peer; resolves when the peer has it all and
   * acknowledged it, rejects on any failure. */
  sendSnapshot(to: NodeId, source: SnapshotSource): Promise<void>
  /** unreachable lists peers whose connection is down now (for reportUnreachable). */
  unreachable(): readonly NodeId[]
  /** stats reports counters for /stats and /metrics. */
  stats(): TransportStats
  /** close stops listening and closes every connection. */
  close(): Promise<void>
}

/** TransportStats are the transport's counters. */
export interface TransportStats {
  messagesSent: number
  messagesReceived: number
  messagesDropped: number
  bytesSent: number
  bytesReceived: number
  badFrames: number
  connects: number
  snapshotsSent: number
  snapshotsReceived: number
}
