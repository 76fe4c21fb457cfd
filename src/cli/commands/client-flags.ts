// What the CLI's data commands (put, get, status, bench) share: the flags that say where the
// system is (--admin, or --db/--cache lists; $ONCEKV_ADMIN; else the `oncekv dev` admin), the
// exit codes and one-line errors on stderr.
import { readFileSync } from 'node:fs'
import { InvalidArgumentError, type Command } from 'commander'
import {
  InvalidKeyError,
  KeyConflictError,
  type OnceKVOptions,
  OnceKVError,
} from '../../client/index.ts'
import { intOption, urlListOption, urlOption } from '../options.ts'

/** DEV_ADMIN is the admin of `oncekv dev` on its default port. */
export const DEV_ADMIN = 'http://127.0.0.1:5546'

/** EXIT are the CLI's exit codes. */
export const EXIT = { ok: 0, error: 1, usage: 2, conflict: 3, notFound: 4 } as const

/** ClientFlags are the flags every data command takes. */
export interface ClientFlags {
  admin?: string
  db?: string[]
  cache?: string[]
  timeout: number
  tokenFile?: string
  tlsCa?: string
}

/** Need is what a command does: reads, or writes (puts). */
export type Need = 'read' | 'write'

/** TOKEN_VARIABLES are the variables a command's token is taken from, first set first. */
export const TOKEN_VARIABLES: Readonly<Record<Need, readonly string[]>> = {
  read: ['ONCEKV_READ_TOKEN', 'ONCEKV_WRITE_TOKEN', 'ONCEKV_ADMIN_TOKEN'],
  write: ['ONCEKV_WRITE_TOKEN', 'ONCEKV_ADMIN_TOKEN'],
}

/** addClientFlags adds --admin, --db, --cache and --timeout to a command. */
export function addClientFlags(cmd: Command): Command {
  return cmd
    .option(
      '--admin <url>',
      `the admin, to find the nodes through (default $ONCEKV_ADMIN, else ${DEV_ADMIN})`,
      (v: string) => urlOption(v, undefined)[0] as string,
    )
    .option(
      '--db <url>',
      'a database member to use instead of the admin (repeat it, or give a comma-separated list)',
      urlListOption,
    )
    .option(
      '--cache <url>',
      'a cache node to read through, with --db (repeat it, or give a comma-separated list)',
      urlListOption,
    )
    .option('--timeout <ms>', 'deadline of each call in ms', positiveIntOption, 5000)
    .option(
      '--token-file <file>',
      'file holding the token to send (default: $ONCEKV_READ_TOKEN for reads, $ONCEKV_WRITE_TOKEN for puts, else $ONCEKV_ADMIN_TOKEN)',
    )
    .option(
      '--tls-ca <file>',
      'CA bundle (PEM) to trust for https:// nodes, besides the system CAs (or set $NODE_EXTRA_CA_CERTS)',
    )
}

/** tokenOf is the token a command sends: the --token-file's contents, else the first of the
 * need's variables that is set, else none. */
export function tokenOf(
  flags: ClientFlags,
  command: string,
  need: Need,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (flags.tokenFile !== undefined) {
    let text: string
    try {
      text = readFileSync(flags.tokenFile, 'utf8').trim()
    } catch (e) {
      usage(
        command,
        `--token-file ${flags.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      )
    }
    if (text === '') usage(command, `--token-file ${flags.tokenFile}: the file is empty`)
    return text
  }
  for (const v of TOKEN_VARIABLES[need]) {
    const value = env[v]?.trim()
    if (value) return value
  }
  return undefined
}

/** refusal is the one-line message of a 401 or 403, naming the token the command needs;
 * undefined for any other error. */
export function refusal(status: number | undefined, need: Need, sent: boolean): string | undefined {
  if (status !== 401 && status !== 403) return undefined
  const vars = TOKEN_VARIABLES[need]
  const which =
    need === 'write'
      ? 'the write token (or the admin token)'
      : 'the read token (or the write or admin token)'
  return sent
    ? `the token sent was refused (HTTP ${status}): this needs ${which}; check --token-file or $${vars.join(', $')}`
    : `a token is needed (HTTP ${status}): give ${which} with --token-file <file> or $${vars.join(', $')}`
}

/** FetchFn is the fetch the data commands call nodes with. */
export type FetchFn = typeof globalThis.fetch

/** caFetch is a fetch that trusts the CA bundle pem (besides the system CAs) for https://
 * nodes; undici is loaded on the first call only, so commands without --tls-ca start as
 * fast as before. */
export function caFetch(pem: Buffer): FetchFn {
  let fetchWithCa: Promise<FetchFn> | undefined
  const load = async (): Promise<FetchFn> => {
    const { Agent, fetch } = await import('undici')
    const { rootCertificates } = await import('node:tls')
    const dispatcher = new Agent({ connect: { ca: [...rootCertificates, pem.toString()] } })
    return ((input: string | URL, init?: RequestInit) =>
      fetch(input, { ...(init as Parameters<typeof fetch>[1]), dispatcher })) as unknown as FetchFn
  }
  return (async (input: string | URL, init?: RequestInit) => {
    fetchWithCa ??= load()
    return (await fetchWithCa)(input, init)
  }) as FetchFn
}

/** tlsCaFetch reads --tls-ca: a fetch trusting it, or undefined without the flag. */
export function tlsCaFetch(flags: ClientFlags, command: string): FetchFn | undefined {
  if (flags.tlsCa === undefined) return undefined
  let pem: Buffer
  try {
    pem = readFileSync(flags.tlsCa)
  } catch (e) {
    usage(command, `--tls-ca ${flags.tlsCa}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  if (!pem.toString('latin1').includes('-----BEGIN '))
    usage(command, `--tls-ca ${flags.tlsCa}: not a PEM file`)
  return caFetch(pem)
}

/** TLS_TRUST_CODES are the TLS errors of a server certificate the client does not trust. */
const TLS_TRUST_CODES =
  /\b(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID)\b/

/** tlsHint adds what to do to a message about an untrusted server certificate. */
export function tlsHint(message: string): string {
  return TLS_TRUST_CODES.test(message)
    ? `${message}: the server's TLS certificate is not trusted; give the CA that signed it with --tls-ca <file> (or $NODE_EXTRA_CA_CERTS)`
    : message
}

/** positiveIntOption parses an integer flag of at least 1. */
export function positiveIntOption(value: string): number {
  const n = intOption(value)
  if (n < 1) throw new InvalidArgumentError(`${value} is not a positive integer`)
  return n
}

/** clientOptions turns the flags into client options: --db/--cache lists when given (with
 * --admin only if it is given too), else the admin from --admin, $ONCEKV_ADMIN or the
 * default. */
export function clientOptions(flags: ClientFlags, command: string, need: Need): OnceKVOptions {
  const lists = (flags.db?.length ?? 0) > 0 || (flags.cache?.length ?? 0) > 0
  let admin = flags.admin
  if (admin === undefined && !lists) {
    const env = process.env.ONCEKV_ADMIN
    if (env) {
      try {
        admin = urlOption(env, undefined)[0] as string
      } catch {
        usage(command, `ONCEKV_ADMIN=${env} is not a URL like ${DEV_ADMIN}`)
      }
    } else {
      admin = DEV_ADMIN
    }
  }
  const token = tokenOf(flags, command, need)
  const fetch = tlsCaFetch(flags, command)
  return {
    admin,
    dbs: flags.db,
    caches: flags.cache,
    timeoutMs: flags.timeout,
    ...(token !== undefined ? { token } : {}),
    ...(fetch ? { fetch } : {}),
  }
}

/** where names the system a command talks to, for error messages. */
export function where(opts: OnceKVOptions): string {
  if (opts.admin) return `the admin at ${opts.admin}`
  return [...(opts.dbs ?? []), ...(opts.caches ?? [])].join(', ')
}

/** usage prints a usage error and exits with 2. */
export function usage(command: string, message: string): never {
  console.error(`oncekv ${command}: ${message} (see oncekv ${command} --help)`)
  process.exit(EXIT.usage)
}

/** fail prints one line on stderr and exits with code. */
export function fail(command: string, message: string, code: number = EXIT.error): never {
  console.error(`oncekv ${command}: ${message}`)
  process.exit(code)
}

/** failWith reports a client error: conflicts exit 3, invalid keys 2, the rest 1. A message
 * that starts with the call itself ('put "k": ...') loses that part: the line names it. */
export function failWith(command: string, e: unknown, need?: Need, sent = false): never {
  if (need && e instanceof OnceKVError) {
    const refused = refusal(e.status, need, sent)
    if (refused) fail(command, refused)
  }
  const code =
    e instanceof KeyConflictError
      ? EXIT.conflict
      : e instanceof InvalidKeyError
        ? EXIT.usage
        : EXIT.error
  const message =
    e instanceof OnceKVError
      ? e.message.replace(/^(put|get|has) "(?:[^"\\]|\\.)*": /, '')
      : e instanceof Error
        ? e.message
        : String(e)
  fail(command, tlsHint(message), code)
}

/** writeOut writes bytes to stdout and resolves once they are handed to the OS. */
export function writeOut(bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())),
  )
}
