import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { advertisedUrl, isUnspecifiedUrl } from './advertise.ts'

describe('advertised URLs', () => {
  it('default to http:// and the listen address', () => {
    assert.equal(advertisedUrl('127.0.0.1:5551'), 'http://127.0.0.1:5551')
    assert.equal(advertisedUrl('[::1]:5551'), 'http://[::1]:5551')
  })

  it('take the URL given instead, without a trailing slash', () => {
    assert.equal(
      advertisedUrl('0.0.0.0:5551', 'https://cache1.example.com:443/'),
      'https://cache1.example.com:443',
    )
  })

  it('tell the unspecified address in every spelling', () => {
    for (const url of [
      'http://0.0.0.0:5551',
      'http://0:5551',
      'https://0.0.0.0',
      'http://[::]:5551',
      'http://[0:0:0:0:0:0:0:0]:5551',
      'http://[::0]:1',
    ])
      assert(isUnspecifiedUrl(url), url)
    for (const url of [
      'http://127.0.0.1:5551',
      'http://[::1]:5551',
      'http://10.0.0.0:5551',
      'http://cache1:5551',
      'not a url',
    ])
      assert(!isUnspecifiedUrl(url), url)
  })
})
