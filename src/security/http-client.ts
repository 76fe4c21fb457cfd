// HTTP clients inside the server processes (a member forwarding to the leader, the cache
// reading the database and its peers, the admin following members and caches): they trust the
// process's --tls-ca, and show its certificate to peers under --peer-mtls.
import { Agent, fetch as undiciFetch, type Pool } from 'undici'
import { clientTlsOptions, serving, type TlsConfig } from './tls.ts'

/** poolTlsOptions are the undici Pool/Agent options of connections to other oncekv processes
 * (peer: to a cache's peer listener, where --peer-mtls asks for a client certificate). */
export function poolTlsOptions(
  tls: TlsConfig | undefined,
  peer: boolean,
): Pick<Pool.Options, 'connect'> {
  const connect = clientTlsOptions(tls, peer)
  return Object.keys(connect).length > 0 ? { connect } : {}
}

/** processFetch is the fetch a process calls other oncekv processes with: the global one, or
 * with TLS material, undici's bound to an agent that trusts --tls-ca. */
export function processFetch(tls: TlsConfig | undefined): typeof globalThis.fetch {
  const connect = clientTlsOptions(tls, false)
  if (Object.keys(connect).length === 0) return globalThis.fetch
  const dispatcher = new Agent({ connect })
  return ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    })) as unknown as typeof globalThis.fetch
}

/** httpScheme is the scheme of the process's own HTTP listeners. */
export function httpScheme(tls: TlsConfig | undefined): 'http' | 'https' {
  return serving(tls) ? 'https' : 'http'
}
