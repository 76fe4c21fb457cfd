// dialPeer opens a connection to another member's raft address: plain TCP, or TLS when the
// member serves TLS itself (every member of a cluster does, or none). Over TLS the peer must
// show a certificate for the host dialled, signed by --tls-ca (else the system's CAs), and
// under --peer-mtls this member shows its own certificate.
import net from 'node:net'
import type { Socket } from 'node:net'
import tls from 'node:tls'
import { clientTlsOptions, serving, type TlsConfig } from '../security/index.ts'
import type { HostPort } from './host-port.ts'

/** Dialled is a connection being opened and the event that says it is ready for frames. */
export interface Dialled {
  readonly socket: Socket
  readonly ready: 'connect' | 'secureConnect'
}

/** dialPeer starts a connection to target; errors arrive as the socket's 'error' events. */
export function dialPeer(target: HostPort, config: TlsConfig | undefined): Dialled {
  if (!serving(config)) return { socket: net.connect(target), ready: 'connect' }
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    ...clientTlsOptions(config, true),
    // SNI takes host names only; the certificate is checked against the host either way.
    ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
  })
  return { socket, ready: 'secureConnect' }
}
