// JSON shapes of the HTTP API's responses, shared by servers and clients.

/** PutResponse is the body of a successful POST /key (code 1000, as the original). */
export interface PutResponse {
  readonly code: 1000
  /** created is false when the identical value was already there. */
  readonly created: boolean
}

/** GetResponse is the body of GET /key/:key. A value that is not valid UTF-8 (written as raw
 * bytes) comes base64-encoded, with encoding set. */
export interface GetResponse {
  readonly key: string
  readonly value: string
  readonly encoding?: 'base64'
}

/** ClusterMember is one member in GET /cluster. */
export interface ClusterMember {
  readonly id: string
  readonly http: string
  readonly raft: string
  readonly suffrage: 'voter' | 'learner'
  readonly leader: boolean
}

/** ClusterResponse is the body of GET /cluster. */
export interface ClusterResponse {
  readonly id: string
  readonly leader: string
  readonly term: number
  readonly members: readonly ClusterMember[]
}

/** JoinRequest is the body of POST /join. */
export interface JoinRequest {
  readonly id: string
  readonly http: string
  readonly raft: string
}

/** RemoveRequest is the body of POST /remove. */
export interface RemoveRequest {
  readonly id: string
}

/** DbStats is the body of GET /stats on a database member: the Raft names of the original
 * (state, term, last_log_index, commit_index, applied_index, num_peers, last_contact) plus
 * more. Numbers are numbers (the original sent strings). */
export interface DbStats {
  readonly id: string
  readonly state: 'Leader' | 'Follower' | 'Candidate' | 'PreCandidate'
  readonly leader: string
  readonly term: number
  readonly last_log_index: number
  readonly last_log_term: number
  readonly commit_index: number
  readonly applied_index: number
  readonly fsm_pending: number
  readonly last_snapshot_index: number
  readonly last_snapshot_term: number
  readonly num_peers: number
  readonly num_learners: number
  /** last_contact is milliseconds since the leader was heard from; 0 on the leader, -1 never. */
  readonly last_contact: number
  readonly pending_writes: number
  readonly keys: number
  readonly db_bytes: number
  readonly uptime_seconds: number
  readonly rss_bytes: number
}
