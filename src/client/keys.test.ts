// The client's key checks match the server's rules (src/protocol/keys.ts) and add the keys no
// URL path can carry.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { KEY_BYTES_MAX as SERVER_KEY_BYTES_MAX, keyBytes } from '../protocol/keys.ts'
import { InvalidKeyError } from './errors.ts'
import { checkKey, KEY_BYTES_MAX, keyPath } from './keys.ts'

describe('client key checks', () => {
  it('agree with the server on valid and invalid keys', () => {
    assert.equal(KEY_BYTES_MAX, SERVER_KEY_BYTES_MAX)
    const keys = [
      'a',
      'x'.repeat(1024),
      'x'.repeat(1025),
      'é'.repeat(512),
      'é'.repeat(513),
      '🙂'.repeat(256),
      '🙂'.repeat(257),
      '\ud800',
      'a\udc00b',
      '',
      'with/slash and space',
    ]
    for (const key of keys) {
      let server = true
      try {
        keyBytes(key)
      } catch {
        server = false
      }
      let client = true
      try {
        checkKey(key)
      } catch (e) {
        assert.ok(e instanceof InvalidKeyError)
        client = false
      }
      assert.equal(client, server, `${JSON.stringify(key.slice(0, 20))} (${key.length})`)
    }
  })

  it('refuses the keys a URL path cannot carry', () => {
    assert.throws(() => checkKey('.'), InvalidKeyError)
    assert.throws(() => checkKey('..'), InvalidKeyError)
    checkKey('...')
    assert.equal(keyPath('a/b c?%#'), '/keys/a%2Fb%20c%3F%25%23')
  })
})
