// The security flags of the server commands (db, cache, admin): token and secret files, TLS.
import type { Command } from 'commander'
import { SECRET_SOURCES, type SecretName } from './secrets.ts'

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

/** addTlsOptions adds --tls-cert, --tls-key, --tls-ca and --peer-mtls. */
export function addTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls-cert <file>', 'certificate (PEM) every listener of this process serves TLS with')
    .option('--tls-key <file>', 'private key (PEM) of --tls-cert')
    .option('--tls-ca <file>', 'CA bundle (PEM) trusted when connecting to other oncekv processes')
    .option(
      '--peer-mtls',
      'peers (Raft transport, cache peer protocol) must show a certificate signed by --tls-ca',
    )
}
