// withoutStack: an error built to be answered at once carries no stack frames, answers with
// the same body as one built the usual way, and leaves the stack trace limit as it found it,
// also when building throws.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BadRequestError, KeyNotFoundError, withoutStack } from './errors.ts'

describe('withoutStack', () => {
  it('builds the same error without stack frames', () => {
    const usual = new KeyNotFoundError('k/1')
    const quiet = withoutStack(() => new KeyNotFoundError('k/1'))
    assert.ok(quiet instanceof KeyNotFoundError)
    assert.deepEqual(quiet.body(), usual.body())
    assert.equal(quiet.status, 404)
    assert.match(usual.stack ?? '', /\n\s+at /)
    assert.doesNotMatch(quiet.stack ?? '', /\n\s+at /)
  })

  it('restores the stack trace limit, also when building throws', () => {
    const before = Error.stackTraceLimit
    withoutStack(() => new KeyNotFoundError('k'))
    assert.equal(Error.stackTraceLimit, before)
    assert.throws(
      () =>
        withoutStack(() => {
          throw new BadRequestError('no')
        }),
      BadRequestError,
    )
    assert.equal(Error.stackTraceLimit, before)
    assert.match(new KeyNotFoundError('k').stack ?? '', /\n\s+at /)
  })
})
