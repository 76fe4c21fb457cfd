// The security flags of the server commands (db, cache, admin): token and secret files, TLS.
import { Option, type Command } from 'commander'
import { loadSecret, SECRET_SOURCES, type Secret, type SecretName } from './secrets.ts'
import { loadTls, type TlsConfig, type TlsFlags } from './tls.ts'

const SECRET_HELP: Record<SecretName, string> = {
  write: 'puts need this token',
  read: 'gets need this token (or the write or admin token)',
  admin: 'membership changes, the admin API and its WebSockets need this token',
  cluster: 'members and caches prove they belong to the cluster with this secret',
}

/** addSecretOptions adds the file flags of the named secrets. */
export function addSecretOptions(cmd: Command, names: readonly SecretName[]): Command {
  for (const name of names) {
    const { flag, env } = SECRET_SOURCES[name]
    cmd.option(`${flag} <file>`, `${SECRET_HELP[name]} (file with the value; default $${env})`)
  }
  return cmd
}

/** addTlsOptions adds --tls-cert, --tls-key, --tls-ca and --peer-mtls. A process with no peer
 * listener (the admin) takes --peer-mtls too, so that one set of flags starts every process,
 * but leaves it out of its help: it has nothing there to protect. */
export function addTlsOptions(cmd: Command, peers = true): Command {
  const peerMtls = new Option(
    '--peer-mtls',
    'peers (Raft transport, cache peer protocol) must show a certificate signed by --tls-ca',
  )
  return cmd
    .option('--tls-cert <file>', 'certificate (PEM) every listener of this process serves TLS with')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option('--tls-ca <file>', 'CA bundle (PEM) trusted when connecting to other oncekv processes')
    .addOption(peers ? peerMtls : peerMtls.hideHelp())
}

/** Security is what a server process holds to protect itself and to prove itself to others:
 * tokens (write, read, admin), the cluster secret and TLS material. Every part is optional;
 * oncekv dev runs with none. */
export interface Security {
  readonly write?: Secret
  readonly read?: Secret
  readonly admin?: Secret
  readonly cluster?: Secret
  readonly tls?: TlsConfig
}

/** SecurityFlags are the flags addSecretOptions and addTlsOptions add, as parsed. */
export interface SecurityFlags extends TlsFlags {
  writeTokenFile?: string
  readTokenFile?: string
  adminTokenFile?: string
  clusterSecretFile?: string
}

const FILE_FLAG: Record<SecretName, keyof SecurityFlags> = {
  write: 'writeTokenFile',
  read: 'readTokenFile',
  admin: 'adminTokenFile',
  cluster: 'clusterSecretFile',
}

/** loadSecurity loads the named secrets (file flag, else environment) and the TLS files. It
 * throws SecretError or TlsConfigError with a message fit for the user. */
export function loadSecurity(
  flags: SecurityFlags,
  names: readonly SecretName[],
  env: NodeJS.ProcessEnv = process.env,
): Security {
  const out: { -readonly [K in keyof Security]: Security[K] } = {}
  for (const name of names) {
    const file = flags[FILE_FLAG[name]]
    const secret = loadSecret(name, typeof file === 'string' ? file : undefined, env)
    if (secret) out[name] = secret
  }
  const tls = loadTls(flags)
  if (tls) out.tls = tls
  return out
}
