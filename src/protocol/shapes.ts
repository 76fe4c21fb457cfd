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
  /** applied is the member's applied index: its members list is as of that index (or later). */
  readonly applied: number
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
  /** values_corrupt counts reads and writes that found this member's stored value of their
   * key failing its checksum (a read answered 503; a write was decided by the leader's copy). */
  readonly values_corrupt: number
  /** writes counts writes answered (created, already there, conflict) since start. */
  readonly writes: number
  /** writes_in_flight counts writes this member is still carrying out, retries included (a
   * write may outlive its client's wait; it can take effect until it ends). */
  readonly writes_in_flight: number
  readonly db_bytes: number
  /** snapshots_installed counts snapshots received and installed since start;
   * last_snapshot_chunks is how many chunks the latest one came in (0: none yet). */
  readonly snapshots_installed: number
  readonly last_snapshot_chunks: number
  /** disk_writes counts the fsynced transactions of the Raft loop since start (each holds a
   * Ready: new log entries, a term or vote, a received snapshot); log_entries_written the
   * entries they held, so log_entries_written / disk_writes is how many entries share one
   * fsync (group commit); disk_write_seconds their total time, from queueing to durable. */
  readonly disk_writes: number
  readonly log_entries_written: number
  readonly disk_write_seconds: number
  readonly uptime_seconds: number
  readonly rss_bytes: number
  /** storage_error says why the member's disk refuses writes ("disk full at <dir> (…)",
   * "data directory <dir> is read-only (…)"); null when it takes them. (Optional for stats
   * of older members.) */
  readonly storage_error?: string | null
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
  /** main_bytes and hot_bytes are what the entries of each cache count against the bound:
   * key and value bytes plus a measured per-entry overhead (448 B for a value in a shared slab,
   * 800 B for one over 1 KiB: src/cache/lru.ts) and the slab bytes no longer holding a value,
   * so they are the memory the entries take, not the data alone. */
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
  /** rss_bytes is the process's resident memory; heap_used_bytes its JavaScript heap in use
   * (garbage included until collected); external_bytes memory outside the heap that heap
   * objects hold, array_buffers_bytes the part of it in Buffers (values among them). */
  readonly rss_bytes: number
  readonly heap_used_bytes: number
  readonly external_bytes: number
  readonly array_buffers_bytes: number
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

/** Health of a node as the admin sees it: up (its last stats poll answered), suspect (the
 * last one or two failed), down (three or more failed, or it left). */
export type Health = 'up' | 'suspect' | 'down'

/** Rates are per-second figures the admin computes from two consecutive stats samples. */
export interface Rates {
  /** reads_per_s: client reads served (a cache: Gets minus peers' requests; a member: reads). */
  readonly reads_per_s: number
  /** writes_per_s: writes answered (members only; 0 on caches). */
  readonly writes_per_s: number
  /** ops_per_s is reads_per_s + writes_per_s. */
  readonly ops_per_s: number
  /** hit_ratio is CacheHits / Gets over the interval (caches; null without gets or on members). */
  readonly hit_ratio: number | null
}

/** OverviewNode is one node on the dashboard. */
export interface OverviewNode {
  readonly kind: 'db' | 'cache'
  /** id is the member id (db) or the node's host:port (cache). */
  readonly id: string
  readonly url: string
  readonly health: Health
  /** leader is true for the database member that leads. */
  readonly leader: boolean
  /** suffrage of a member; null for caches. */
  readonly suffrage: 'voter' | 'learner' | null
  /** last_seen_ms is the age of the last stats that answered (-1: never). */
  readonly last_seen_ms: number
  /** lag is how far an up member is behind, in entries (null when unknown, and for caches). */
  readonly lag: Lag | null
  readonly rates: Rates
  /** stats are the node's latest stats; null when it is down (see last_stats). */
  readonly stats: DbStats | CacheNodeStats | null
  /** down_since is when a down node's current run of failed polls began (ms since the
   * epoch); null unless down. */
  readonly down_since: number | null
  /** last_stats are a down node's last known stats (null if it never answered, or when up). */
  readonly last_stats: DbStats | CacheNodeStats | null
}

/** Lag is a member's distance behind the leader, in entries. */
export interface Lag {
  /** replication: entries of the leader's log not yet in this member's log (the leader's
   * last_log_index minus this member's; 0 on the leader; null when no leader is known). */
  readonly replication: number | null
  /** apply: entries this member knows committed but has not applied yet (its commit_index
   * minus its applied_index). */
  readonly apply: number
}

/** ClusterRates are the whole system's figures. */
export interface ClusterRates {
  /** writes_per_s: entries committed per second (the leader's commit index). */
  readonly writes_per_s: number
  /** reads_per_s: client reads through caches plus direct reads of members (reads that
   * caches made to fill themselves are not counted twice). */
  readonly reads_per_s: number
  readonly ops_per_s: number
  readonly hit_ratio: number | null
}

/** AdminOverview is the body of GET /overview and each "overview" message of /ws/overview. */
export interface AdminOverview {
  readonly type: 'overview'
  /** time is when the sample was taken (ms since the epoch). */
  readonly time: number
  /** leader is the leading member's id, or null when none is known. */
  readonly leader: string | null
  readonly term: number
  readonly cluster: ClusterRates
  readonly nodes: readonly OverviewNode[]
}

/** HistoryPoint is one second of one series. */
export interface HistoryPoint {
  readonly time: number
  readonly ops_per_s: number
  readonly hit_ratio: number | null
}

/** AdminHistory is the first message of /ws/overview (and GET /history): the last minutes
 * of ops/s and hit ratio, per node URL and for the whole cluster, oldest first. */
export interface AdminHistory {
  readonly type: 'history'
  readonly cluster: readonly HistoryPoint[]
  readonly nodes: Readonly<Record<string, readonly HistoryPoint[]>>
}

/** LookupResponse is GET /api/lookup/:key on the admin: the value as a cache served it. */
export interface LookupResponse {
  readonly key: string
  readonly found: boolean
  /** value as UTF-8 text, or base64 with encoding set; absent when not found. */
  readonly value?: string
  readonly encoding?: 'base64'
  readonly size?: number
  /** served_by is the URL of the node that answered; source where it found the value
   * (main, hot, peer, db). */
  readonly served_by: string
  readonly source?: string
  readonly took_ms: number
}

/** AdminPutResponse is POST /api/put on the admin: the outcome of a create-once write. */
export interface AdminPutResponse {
  readonly key: string
  /** outcome: created (new), exists (the identical value was already there: an idempotent
   * success), conflict (another value is there; it stays). */
  readonly outcome: 'created' | 'exists' | 'conflict'
  /** existing is the value already there on a conflict (UTF-8 or base64). */
  readonly existing?: string
  readonly served_by: string
  readonly took_ms: number
}

/** AdminStats is the body of GET /stats on the admin (and each message of its /ws/stats):
 * its own figures, read from what it holds (no call to any node). Counters count since
 * start. */
export interface AdminStats {
  /** node is the admin's URL. */
  readonly node: string
  /** caches are the cache nodes registered; caches_down those dropped for missed heartbeats
   * that the overview still shows as down (for five minutes). */
  readonly caches: number
  readonly caches_down: number
  /** cache_joins counts registrations of a new node (or of a node under a new peer URL),
   * cache_leaves nodes that said they stop, cache_drops nodes dropped for missed heartbeats. */
  readonly cache_joins: number
  readonly cache_leaves: number
  readonly cache_drops: number
  /** heartbeats counts POST /meta calls made to cache nodes; heartbeat_misses those that
   * failed or went unanswered in time. */
  readonly heartbeats: number
  readonly heartbeat_misses: number
  /** db_members are the database members in the admin's view of the cluster (voters and
   * learners), db_voters the voters among them (GET /dbs), db_members_up those whose
   * GET /stats answered the latest overview poll. */
  readonly db_members: number
  readonly db_voters: number
  readonly db_members_up: number
  /** db_leader is the leading member's id in that view (null: none known); db_term its term. */
  readonly db_leader: string | null
  readonly db_term: number
  /** db_view_age_ms is the age of that view (-1: no member has answered yet). */
  readonly db_view_age_ms: number
  /** db_ready is true when a member answered the latest round of GET /cluster: /readyz. */
  readonly db_ready: boolean
  /** cluster_polls counts rounds of GET /cluster (a round asks members until one answers);
   * cluster_poll_errors the rounds in which none did. */
  readonly cluster_polls: number
  readonly cluster_poll_errors: number
  /** overview_polls counts the overview's rounds (one a second); stats_polls the GET /stats
   * calls they made to members and caches, stats_poll_errors those that failed. */
  readonly overview_polls: number
  readonly stats_polls: number
  readonly stats_poll_errors: number
  /** api_lookups and api_puts count the dashboard's GET /api/lookup and POST /api/put
   * calls answered; *_errors those answered with an error (4xx or 5xx, refusals included). */
  readonly api_lookups: number
  readonly api_lookup_errors: number
  readonly api_puts: number
  readonly api_put_errors: number
  /** ws_clients are the WebSocket clients connected (every path: /ws/overview, /ws/caches,
   * /ws/dbs, /ws/stats). */
  readonly ws_clients: number
  readonly uptime_seconds: number
  /** rss_bytes, heap_used_bytes, external_bytes, array_buffers_bytes: the process's memory,
   * as on a cache node. */
  readonly rss_bytes: number
  readonly heap_used_bytes: number
  readonly external_bytes: number
  readonly array_buffers_bytes: number
}

/** AdminInfo is GET /api/info on the admin: what the page needs to know of it. */
export interface AdminInfo {
  /** max_value_bytes is the largest value the put form sends (the database's limit). */
  readonly max_value_bytes: number
  /** dbs are the database URLs the admin was told to follow the cluster through (--db). */
  readonly dbs: readonly string[]
  /** started_by is 'dev' when `oncekv dev` started the admin. */
  readonly started_by: 'dev' | null
  /** auth is true when the admin's routes need the admin token (the page asks for it). */
  readonly auth: boolean
}
