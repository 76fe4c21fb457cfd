// What the CLI's data commands (put, get, status, bench) share: the flags that say where the
// system is (--admin, or --db/--cache lists; $ONCEKV_ADMIN; else the `oncekv dev` admin), the
// exit codes and one-line errors on stderr.
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
export function clientOptions(flags: ClientFlags, command: string): OnceKVOptions {
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
  return { admin, dbs: flags.db, caches: flags.cache, timeoutMs: flags.timeout }
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
export function failWith(command: string, e: unknown): never {
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
