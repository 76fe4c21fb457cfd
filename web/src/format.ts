// Number formatting for the dashboard: counts with separators, rates, ratios, bytes and ages,
// each short enough for a dense card.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })

/** count formats a counter: 1,234,567. */
export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : integer.format(n)
}

/** rate formats a per-second figure: 0.4, 12.5, 1,234, 12.3k. */
export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–'
  if (n >= 100_000) return `${oneDecimal.format(n / 1000)}k`
  if (n >= 100) return integer.format(n)
  return oneDecimal.format(n)
}

/** percent formats a ratio in [0, 1]: 97.3 %; a dash when there is none. */
export function percent(r: number | null | undefined): string {
  if (r === null || r === undefined) return '–'
  return `${oneDecimal.format(r * 100)} %`
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** bytes formats a size in binary units: 512 B, 1.5 MiB. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–'
  let v = n
  let u = 0
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? integer.format(v) : oneDecimal.format(v)} ${UNITS[u]}`
}

/** millis formats a duration in milliseconds: 12 ms, 1.2 s, 3 min. */
export function millis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '–'
  if (ms < 1000) return `${integer.format(ms)} ms`
  return seconds(ms / 1000)
}

/** seconds formats a duration in seconds: 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h. */
export function seconds(s: number): string {
  if (s < 10) return `${oneDecimal.format(s)} s`
  if (s < 60) return `${integer.format(s)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h} h ${m % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

/** lastContact formats a follower's DbStats.last_contact (-1: never heard from the leader). */
export function lastContact(ms: number): string {
  return ms < 0 ? 'never' : millis(ms)
}

/** hostOf strips the scheme from a node URL: http://127.0.0.1:5551 → 127.0.0.1:5551. */
export function hostOf(url: string): string {
  return url.replace(/^https?:\/\//, '')
}
