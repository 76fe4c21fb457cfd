// The CLI's repeatable URL flags: one URL or a comma-separated list per value, appended.
import assert from 'node:assert/strict'
import { InvalidArgumentError } from 'commander'
import { describe, it } from 'node:test'
import {
  BATCH_WAIT_MS_LIMIT,
  batchWaitOption,
  keyBytesOption,
  oneUrlOption,
  SNAPSHOT_CHUNK_BYTES_LIMIT,
  snapshotChunkBytesOption,
  urlListOption,
  urlOption,
  VALUE_BYTES_LIMIT,
  valueBytesOption,
} from './options.ts'

describe('urlListOption', () => {
  it('takes one URL or a comma-separated list, and appends to the values before it', () => {
    assert.deepEqual(urlListOption('http://127.0.0.1:11000/', undefined), [
      'http://127.0.0.1:11000',
    ])
    assert.deepEqual(urlListOption('127.0.0.1:11001, http://127.0.0.1:11002', ['http://a:1']), [
      'http://a:1',
      'http://127.0.0.1:11001',
      'http://127.0.0.1:11002',
    ])
  })

  it('refuses an empty item or a value that is not a URL', () => {
    for (const bad of [
      '',
      'http://127.0.0.1:11000,',
      ',http://127.0.0.1:11000',
      'not a url',
      'notaurl',
      '127.0.0.1',
      'ftp://127.0.0.1:11000',
      'http://127.0.0.1:11000/path',
    ])
      assert.throws(() => urlListOption(bad, undefined), InvalidArgumentError, bad)
  })
})

describe('urlOption and oneUrlOption', () => {
  it('take an http(s) base URL, or host:port with http:// added', () => {
    assert.deepEqual(urlOption('127.0.0.1:5546', undefined), ['http://127.0.0.1:5546'])
    assert.deepEqual(urlOption('localhost:5546/', ['http://a:1']), [
      'http://a:1',
      'http://localhost:5546',
    ])
    assert.equal(oneUrlOption('https://admin.example'), 'https://admin.example')
    assert.equal(oneUrlOption('http://[::1]:5546/'), 'http://[::1]:5546')
    assert.equal(oneUrlOption('[::1]:5546'), 'http://[::1]:5546')
  })

  it('refuse a bare word, another scheme, a path, credentials or a bad port', () => {
    for (const bad of [
      'notaurl',
      'admin.example',
      '',
      'ftp://x',
      'http://127.0.0.1:5546/admin',
      'http://u:p@127.0.0.1:5546',
      'http://127.0.0.1:99999',
      '127.0.0.1:port',
      'http:/127.0.0.1:5546',
    ])
      assert.throws(() => oneUrlOption(bad), /is not a node URL/, bad)
  })
})

describe('valueBytesOption', () => {
  it('takes 1 byte up to 16 MiB, so a value always fits a peer frame', () => {
    assert.equal(valueBytesOption('1'), 1)
    assert.equal(valueBytesOption(String(VALUE_BYTES_LIMIT)), VALUE_BYTES_LIMIT)
    for (const bad of ['0', '-1', '1.5', 'x', String(VALUE_BYTES_LIMIT + 1), '80000000'])
      assert.throws(() => valueBytesOption(bad), InvalidArgumentError, bad)
  })
})

describe('snapshotChunkBytesOption', () => {
  it('takes 1 byte up to 16 MiB', () => {
    assert.equal(snapshotChunkBytesOption('1'), 1)
    assert.equal(snapshotChunkBytesOption('524288'), 512 * 1024)
    assert.equal(
      snapshotChunkBytesOption(String(SNAPSHOT_CHUNK_BYTES_LIMIT)),
      SNAPSHOT_CHUNK_BYTES_LIMIT,
    )
    for (const bad of ['0', '-1', '2.5', 'x', String(SNAPSHOT_CHUNK_BYTES_LIMIT + 1)])
      assert.throws(() => snapshotChunkBytesOption(bad), InvalidArgumentError, bad)
  })
})

describe('keyBytesOption', () => {
  it('takes 1 byte up to the 1024 bytes every process and the client allow', () => {
    assert.equal(keyBytesOption('1'), 1)
    assert.equal(keyBytesOption('1024'), 1024)
    for (const bad of ['0', '-1', '1.5', 'x', '1025'])
      assert.throws(() => keyBytesOption(bad), InvalidArgumentError, bad)
  })
})

describe('batchWaitOption', () => {
  it('takes 0 (no group commit) up to 1000 ms', () => {
    assert.equal(batchWaitOption('0'), 0)
    assert.equal(batchWaitOption('4'), 4)
    assert.equal(batchWaitOption(String(BATCH_WAIT_MS_LIMIT)), 1000)
    for (const bad of ['-1', '1.5', 'x', '1001', '3000000000'])
      assert.throws(() => batchWaitOption(bad), InvalidArgumentError, bad)
  })
})
