// KeyEtags: a database member's memory of its keys' ETags gives the ETag of the value, keeps
// a working set of up to perGeneration keys whatever the order they are read in, stays within
// two generations, and leaves long keys out.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { etagOf, KeyEtags } from './values.ts'

const value = (i: number): Uint8Array => Buffer.from(`value ${i}`)

describe('KeyEtags', () => {
  it("gives each key its value's ETag", () => {
    const etags = new KeyEtags(4)
    for (let i = 0; i < 10; i++)
      assert.equal(etags.etagOf(`k${i}`, value(i)), etagOf(value(i), false))
  })

  it('remembers a working set of up to perGeneration keys, read in a cycle', () => {
    const per = 100
    const etags = new KeyEtags(per)
    for (let i = 0; i < per; i++) etags.etagOf(`k${i}`, value(i))
    // A key's value never changes: a remembered key is answered without looking at the
    // bytes, which shows here as the first ETag coming back for other bytes.
    for (let round = 0; round < 5; round++)
      for (let i = 0; i < per; i++)
        assert.equal(
          etags.etagOf(`k${i}`, value(-1)),
          etagOf(value(i), false),
          `k${i}, round ${round}`,
        )
  })

  it('does not remember keys over 160 characters', () => {
    const etags = new KeyEtags(10)
    const long = 'k'.repeat(161)
    assert.equal(etags.etagOf(long, value(1)), etagOf(value(1), false))
    assert.equal(etags.size, 0)
    assert.equal(etags.etagOf(long, value(2)), etagOf(value(2), false))
    etags.etagOf('k'.repeat(160), value(3))
    assert.equal(etags.size, 1)
  })

  it('forgets the oldest keys and stays within two generations', () => {
    const per = 50
    const etags = new KeyEtags(per)
    for (let i = 0; i < 10 * per; i++) {
      etags.etagOf(`k${i}`, value(i))
      assert.ok(etags.size <= 2 * per, `size ${etags.size} after ${i + 1} keys`)
    }
    // k0 went two generations ago: its ETag is computed again from the bytes given.
    assert.equal(etags.etagOf('k0', value(-1)), etagOf(value(-1), false))
    // The newest key is still remembered.
    assert.equal(etags.etagOf(`k${10 * per - 1}`, value(-1)), etagOf(value(10 * per - 1), false))
  })
})
