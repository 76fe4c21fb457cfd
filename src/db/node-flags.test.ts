// Tests for missingDbNodeFlags and runtimeHeapFlag: what a member started without its Node.js
// flags logs, and what it sets for itself instead.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DB_NODE_FLAGS,
  missingDbNodeFlags,
  RUNTIME_HEAP_FLAG,
  runtimeHeapFlag,
} from './node-flags.ts'

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

describe('runtimeHeapFlag', () => {
  it('sets the heap growing percent only when the start flags are missing and none was chosen', () => {
    assert.equal(runtimeHeapFlag([]), RUNTIME_HEAP_FLAG)
    assert.equal(runtimeHeapFlag(['--import', 'tsx', '--max-semi-space-size=2']), RUNTIME_HEAP_FLAG)
    assert.equal(runtimeHeapFlag([...DB_NODE_FLAGS]), undefined)
    assert.equal(runtimeHeapFlag(['--initial-heap-size=256']), undefined)
    // The operator's own choice stands.
    assert.equal(runtimeHeapFlag(['--heap-growing-percent=50']), undefined)
  })
})
