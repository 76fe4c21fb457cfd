import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SingleFlight } from './single-flight.ts'

describe('SingleFlight', () => {
  it('runs one call for concurrent callers of a key and shares its result', async () => {
    const sf = new SingleFlight<number>()
    let runs = 0
    let release!: (v: number) => void
    const gate = new Promise<number>((r) => (release = r))
    const calls = Array.from({ length: 50 }, () =>
      sf.do('k', () => {
        runs++
        return gate
      }),
    )
    assert.equal(calls.filter((c) => !c.joined).length, 1)
    assert.equal(sf.size, 1)
    release(7)
    assert.deepEqual(await Promise.all(calls.map((c) => c.promise)), Array(50).fill(7))
    assert.equal(runs, 1)
    assert.equal(sf.size, 0)
  })

  it('shares a failure, then runs again on the next call', async () => {
    const sf = new SingleFlight<string>()
    let runs = 0
    const fail = (): Promise<string> => {
      runs++
      return Promise.reject(new Error('down'))
    }
    const a = sf.do('k', fail)
    const b = sf.do('k', fail)
    await assert.rejects(a.promise, /down/)
    await assert.rejects(b.promise, /down/)
    assert.equal(runs, 1)
    const c = sf.do('k', async () => 'ok')
    assert.equal(c.joined, false)
    assert.equal(await c.promise, 'ok')
  })

  it('keeps keys apart', async () => {
    const sf = new SingleFlight<string>()
    const a = sf.do('a', async () => 'A')
    const b = sf.do('b', async () => 'B')
    assert.equal(b.joined, false)
    assert.deepEqual(await Promise.all([a.promise, b.promise]), ['A', 'B'])
  })
})
