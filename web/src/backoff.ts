// How long the page waits before it tries the admin again.

const BACKOFF_FIRST_MS = 500
const BACKOFF_MAX_MS = 10_000

/** backoffMs is the wait before the next attempt after `failures` failed ones in a row (at
 * least 1): 0.5 s doubling up to 10 s, each drawn from the upper half of its cap (random in
 * [0, 1)) so that many pages do not reconnect in step. */
export function backoffMs(failures: number, random: number): number {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(cap * (0.5 + random / 2))
}
