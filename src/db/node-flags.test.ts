// Tests for missingDbNodeFlags: what a member logs it was started without.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DB_NODE_FLAGS, missingDbNodeFlags } from './node-flags.ts'

describe('missingDbNodeFlags', () => {
  it('names the flags a process was started without, and none once given (any value)', () => {
    assert.deepEqual(missingDbNodeFlags([]), [...DB_NODE_FLAGS])
    assert.deepEqual(missingDbNodeFlags(['--import', 'tsx', '--max-semi-space-size=2']), [
      ...DB_NODE_FLAGS,
    ])
    assert.deepEqual(missingDbNodeFlags([...DB_NODE_FLAGS]), [])
    assert.deepEqual(missingDbNodeFlags(['--initial-heap-size=256']), [])
  })
})
