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
  /** reads counts key reads answered since start; reads_not_found those answered 404. */
  readonly reads: number
  readonly reads_not_found: number
  readonly db_bytes: number
  readonly uptime_seconds: number
  readonly rss_bytes: number
}

/** CacheNodeStats is the body of GET /stats on a cache node: groupcache's counters under
 * its names, the main and hot caches, and what the node knows of its peers and databases. */
export interface CacheNodeStats {
  /** node is the node's client URL; peer its peer-protocol URL. */
  readonly node: string
  readonly peer: string
  readonly Gets: number
  readonly CacheHits: number
  readonly PeerLoads: number
  readonly PeerErrors: number
  readonly Loads: number
  readonly LoadsDeduped: number
  readonly LocalLoads: number
  readonly LocalLoadErrs: number
  readonly ServerRequests: number
  /** cache_bytes_limit is --cache-bytes: main_bytes + hot_bytes never exceed it. */
  readonly cache_bytes_limit: number
  readonly main_bytes: number
  readonly main_items: number
  readonly main_gets: number
  readonly main_hits: number
  readonly main_evictions: number
  readonly hot_bytes: number
  readonly hot_items: number
  readonly hot_gets: number
  readonly hot_hits: number
  readonly hot_evictions: number
  readonly loads_in_flight: number
  readonly peers: readonly string[]
  readonly dbs: readonly {
    readonly url: string
    readonly ewma_ms: number | null
    readonly down: boolean
    readonly reads: number
    readonly errors: number
  }[]
  /** admin is the admin URL, or null without one; last_meta_ms is the age of the last
   * heartbeat from it (-1: none yet). */
  readonly admin: string | null
  readonly last_meta_ms: number
  readonly uptime_seconds: number
  readonly rss_bytes: number
}

/** MetaRequest is the admin's heartbeat to a cache node (POST /meta), as the original. */
export interface MetaRequest {
  /** peers are the peer-protocol URLs of every live cache node. */
  readonly peers: readonly string[]
  /** dbs are the HTTP URLs of the database members. */
  readonly dbs: readonly string[]
}

/** CacheJoinRequest is a cache node's registration at the admin (POST /caches/join). */
export interface CacheJoinRequest {
  /** http is the node's client URL, peer its peer-protocol URL. */
  readonly http: string
  readonly peer: string
}
