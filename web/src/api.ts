// The dashboard's two actions, through the admin (same origin): a key lookup and a
// create-once put. Each resolves to the answer or to an error the page can show (an error
// body from the admin, another status, or a network failure); neither throws.
import {
  isErrorBody,
  type AdminInfo,
  type AdminPutResponse,
  type LookupResponse,
} from './protocol.ts'

/** ApiError is a failed call: status 0 for a network failure. */
export interface ApiError {
  readonly ok: false
  readonly status: number
  readonly code: number | null
  readonly error: string
  readonly message: string
}

/** ApiResult is an answer or an error. */
export type ApiResult<T> = { readonly ok: true; readonly body: T } | ApiError

/** KEY_BYTES_MAX is the longest key the database accepts (UTF-8 bytes). */
export const KEY_BYTES_MAX = 1024

/** keyProblem says what is wrong with a key before it is sent; undefined when nothing is. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'Enter a key.'
  const n = new TextEncoder().encode(key).byteLength
  if (n > KEY_BYTES_MAX) return `The key is ${n} bytes long; keys are at most ${KEY_BYTES_MAX}.`
  return undefined
}

/** TOKEN_KEY is where the page keeps the admin token for this tab (sessionStorage: it goes
 * when the tab closes). */
const TOKEN_KEY = 'oncekv-admin-token'

/** storedToken is the admin token this tab logged in with, if any. */
export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

/** forgetToken drops the stored token (the admin refused it). */
export function forgetToken(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY)
  } catch {
    // Storage is off: nothing was kept.
  }
}

async function call<T>(path: string, init?: RequestInit): Promise<ApiResult<T>> {
  let res: Response
  const token = storedToken()
  try {
    res = await fetch(new URL(path, window.location.href), {
      ...init,
      headers: {
        accept: 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...init?.headers,
      },
    })
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    return { ok: false, status: 0, code: null, error: 'network', message: `No answer: ${message}` }
  }
  let body: unknown
  try {
    body = await res.json()
  } catch {
    body = undefined
  }
  if (res.ok && body !== undefined) return { ok: true, body: body as T }
  if (isErrorBody(body))
    return {
      ok: false,
      status: res.status,
      code: body.code,
      error: body.error,
      message: body.message,
    }
  return {
    ok: false,
    status: res.status,
    code: null,
    error: 'http',
    message: `The admin answered ${res.status} ${res.statusText}`.trim(),
  }
}

/** info is what the admin says of itself: the put's value limit, its --db URLs, who started
 * it. A 403 says why this page may not use the admin (its host name or origin). */
export function info(): Promise<ApiResult<AdminInfo>> {
  return call<AdminInfo>('api/info')
}

/** login proves the admin token to the admin, which answers with a session cookie (the
 * WebSockets take it: a browser cannot give them a header); on success the token is kept
 * for this tab and sent on the API calls. */
export async function login(token: string): Promise<ApiResult<{ code: number }>> {
  const r = await call<{ code: number }>('api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  })
  if (r.ok) {
    try {
      sessionStorage.setItem(TOKEN_KEY, token)
    } catch {
      // Storage is off: the cookie still holds the session.
    }
  }
  return r
}

/** valueProblem says what is wrong with a value before it is sent (undefined when nothing). */
export function valueProblem(value: string, maxBytes: number): string | undefined {
  const n = new TextEncoder().encode(value).byteLength
  if (n <= maxBytes) return undefined
  return `The value is ${bytesText(n)}; the database takes values up to ${bytesText(maxBytes)}.`
}

function bytesText(n: number): string {
  if (n >= 1024 * 1024) return `${Math.round((n / 1024 / 1024) * 10) / 10} MiB (${n} bytes)`
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB (${n} bytes)`
  return `${n} bytes`
}

/** lookup reads a key through the cache tier; found is false (not an error) when it is absent. */
export function lookup(key: string): Promise<ApiResult<LookupResponse>> {
  return call<LookupResponse>(`api/lookup/${encodeURIComponent(key)}`)
}

/** put writes a key once: created, exists (same value: a success) or conflict (it stays). */
export function put(key: string, value: string): Promise<ApiResult<AdminPutResponse>> {
  return call<AdminPutResponse>('api/put', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, value }),
  })
}
