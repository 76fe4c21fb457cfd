// Tokens and the cluster secret: where they come from (a file named by a flag, else an
// environment variable), how they are compared (in constant time, over digests, so neither
// the contents nor the length leak through timing), and how requests carry them
// (`Authorization: Bearer <token>`). A secret is never logged: errors name the file or the
// variable, never the value.
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** SecretName names one of the secrets a process may hold. */
export type SecretName = 'write' | 'read' | 'admin' | 'cluster'

/** SECRET_SOURCES are each secret's environment variable and file flag. */
export const SECRET_SOURCES: Readonly<Record<SecretName, { env: string; flag: string }>> = {
  write: { env: 'ONCEKV_WRITE_TOKEN', flag: '--write-token-file' },
  read: { env: 'ONCEKV_READ_TOKEN', flag: '--read-token-file' },
  admin: { env: 'ONCEKV_ADMIN_TOKEN', flag: '--admin-token-file' },
  cluster: { env: 'ONCEKV_CLUSTER_SECRET', flag: '--cluster-secret-file' },
}

/** SECRET_MIN_BYTES is the shortest secret taken: shorter ones are guessable. */
export const SECRET_MIN_BYTES = 16

/** SecretError is a secret that cannot be used: an unreadable or empty file, a short value. */
export class SecretError extends Error {}

/** Secret is one secret, held so that printing it by mistake shows no value. */
export class Secret {
  readonly #value: Buffer
  readonly #digest: Buffer
  /** source says where it came from ("$ONCEKV_WRITE_TOKEN", "file /etc/oncekv/write"). */
  readonly source: string

  constructor(value: string, source: string) {
    if (Buffer.byteLength(value) < SECRET_MIN_BYTES)
      throw new SecretError(
        `the secret from ${source} is shorter than ${SECRET_MIN_BYTES} bytes (generate one with: openssl rand -hex 32)`,
      )
    if (/[\s]/.test(value))
      throw new SecretError(`the secret from ${source} has white space inside it`)
    this.#value = Buffer.from(value)
    this.#digest = digest(this.#value)
    this.source = source
  }

  /** matches says in constant time whether given is this secret. */
  matches(given: string | Buffer | undefined): boolean {
    if (given === undefined) return false
    return timingSafeEqual(
      digest(typeof given === 'string' ? Buffer.from(given) : given),
      this.#digest,
    )
  }

  /** reveal is the value, for the places that must send it (a Bearer header, an HMAC key). */
  reveal(): string {
    return this.#value.toString()
  }

  /** bearer is the value of an Authorization header that carries this secret. */
  bearer(): string {
    return `Bearer ${this.#value.toString()}`
  }

  toString(): string {
    return `[secret from ${this.source}]`
  }

  toJSON(): string {
    return this.toString()
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

function digest(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest()
}

/** loadSecret reads one secret: from the file when one is named (surrounding white space,
 * such as a final newline, dropped), else from the environment variable, else undefined. */
export function loadSecret(
  name: SecretName,
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Secret | undefined {
  const { env: variable, flag } = SECRET_SOURCES[name]
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      throw new SecretError(
        `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      )
    }
    const value = text.trim()
    if (value === '') throw new SecretError(`${flag} ${file}: the file is empty`)
    return new Secret(value, `file ${file}`)
  }
  const value = env[variable]?.trim()
  if (value === undefined || value === '') return undefined
  return new Secret(value, `$${variable}`)
}

/** bearerToken is the token of an `Authorization: Bearer <token>` header, else undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header)
  return m?.[1]
}
