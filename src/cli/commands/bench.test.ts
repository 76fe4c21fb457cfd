// The bench's phases fail fast: once the first calls (as many as run at once) all failed
// because nothing answered, a phase stops and aborts the calls in flight; other failures, or a
// single success among the first calls, let it run to the end.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TimeoutError, UnavailableError } from '../../client/index.ts'
import { failureLine, phase, type PhaseResult } from './bench.ts'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** untilAborted waits for signal, then rejects with its reason. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error)
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })
  })
}

describe('bench phase', () => {
  it('stops once its first c calls all failed because nothing answered', async () => {
    let started = 0
    const t = performance.now()
    const r = await phase(
      'put',
      1000,
      8,
      async () => {
        started++
        await sleep(20)
        throw new UnavailableError('put "k": 21 attempts failed; the last at http://x: refused')
      },
      { quiet: true },
    )
    assert.equal(r.stoppedAfter, 8)
    assert.equal(r.ops, 8)
    assert.equal(r.errors, 8)
    assert.equal(r.latencies.length, 8)
    assert.match(r.firstError ?? '', /^put "k": 21 attempts failed/)
    assert.ok(started <= 16, `${started} calls started`)
    assert.ok(performance.now() - t < 1_000, `took ${performance.now() - t} ms`)
  })

  it('aborts the calls in flight when it stops', async () => {
    const r = await phase(
      'get',
      100,
      4,
      async (i, signal) => {
        // The first four time out; the later ones would wait for good but for the signal.
        if (i < 4) throw new TimeoutError(`get "k${i}": no answer within\n5000 ms`)
        await untilAborted(signal)
      },
      { quiet: true },
    )
    assert.equal(r.stoppedAfter, 4)
    assert.equal(r.ops, 4)
    assert.equal(r.firstError, 'get "k0": no answer within 5000 ms')
  })

  it('runs to the end when one of the first calls succeeds, or the errors are of another kind', async () => {
    const someAnswer = await phase(
      'put',
      50,
      4,
      async (i) => {
        if (i !== 2) throw new UnavailableError('no')
      },
      { quiet: true },
    )
    assert.equal(someAnswer.stoppedAfter, undefined)
    assert.equal(someAnswer.ops, 50)
    assert.equal(someAnswer.errors, 49)
    const otherErrors = await phase(
      'get',
      30,
      4,
      async (i) => {
        throw new Error(`bench/${i} not found`)
      },
      { quiet: true },
    )
    assert.equal(otherErrors.stoppedAfter, undefined)
    assert.equal(otherErrors.ops, 30)
    assert.equal(otherErrors.errors, 30)
  })

  it('says in one line why a run failed', () => {
    const result = (over: Partial<PhaseResult>): PhaseResult => ({
      name: 'put',
      ops: 10,
      errors: 0,
      firstError: undefined,
      stoppedAfter: undefined,
      seconds: 1,
      latencies: new Float64Array(),
      ...over,
    })
    assert.equal(
      failureLine([result({ ops: 16, errors: 16, stoppedAfter: 16, firstError: 'refused' })]),
      'the put phase stopped: its first 16 calls all failed; the first: refused',
    )
    assert.equal(
      failureLine([result({ errors: 10, firstError: 'too large' })]),
      'no put succeeded (10 errors), so no get ran; the first: too large',
    )
    assert.equal(
      failureLine([
        result({ errors: 1, firstError: 'one' }),
        result({ name: 'get', errors: 2, firstError: 'two' }),
      ]),
      '3 errors; the first: one',
    )
    assert.equal(failureLine([result({}), result({ name: 'get' })]), undefined)
  })
})
