// withoutStack: an error built to be answered at once carries no stack frames, answers with
// the same body as one built the usual way, and leaves the stack trace limit as it found it,
// also when building throws. errorFromBody: a member passing on the leader's answer (a
// follower's forward) rebuilds the same error, status included.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  BadRequestError,
  errorFromBody,
  KeyNotFoundError,
  MemberConflictError,
  MemberNotFoundError,
  withoutStack,
} from './errors.ts'

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

describe('errorFromBody', () => {
  it('rebuilds the membership errors with their status, code, name and message', () => {
    for (const sent of [
      new MemberNotFoundError('nosuch is not a member of the cluster'),
      new MemberConflictError("raft address 127.0.0.1:12000 is already member n1's raft address"),
    ]) {
      const got = errorFromBody(sent.status, sent.body())
      assert.equal(got.constructor, sent.constructor)
      assert.equal(got.status, sent.status)
      assert.deepEqual(got.body(), sent.body())
    }
    assert.equal(new MemberNotFoundError('x').body().code, 1001)
    assert.equal(new MemberNotFoundError('x').status, 404)
  })
})
