import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SeededRng } from './rng.ts'

test('the same seed gives the same sequence', () => {
  const a = new SeededRng(42)
  const b = new SeededRng(42)
  for (let i = 0; i < 100; i++) assert.equal(a.u32(), b.u32())
})

test('different seeds give different sequences', () => {
  const a = new SeededRng(1)
  const b = new SeededRng(2)
  const same = Array.from({ length: 20 }, () => a.u32() === b.u32()).filter(Boolean).length
  assert.ok(same < 2)
})

test('int stays in range and covers it', () => {
  const r = new SeededRng(7)
  const seen = new Set<number>()
  for (let i = 0; i < 1000; i++) {
    const v = r.int(10)
    assert.ok(v >= 0 && v < 10)
    seen.add(v)
  }
  assert.equal(seen.size, 10)
})
