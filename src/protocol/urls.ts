// Node URLs as the lists carry them: "http(s)://host:port", no path, query or credentials.
import { BadRequestError } from './errors.ts'

const MAX_LIST = 1000

/** urlList validates a list of http(s) base URLs. */
export function urlList(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_LIST)
    throw new BadRequestError(`${name} must be an array of at most ${MAX_LIST} URLs`)
  return v.map((u) => {
    if (typeof u !== 'string' || !isBaseUrl(u))
      throw new BadRequestError(`${name} must hold http:// or https:// base URLs`)
    return u.replace(/\/$/, '')
  })
}

/** isBaseUrl is true for "http(s)://host:port" with no path, query or credentials. */
export function isBaseUrl(u: string): boolean {
  if (u.length > 300) return false
  try {
    const url = new URL(u)
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.pathname === '/' &&
      !url.search &&
      !url.hash &&
      !url.username &&
      !url.password
    )
  } catch {
    return false
  }
}

/**
 * memberUrl is the URL of a database member's HTTP address ("host:port", as /cluster and the
 * Raft configuration carry it). The members of one cluster all serve HTTPS or all plain HTTP
 * (one rule for the whole cluster, so the address book needs no scheme): like is the scheme,
 * or any URL of the cluster (the one it was reached through), whose scheme is used.
 */
export function memberUrl(address: string, like: string): string {
  return `${/^https(:|$)/i.test(like) ? 'https' : 'http'}://${address}`
}
