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
