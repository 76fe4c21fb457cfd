// Who may call what, on every oncekv HTTP listener. Routes fall in four classes: open
// (health), read (values, /cluster, /stats, /metrics), write (puts) and admin (membership,
// the admin's API and WebSockets, a cache's /meta). A class is protected when its token is
// set (admin: the admin token or the cluster secret); a protected class takes its own token
// or any stronger one, and the cluster secret. No token is a 401 with `WWW-Authenticate:
// Bearer`, a token the class does not take a 403; both are JSON error bodies, and neither
// says anything of the secrets but where the right one is set.
import { createHmac } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { onRequestHookHandler } from 'fastify'
import { ForbiddenError, UnauthorizedError, type OnceKvError } from '../protocol/index.ts'
import { bearerToken, Secret, type Security, type SecretName } from '../security/index.ts'
import { sendError } from './errors.ts'

/** RouteClass is the access class of a route. */
export type RouteClass = 'open' | 'read' | 'write' | 'admin'

/** GuardedClass is a class a token may protect. */
export type GuardedClass = Exclude<RouteClass, 'open'>

/** ACCEPTED are the secrets each class takes once it is protected. */
const ACCEPTED: Readonly<Record<GuardedClass, readonly SecretName[]>> = {
  read: ['read', 'write', 'admin', 'cluster'],
  write: ['write', 'admin', 'cluster'],
  admin: ['admin', 'cluster'],
}

/** GUARDS are the secrets whose presence protects each class. */
const GUARDS: Readonly<Record<GuardedClass, readonly SecretName[]>> = {
  read: ['read'],
  write: ['write'],
  admin: ['admin', 'cluster'],
}

/** NEEDS names what each class takes, for the error messages. */
const NEEDS: Readonly<Record<GuardedClass, string>> = {
  read: 'the read token (ONCEKV_READ_TOKEN), the write or admin token, or the cluster secret',
  write: 'the write token (ONCEKV_WRITE_TOKEN), the admin token or the cluster secret',
  admin: 'the admin token (ONCEKV_ADMIN_TOKEN) or the cluster secret',
}

/** SESSION_COOKIE is the admin's session cookie, set by POST /api/login. */
export const SESSION_COOKIE = 'oncekv_session'

/** sessionValue is the session cookie value that a secret's holder gets: an HMAC keyed by the
 * secret, so the cookie proves knowledge of it without being it, and changes with it. */
export function sessionValue(secret: Secret): string {
  return createHmac('sha256', secret.reveal()).update('oncekv admin session v1').digest('base64url')
}

/** cookieValue is the value of cookie name in a Cookie header, else undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** AuthOptions configure an Auth. */
export interface AuthOptions {
  /** sessions: the admin's session cookie is taken along with Bearer tokens. */
  readonly sessions?: boolean
}

/** Auth checks requests against a process's tokens and cluster secret. */
export class Auth {
  /** on is true when some class is protected. */
  readonly on: boolean
  private readonly secrets: Partial<Record<SecretName, Secret>>
  private readonly guarded: Readonly<Record<GuardedClass, boolean>>
  // Session cookie values, held as Secrets so that they compare in constant time.
  private readonly sessions: readonly Secret[]

  constructor(security: Security = {}, opts: AuthOptions = {}) {
    this.secrets = {
      ...(security.read ? { read: security.read } : {}),
      ...(security.write ? { write: security.write } : {}),
      ...(security.admin ? { admin: security.admin } : {}),
      ...(security.cluster ? { cluster: security.cluster } : {}),
    }
    const guarded = (c: GuardedClass): boolean => GUARDS[c].some((n) => this.secrets[n])
    this.guarded = { read: guarded('read'), write: guarded('write'), admin: guarded('admin') }
    this.on = this.guarded.read || this.guarded.write || this.guarded.admin
    this.sessions = opts.sessions
      ? ACCEPTED.admin.flatMap((n) => {
          const s = this.secrets[n]
          return s ? [new Secret(sessionValue(s), `session of ${s.source}`)] : []
        })
      : []
  }

  /** protects says whether cls needs a token. */
  protects(cls: RouteClass): boolean {
    return cls !== 'open' && this.guarded[cls]
  }

  /** takes says whether token is one that cls takes (it must be protected). */
  takes(cls: GuardedClass, token: string | undefined): boolean {
    if (token === undefined) return false
    // Every candidate is compared, so the time taken does not say which one matched.
    let ok = false
    for (const n of ACCEPTED[cls]) if (this.secrets[n]?.matches(token)) ok = true
    return ok
  }

  /** problem is why a request with these headers may not use a route of class cls, or
   * undefined when it may. */
  problem(cls: RouteClass, headers: IncomingHttpHeaders): OnceKvError | undefined {
    if (cls === 'open' || !this.guarded[cls]) return undefined
    const token = bearerToken(headers.authorization)
    if (token !== undefined) {
      if (this.takes(cls, token)) return undefined
      return new ForbiddenError(
        `the token sent is not one this route takes: it takes ${NEEDS[cls]}`,
      )
    }
    if (this.sessions.length > 0) {
      const session = cookieValue(headers.cookie, SESSION_COOKIE)
      if (session !== undefined) {
        let ok = false
        for (const s of this.sessions) if (s.matches(session)) ok = true
        if (ok) return undefined
        return new ForbiddenError(
          'the session is not valid (the admin token changed?): log in again',
        )
      }
    }
    if (headers.authorization !== undefined)
      return new UnauthorizedError(
        `the Authorization header is not "Bearer <token>"; this route takes ${NEEDS[cls]}`,
      )
    return new UnauthorizedError(
      `this route needs a token: send "Authorization: Bearer <token>" with ${NEEDS[cls]}`,
    )
  }

  /** allows is problem's yes or no, for the fast paths (which leave a refusal to the route). */
  allows(cls: RouteClass, headers: IncomingHttpHeaders): boolean {
    if (cls === 'open' || !this.guarded[cls]) return true
    return this.takes(cls, bearerToken(headers.authorization))
  }

  /** login is the session cookie value for token when it is the admin token or the cluster
   * secret, else undefined. */
  login(token: string): string | undefined {
    for (const n of ACCEPTED.admin) {
      const s = this.secrets[n]
      if (s?.matches(token)) return sessionValue(s)
    }
    return undefined
  }

  /** hook is a Fastify onRequest hook that answers 401/403 for routes classify says need a
   * token the request does not carry. classify sees the method and the matched route's
   * pattern (undefined when no route matched), never the raw URL, so that escapes in the path
   * cannot dress one route as another. */
  hook(classify: (method: string, route: string | undefined) => RouteClass): onRequestHookHandler {
    return (req, reply, done) => {
      const err = this.problem(classify(req.method, req.routeOptions.url), req.headers)
      if (!err) return done()
      void sendError(reply, err)
    }
  }
}

/** authHeaders are the headers a process sends to call a route of class cls on another
 * process: its cluster secret when it holds one, else the class's token, else a stronger
 * token; none when it holds nothing that class takes. */
export function authHeaders(
  security: Security | undefined,
  cls: GuardedClass,
): Record<string, string> {
  const secret = credentialFor(security, cls)
  return secret ? { authorization: secret.bearer() } : {}
}

/** credentialFor is the secret authHeaders sends. */
export function credentialFor(
  security: Security | undefined,
  cls: GuardedClass,
): Secret | undefined {
  if (!security) return undefined
  if (security.cluster) return security.cluster
  const order: readonly SecretName[] = [...ACCEPTED[cls]].filter((n) => n !== 'cluster')
  for (const n of order) {
    const s = security[n as Exclude<SecretName, 'cluster'>]
    if (s) return s
  }
  return undefined
}
