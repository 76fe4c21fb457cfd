// The cache node's default timeouts and how they relate (no imports: the CLI reads them for
// its help without loading the node).

/** DB_TIMEOUT_DEFAULT_MS bounds one fill from the database by default (--db-timeout-ms). */
export const DB_TIMEOUT_DEFAULT_MS = 3_000

/**
 * PEER_TIMEOUT_MARGIN_MS is how much longer than the owner's database fill budget an asking
 * node waits for the owner by default. Asked for a key it does not hold, the owner reads the
 * database once (however many nodes ask) for up to --db-timeout-ms and then answers, with the
 * value or an error. An asking node that gave up sooner would read the database itself while
 * the owner is still reading it: two reads of the key, single flight defeated. So the peer
 * timeout defaults to the fill budget plus this margin (the answer's trip and a busy
 * machine's delay). A hung or slow owner still costs at most the peer timeout, once: after
 * it the owner is not asked for a while.
 */
export const PEER_TIMEOUT_MARGIN_MS = 500

/** peerTimeoutFor is the default peer timeout for a database fill budget. */
export function peerTimeoutFor(dbTimeoutMs: number): number {
  return dbTimeoutMs + PEER_TIMEOUT_MARGIN_MS
}
