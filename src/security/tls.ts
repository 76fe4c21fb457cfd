// TLS settings of a process, from its flags: one certificate and key for every listener the
// process has (HTTP, the Raft transport, the cache peer protocol), a CA bundle it trusts when
// it connects to other oncekv processes (and, with --peer-mtls, when it checks a peer's client
// certificate), and whether peers must show a client certificate (mutual TLS on the Raft
// transport and the cache peer protocol).
import { readFileSync } from 'node:fs'

/** TlsFlags are the TLS flags as the CLI parses them. */
export interface TlsFlags {
  tlsCert?: string
  tlsKey?: string
  tlsCa?: string
  peerMtls?: boolean
}

/** TlsConfig is a process's TLS material, loaded. */
export interface TlsConfig {
  /** cert and key serve every listener; absent when the process only connects over TLS. */
  readonly cert?: Buffer
  readonly key?: Buffer
  /** ca is trusted for outgoing connections (and client certificates), else the system's. */
  readonly ca?: Buffer
  /** peerMtls: peer listeners ask for and check client certificates; peer clients show one. */
  readonly peerMtls: boolean
}

/** TlsConfigError is a TLS flag set that cannot work. */
export class TlsConfigError extends Error {}

/** loadTls reads the files the flags name; undefined when no TLS flag is given. */
export function loadTls(flags: TlsFlags): TlsConfig | undefined {
  const { tlsCert, tlsKey, tlsCa, peerMtls } = flags
  if (tlsCert === undefined && tlsKey === undefined && tlsCa === undefined && !peerMtls)
    return undefined
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new TlsConfigError('--tls-cert and --tls-key go together')
  if (peerMtls && (tlsCert === undefined || tlsCa === undefined))
    throw new TlsConfigError('--peer-mtls needs --tls-cert, --tls-key and --tls-ca')
  return {
    cert: tlsCert === undefined ? undefined : readPem('--tls-cert', tlsCert),
    key: tlsKey === undefined ? undefined : readPem('--tls-key', tlsKey),
    ca: tlsCa === undefined ? undefined : readPem('--tls-ca', tlsCa),
    peerMtls: peerMtls ?? false,
  }
}

function readPem(flag: string, file: string): Buffer {
  let pem: Buffer
  try {
    pem = readFileSync(file)
  } catch (e) {
    throw new TlsConfigError(
      `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    )
  }
  if (!pem.toString('latin1').includes('-----BEGIN '))
    throw new TlsConfigError(`${flag} ${file}: not a PEM file`)
  return pem
}

/** serving says whether the process's listeners speak TLS. */
export function serving(
  tls: TlsConfig | undefined,
): tls is TlsConfig & { cert: Buffer; key: Buffer } {
  return tls?.cert !== undefined && tls.key !== undefined
}

/** serverTlsOptions are node:tls / node:https server options for a listener; peer listeners
 * ask for a client certificate signed by the CA when peerMtls is on. */
export function serverTlsOptions(
  tls: TlsConfig & { cert: Buffer; key: Buffer },
  peer: boolean,
): { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = peer && tls.peerMtls
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    requestCert: mutual,
    rejectUnauthorized: mutual,
  }
}

/** clientTlsOptions are node:tls connect options toward another oncekv process: the CA, and
 * for peer connections under peerMtls the process's own certificate. */
export function clientTlsOptions(
  tls: TlsConfig | undefined,
  peer: boolean,
): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  if (!tls) return {}
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(peer && tls.peerMtls && tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
  }
}
