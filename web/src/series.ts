// The sparklines' data: five minutes of one-second points for the cluster and each node, seeded
// from the admin's history (the first message of /ws/overview) and extended by every overview
// after it. Pure functions: each returns new arrays, so Vue sees the change.
import type { AdminHistory, AdminOverview, HistoryPoint } from './protocol.ts'

/** WINDOW_MS is how much time a sparkline spans (the admin keeps as much). */
export const WINDOW_MS = 5 * 60_000

/** Series holds every sparkline's points, oldest first. */
export interface Series {
  readonly cluster: readonly HistoryPoint[]
  /** nodes are keyed by node URL, as in AdminHistory. */
  readonly nodes: Readonly<Record<string, readonly HistoryPoint[]>>
  /** lastTime is the newest overview folded in (ms since the epoch); 0 for none. */
  readonly lastTime: number
}

/** EMPTY_SERIES has no points. */
export const EMPTY_SERIES: Series = { cluster: [], nodes: {}, lastTime: 0 }

function trim(points: readonly HistoryPoint[], end: number): HistoryPoint[] {
  const from = end - WINDOW_MS
  let i = 0
  while (i < points.length && (points[i] as HistoryPoint).time < from) i++
  return points.slice(i)
}

/** fromHistory takes the admin's history, which is complete for as long as that admin has run.
 * Points the page already had from before it (an admin that restarted has forgotten them) are
 * kept in front, so the sparklines go on across a restart with a gap for the outage. */
export function fromHistory(h: AdminHistory, before: Series = EMPTY_SERIES): Series {
  const last = h.cluster[h.cluster.length - 1]
  const end = Math.max(last?.time ?? 0, before.lastTime)
  const nodes: Record<string, HistoryPoint[]> = {}
  for (const [url, points] of Object.entries(h.nodes))
    nodes[url] = trim(joined(before.nodes[url] ?? [], points), end)
  return { cluster: trim(joined(before.cluster, h.cluster), end), nodes, lastTime: end }
}

function joined(older: readonly HistoryPoint[], newer: readonly HistoryPoint[]): HistoryPoint[] {
  const first = newer[0]
  if (!first) return [...older]
  return [...older.filter((p) => p.time < first.time), ...newer]
}

/** appendOverview adds one overview's figures. The overview sent right after the history is
 * already its last point (the admin records a point per poll), so an overview no newer than
 * what the series hold adds nothing. Nodes the overview no longer lists are dropped. */
export function appendOverview(s: Series, o: AdminOverview): Series {
  if (o.time <= s.lastTime) return s
  const cluster = trim(
    [
      ...s.cluster,
      { time: o.time, ops_per_s: o.cluster.ops_per_s, hit_ratio: o.cluster.hit_ratio },
    ],
    o.time,
  )
  const nodes: Record<string, HistoryPoint[]> = {}
  for (const n of o.nodes) {
    const point = { time: o.time, ops_per_s: n.rates.ops_per_s, hit_ratio: n.rates.hit_ratio }
    nodes[n.url] = trim([...(s.nodes[n.url] ?? []), point], o.time)
  }
  return { cluster, nodes, lastTime: o.time }
}
