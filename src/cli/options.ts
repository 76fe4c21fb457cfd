// Option parsers shared by the CLI's commands.
import { InvalidArgumentError, type Command } from 'commander'
import type { Logger } from 'pino'
import {
  HTTP_LIMITS_DEFAULT,
  LIMIT_FLAGS,
  type HttpLimits,
  type LimitFlags,
} from '../http/limits.ts'
import { isBaseUrl, KEY_BYTES_MAX } from '../protocol/index.ts'
import {
  addSecretOptions,
  addTlsOptions,
  loadSecurity,
  SecretError,
  TlsConfigError,
  type SecretName,
  type Security,
  type SecurityFlags,
} from '../security/index.ts'

/** intOption parses a non-negative integer flag value. */
export function intOption(value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`${value} is not a non-negative integer`)
  return n
}

/** BATCH_WAIT_MS_LIMIT is the longest --batch-wait-ms: the wait is for writers that are
 * answered to write again, a matter of milliseconds. */
export const BATCH_WAIT_MS_LIMIT = 1000

/** batchWaitOption parses --batch-wait-ms: 0 (no grouping) .. BATCH_WAIT_MS_LIMIT. */
export function batchWaitOption(value: string): number {
  const n = intOption(value)
  if (n > BATCH_WAIT_MS_LIMIT)
    throw new InvalidArgumentError(`${value} is over the limit of ${BATCH_WAIT_MS_LIMIT} ms`)
  return n
}

/** VALUE_BYTES_LIMIT is the largest --max-value-bytes a member takes: a value travels to the
 * followers in one peer frame (64 MiB at most) with other entries, so it must stay well
 * below that. */
export const VALUE_BYTES_LIMIT = 16 * 1024 * 1024

/** bytesOption parses a size flag of 1 byte .. limit; what names it in the error. */
function bytesOption(value: string, limit: number, what: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1 || n > limit)
    throw new InvalidArgumentError(
      `${value} is not a ${what} from 1 to ${limit} bytes (${limit / 1024 / 1024} MiB)`,
    )
  return n
}

/** keyBytesOption parses --max-key-bytes: 1 byte .. 1024 (the protocol's bound on keys). */
export function keyBytesOption(value: string): number {
  return bytesOption(value, KEY_BYTES_MAX, 'key size')
}

/** valueBytesOption parses --max-value-bytes: 1 byte .. VALUE_BYTES_LIMIT. */
export function valueBytesOption(value: string): number {
  return bytesOption(value, VALUE_BYTES_LIMIT, 'value size')
}

/** SNAPSHOT_CHUNK_BYTES_LIMIT is the largest --snapshot-chunk-bytes: a chunk travels in one
 * peer frame (64 MiB at most), and one value larger than the chunk size makes a chunk of its
 * own, so chunks stay well below the frame bound. */
export const SNAPSHOT_CHUNK_BYTES_LIMIT = 16 * 1024 * 1024

/** snapshotChunkBytesOption parses --snapshot-chunk-bytes: 1 byte .. 16 MiB. */
export function snapshotChunkBytesOption(value: string): number {
  return bytesOption(value, SNAPSHOT_CHUNK_BYTES_LIMIT, 'chunk size')
}

/** urlOption parses one URL of a repeatable or variadic URL flag and appends it to the
 * values before it: an http(s):// base URL, or "host:port", which gets http:// (a bare word
 * without a port, like a misplaced argument, is no URL). */
export function urlOption(value: string, previous: string[] | undefined): string[] {
  const schemed = /^[a-z]+:\/\//i.test(value)
  const url = schemed ? value : `http://${value}`
  const trimmed = url.replace(/\/$/, '')
  if (!isBaseUrl(trimmed) || (!schemed && !/:\d+\/?$/.test(value)))
    throw new InvalidArgumentError(
      `${value} is not a node URL like http://127.0.0.1:11000 (or host:port)`,
    )
  return [...(previous ?? []), trimmed]
}

/** oneUrlOption parses the URL of a single-valued URL flag (as urlOption does). */
export function oneUrlOption(value: string): string {
  return urlOption(value, undefined)[0] as string
}

/** urlListOption parses one value of a repeatable URL flag: one URL, or a comma-separated
 * list of them (`--db URL --db URL`, `--db URL,URL`), appended to the values before it. A
 * repeatable flag takes exactly one value each time, so arguments after it stay positional. */
export function urlListOption(value: string, previous: string[] | undefined): string[] {
  const parts = value.split(',').map((p) => p.trim())
  if (parts.some((p) => p === ''))
    throw new InvalidArgumentError(`${JSON.stringify(value)} has an empty URL in its list`)
  return parts.reduce<string[]>((all, p) => urlOption(p, all), [...(previous ?? [])])
}

/** runUntilSignal shuts a process down cleanly on SIGTERM or SIGINT, then exits. */
export function runUntilSignal(name: string, log: Logger, shutdown: () => Promise<void>): void {
  const stop = (signal: string): void => {
    log.info({ event: 'signal', signal }, 'shutting down')
    shutdown().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(`oncekv ${name}: shutdown failed: ${(e as Error).message}`)
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

/** originOption parses one page origin ("https://host[:port]"); a wildcard or "null" (which
 * every sandboxed page sends) is refused. */
export function originOption(value: string, previous: string[] | undefined): string[] {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.origin !== value.replace(/\/$/, '')
  )
    throw new InvalidArgumentError(
      `${value} is not an origin like https://ops.example.com (no wildcard, no "null", no path)`,
    )
  return [...(previous ?? []), url.origin]
}

/** securityOption loads a server command's tokens, cluster secret and TLS files; a flag set
 * that cannot work (an unreadable file, a short secret, a certificate without its key) ends
 * the process with exit code 2 and the reason. */
export function securityOption(
  program: Command,
  command: string,
  flags: SecurityFlags,
  names: readonly SecretName[],
): Security {
  try {
    return loadSecurity(flags, names)
  } catch (e) {
    if (e instanceof SecretError || e instanceof TlsConfigError)
      program.error(`oncekv ${command}: ${e.message}`, { exitCode: 2 })
    throw e
  }
}

/** addInsecureOption adds --insecure, which lets a server listen beyond loopback unprotected. */
export function addInsecureOption(cmd: Command): Command {
  return cmd.option(
    '--insecure',
    'serve on a non-loopback address with neither an admin token nor a cluster secret (anyone who reaches it may change the cluster)',
  )
}

/** isLoopback says whether host (of a listen address) is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/** hostOf is the host of a listen address ("host:port", "[v6]:port"). */
function hostOf(listen: string): string {
  return /^\[?([^\]]*?)\]?:\d+$/.exec(listen)?.[1] ?? listen
}

/**
 * protectedMode ends the process (exit 2) when a server would serve beyond loopback
 * unprotected, unless --insecure was given: an HTTP listener with neither an admin token nor
 * a cluster secret (its membership and admin routes would be open to anyone who reaches it),
 * or a peer listener (the Raft transport, the cache peer protocol) without the cluster
 * secret (anyone could send Raft messages, or read every cached value).
 */
export function protectedMode(
  program: Command,
  command: string,
  http: readonly [flag: string, listen: string],
  peer: readonly [flag: string, listen: string] | undefined,
  security: Security,
  insecure: boolean | undefined,
): void {
  if (insecure) return
  const how =
    'set ONCEKV_CLUSTER_SECRET or --cluster-secret-file, or give --insecure to run it open'
  if (!security.admin && !security.cluster && !isLoopback(hostOf(http[1])))
    program.error(
      `oncekv ${command}: ${http[0]} ${http[1]} is not a loopback address and no admin token or ` +
        `cluster secret is set, so anyone who reaches it could change the cluster: set ` +
        `ONCEKV_ADMIN_TOKEN or --admin-token-file (or ONCEKV_CLUSTER_SECRET or ` +
        `--cluster-secret-file), or give --insecure to run it open`,
      { exitCode: 2 },
    )
  if (peer && !security.cluster && !isLoopback(hostOf(peer[1])))
    program.error(
      `oncekv ${command}: ${peer[0]} ${peer[1]} is not a loopback address and no cluster ` +
        `secret is set, so anyone who reaches it could talk to the cluster as a peer: ${how}`,
      { exitCode: 2 },
    )
}

/** addLimitOptions adds the listener limit flags (src/http/limits.ts) that db, cache and
 * admin share; each applies to every HTTP listener of the process. */
export function addLimitOptions(cmd: Command): Command {
  for (const { key, flag, help, min } of LIMIT_FLAGS) {
    const name = flag.replace(/^--/, '')
    cmd.option(
      `${flag} <n>`,
      `${help} (default ${HTTP_LIMITS_DEFAULT[key]})`,
      (value: string): number => {
        const n = Number(value)
        if (!Number.isSafeInteger(n) || n < min)
          throw new InvalidArgumentError(`${name} ${value} is not an integer of at least ${min}`)
        return n
      },
    )
  }
  return cmd
}

/** limitsOption picks the limit flags out of a command's parsed flags. */
export function limitsOption(flags: LimitFlags): Partial<HttpLimits> {
  const out: Partial<Record<keyof HttpLimits, number>> = {}
  for (const { key } of LIMIT_FLAGS) {
    const v = flags[key]
    if (typeof v === 'number') out[key] = v
  }
  return out
}

/** addServerOptions adds what every server command (db, cache, admin) takes to protect
 * itself: the file flags of the named secrets, --insecure, the listener limits and TLS (peers:
 * whether the process has peer listeners; see addTlsOptions). */
export function addServerOptions(
  cmd: Command,
  secrets: readonly SecretName[],
  peers = true,
): Command {
  addSecretOptions(cmd, secrets)
  addInsecureOption(cmd)
  addLimitOptions(cmd)
  return addTlsOptions(cmd, peers)
}

/** serverSecurity loads a server command's secrets and TLS files (exit 2 on a set that cannot
 * work), applies protected mode to its --http listener and its peer listener (db --raft,
 * cache --peer), and warns when puts would be open beyond loopback (no write token). */
export function serverSecurity(
  program: Command,
  command: string,
  flags: SecurityFlags & { http: string; insecure?: boolean },
  secrets: readonly SecretName[],
  peer?: readonly [flag: string, listen: string],
): Security {
  const security = securityOption(program, command, flags, secrets)
  protectedMode(program, command, ['--http', flags.http], peer, security, flags.insecure)
  if (
    secrets.includes('write') &&
    command === 'db' &&
    !security.write &&
    !isLoopback(hostOf(flags.http))
  )
    console.error(
      `oncekv ${command}: warning: puts are open to anyone who reaches --http ${flags.http} ` +
        `(no write token): set ONCEKV_WRITE_TOKEN or --write-token-file to protect them`,
    )
  return security
}
