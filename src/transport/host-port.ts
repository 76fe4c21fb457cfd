// Parsing and formatting of "host:port" addresses, the form members' raft addresses take in
// configuration and in the address book. IPv6 hosts are bracketed: "[::1]:7000".

/** HostPort is a parsed "host:port" address. */
export interface HostPort {
  readonly host: string
  readonly port: number
}

/** parseHostPort splits "host:port" (or "[v6]:port"); it throws a TypeError on anything else. */
export function parseHostPort(address: string): HostPort {
  let host: string
  let portText: string
  if (address.startsWith('[')) {
    const close = address.indexOf(']')
    if (close < 0 || address[close + 1] !== ':') throw new TypeError(`bad address ${address}`)
    host = address.slice(1, close)
    portText = address.slice(close + 2)
  } else {
    const colon = address.lastIndexOf(':')
    if (colon < 0 || address.indexOf(':') !== colon) throw new TypeError(`bad address ${address}`)
    host = address.slice(0, colon)
    portText = address.slice(colon + 1)
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw new TypeError(`bad port in address ${address}`)
  const port = Number(portText)
  if (host === '' || port > 65535) throw new TypeError(`bad address ${address}`)
  return { host, port }
}

/** formatHostPort is parseHostPort's inverse: it brackets IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
