// What the CLI's data commands (put, get, status, bench) share: the flags that say where the
// system is (--admin, or --db/--cache lists; $ONCEKV_ADMIN; else the `oncekv dev` admin), the
// exit codes and one-line errors on stderr.
import { InvalidArgumentError, type Command } from 'commander'
import { readFileSync } from 'node:fs'
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
  return {
    admin,
    dbs: flags.db,
    caches: flags.cache,
    timeoutMs: flags.timeout,
    ...(token !== undefined ? { token } : {}),
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
  fail(command, message, code)
}

/** writeOut writes bytes to stdout and resolves once they are handed to the OS. */
export function writeOut(bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())),
  )
}
