import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { describe, it } from 'node:test'
import {
  bearerToken,
  loadSecret,
  loadSecurity,
  loadTls,
  Secret,
  SecretError,
  TlsConfigError,
} from './index.ts'

const dir = mkdtempSync(join(tmpdir(), 'oncekv-secrets-'))
const VALUE = 'a-long-enough-token-0123456789'

describe('secrets', () => {
  it('come from the file a flag names (final newline dropped), else the environment', () => {
    const file = join(dir, 'write')
    writeFileSync(file, `${VALUE}\n`)
    const fromFile = loadSecret('write', file, { ONCEKV_WRITE_TOKEN: 'another-token-0123456789' })
    assert.ok(fromFile?.matches(VALUE))
    assert.equal(fromFile?.source, `file ${file}`)
    const fromEnv = loadSecret('write', undefined, { ONCEKV_WRITE_TOKEN: VALUE })
    assert.ok(fromEnv?.matches(VALUE))
    assert.equal(fromEnv?.source, '$ONCEKV_WRITE_TOKEN')
    assert.equal(loadSecret('write', undefined, {}), undefined)
    assert.equal(loadSecret('write', undefined, { ONCEKV_WRITE_TOKEN: '  ' }), undefined)
  })

  it('refuse a missing or empty file, a short value and white space inside', () => {
    assert.throws(() => loadSecret('read', join(dir, 'nope'), {}), /--read-token-file .*ENOENT/)
    const empty = join(dir, 'empty')
    writeFileSync(empty, '\n')
    assert.throws(() => loadSecret('admin', empty, {}), /the file is empty/)
    assert.throws(
      () => loadSecret('cluster', undefined, { ONCEKV_CLUSTER_SECRET: 'short' }),
      (e: Error) => e instanceof SecretError && /shorter than 16 bytes/.test(e.message),
    )
    assert.throws(() => new Secret('0123456789 abcdefghij', 'test'), /white space/)
  })

  it('match only the exact value, whatever its length, and never print it', () => {
    const s = new Secret(VALUE, 'test')
    assert.ok(s.matches(VALUE))
    assert.ok(s.matches(Buffer.from(VALUE)))
    assert.ok(!s.matches(`${VALUE}x`))
    assert.ok(!s.matches(VALUE.slice(0, -1)))
    assert.ok(!s.matches(''))
    assert.ok(!s.matches(undefined))
    for (const shown of [String(s), JSON.stringify({ s }), inspect(s), `${s}`])
      assert.ok(!shown.includes(VALUE), shown)
    assert.equal(s.bearer(), `Bearer ${VALUE}`)
  })

  it('travel as Authorization: Bearer <token>', () => {
    assert.equal(bearerToken(`Bearer ${VALUE}`), VALUE)
    assert.equal(bearerToken(`bearer   ${VALUE} `), VALUE)
    assert.equal(bearerToken(`Basic ${VALUE}`), undefined)
    assert.equal(bearerToken('Bearer'), undefined)
    assert.equal(bearerToken(undefined), undefined)
    assert.equal(bearerToken(['Bearer a', 'Bearer b']), undefined)
  })
})

describe('TLS flags', () => {
  const pem = join(dir, 'x.pem')
  writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  const notPem = join(dir, 'x.txt')
  writeFileSync(notPem, 'hello')

  it('are off when none is given, and load the files they name', () => {
    assert.equal(loadTls({}), undefined)
    const tls = loadTls({ tlsCert: pem, tlsKey: pem, tlsCa: pem })
    assert.ok(tls?.cert && tls.key && tls.ca)
    assert.equal(tls.peerMtls, false)
    assert.ok(loadTls({ tlsCa: pem })?.ca, 'a CA alone: a process that only connects over TLS')
  })

  it('refuse sets that cannot work, naming the flag', () => {
    const refused = (flags: Parameters<typeof loadTls>[0], re: RegExp): void =>
      assert.throws(
        () => loadTls(flags),
        (e: Error) => e instanceof TlsConfigError && re.test(e.message),
      )
    refused({ tlsCert: pem }, /--tls-cert and --tls-key go together/)
    refused({ tlsCert: pem, tlsKey: pem, peerMtls: true }, /--peer-mtls needs/)
    refused({ tlsCert: notPem, tlsKey: pem }, /--tls-cert .*not a PEM file/)
    refused({ tlsCa: join(dir, 'missing.pem') }, /--tls-ca .*ENOENT/)
  })

  it('load with the secrets into one Security', () => {
    const sec = loadSecurity({ tlsCa: pem }, ['write', 'cluster'], {
      ONCEKV_WRITE_TOKEN: VALUE,
      ONCEKV_READ_TOKEN: VALUE,
    })
    assert.ok(sec.write?.matches(VALUE))
    assert.equal(sec.read, undefined, 'only the named secrets are loaded')
    assert.equal(sec.cluster, undefined)
    assert.ok(sec.tls?.ca)
  })
})
