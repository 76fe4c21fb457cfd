// The admin's JSON shapes, taken from the server's own definitions (src/protocol/shapes.ts
// imports nothing, so the page can share it type-only: nothing of it reaches the bundle), and
// the guards that check a message before the page trusts it.
import type { AdminHistory, AdminOverview } from '../../src/protocol/shapes.ts'

export type {
  AdminHistory,
  AdminInfo,
  AdminOverview,
  AdminPutResponse,
  CacheNodeStats,
  ClusterRates,
  DbStats,
  Health,
  HistoryPoint,
  Lag,
  LookupResponse,
  OverviewNode,
  Rates,
} from '../../src/protocol/shapes.ts'

/** ErrorBody is the JSON body of every error answer: {code, error, message}. */
export interface ErrorBody {
  readonly code: number
  readonly error: string
  readonly message: string
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** isErrorBody tells whether x is an error body. */
export function isErrorBody(x: unknown): x is ErrorBody {
  return isObject(x) && typeof x.code === 'number' && typeof x.message === 'string'
}

/** LiveMessage is what /ws/overview sends: the history first, then an overview a second. */
export type LiveMessage = AdminHistory | AdminOverview

/** parseLiveMessage checks the outline of a /ws/overview message; undefined when it is not one. */
export function parseLiveMessage(text: string): LiveMessage | undefined {
  let x: unknown
  try {
    x = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObject(x)) return undefined
  if (x.type === 'history' && Array.isArray(x.cluster) && isObject(x.nodes))
    return x as unknown as AdminHistory
  if (
    x.type === 'overview' &&
    typeof x.time === 'number' &&
    isObject(x.cluster) &&
    Array.isArray(x.nodes)
  )
    return x as unknown as AdminOverview
  return undefined
}
