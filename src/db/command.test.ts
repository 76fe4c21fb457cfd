import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodePut, encodePut } from './command.ts'

test('a put round-trips through its encoding', () => {
  const key = new TextEncoder().encode('kéy')
  const value = new Uint8Array([0, 1, 2, 255])
  const back = decodePut(encodePut({ key, value }))
  assert.deepEqual([...back.key], [...key])
  assert.deepEqual([...back.value], [...value])
})

test('an empty value round-trips', () => {
  const back = decodePut(encodePut({ key: new Uint8Array([65]), value: new Uint8Array() }))
  assert.equal(back.value.byteLength, 0)
})

test('a malformed put is refused', () => {
  assert.throws(() => decodePut(new Uint8Array([2, 0, 0, 0, 0])))
  assert.throws(() => decodePut(new Uint8Array([1, 0, 0, 0, 9, 65])))
})

test('a forwarded put carries its origin; a put of the leader has none', () => {
  const key = new TextEncoder().encode('k')
  const value = new Uint8Array([9, 8])
  const origin = new TextEncoder().encode('n2/abc/17')
  const back = decodePut(encodePut({ key, value, origin }))
  assert.deepEqual([...back.key], [...key])
  assert.deepEqual([...back.value], [...value])
  assert.deepEqual([...(back.origin ?? [])], [...origin])
  assert.equal(decodePut(encodePut({ key, value })).origin, undefined)
  assert.throws(() => encodePut({ key, value, origin: new Uint8Array(256) }))
  assert.throws(() => decodePut(new Uint8Array([2, 9, 1])))
})
