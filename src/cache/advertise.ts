// The URLs a cache node names itself by, to the admin, to its peers and in its stats. A node
// listens on an address ("host:port"); others reach it at a URL, which is not the same thing
// when it listens on every interface (0.0.0.0, ::) or behind NAT. By default the URL is
// http:// (https:// when the node serves TLS) and the listen address; flags give another.
import { serving, type TlsConfig } from '../security/index.ts'

/** advertisedUrl is the URL a listener is advertised under: advertise when given (a trailing
 * slash dropped), else http(s)://<listen>, https when the node serves TLS. */
export function advertisedUrl(listen: string, advertise?: string, tls?: TlsConfig): string {
  return (advertise ?? `${serving(tls) ? 'https' : 'http'}://${listen}`).replace(/\/$/, '')
}

/** isUnspecifiedUrl is true when url's host is the unspecified address (0.0.0.0 or ::, in
 * any spelling): a server may listen on it, but nobody can connect to it from elsewhere. */
export function isUnspecifiedUrl(url: string): boolean {
  let host: string
  try {
    host = new URL(url).hostname
  } catch {
    return false
  }
  // URL normalises the spellings: "0", "0.0.0.0" and "[0:0::0]" come out as these two.
  return host === '0.0.0.0' || host === '[::]'
}
