// Tests for missingDbNodeFlags and runtimeHeapFlag: what a member started without its Node.js
// flags logs, and what it sets for itself instead.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import {
  DB_NODE_FLAGS,
  missingDbNodeFlags,
  RUNTIME_HEAP_FLAG,
  runtimeHeapFlag,
  setRuntimeHeapFlag,
} from './node-flags.ts'

describe('missingDbNodeFlags', () => {
  it('names the flags a process was started without, and none once given (any value)', () => {
    const [heap, young] = DB_NODE_FLAGS
    assert.deepEqual(DB_NODE_FLAGS, ['--initial-heap-size=128', '--max-semi-space-size=8'])
    assert.deepEqual(missingDbNodeFlags([]), [...DB_NODE_FLAGS])
    assert.deepEqual(missingDbNodeFlags([...DB_NODE_FLAGS]), [])
    // Each flag on its own: another value is the operator's choice.
    assert.deepEqual(missingDbNodeFlags(['--import', 'tsx', '--max-semi-space-size=2']), [heap])
    assert.deepEqual(missingDbNodeFlags(['--initial-heap-size=256']), [young])
    // V8's other spelling, the value as the next argument, and the flag that does the same.
    assert.deepEqual(missingDbNodeFlags(['--initial_heap_size=128', '--max_semi_space_size=8']), [])
    assert.deepEqual(missingDbNodeFlags(['--initial-heap-size', '128']), [young])
    assert.deepEqual(missingDbNodeFlags(['--initial-old-space-size=128']), [young])
    // The young generation's cap may come through NODE_OPTIONS (the heap's may not).
    assert.deepEqual(missingDbNodeFlags([], '--max-semi-space-size=4'), [heap])
    assert.deepEqual(missingDbNodeFlags([], '--initial-heap-size=128'), [...DB_NODE_FLAGS])
  })
})

describe('runtimeHeapFlag', () => {
  it('returns the heap growing percent only when the start flags are missing and none was chosen', () => {
    assert.equal(runtimeHeapFlag([]), RUNTIME_HEAP_FLAG)
    assert.equal(runtimeHeapFlag(['--import', 'tsx', '--max-semi-space-size=2']), RUNTIME_HEAP_FLAG)
    assert.equal(runtimeHeapFlag([...DB_NODE_FLAGS]), undefined)
    assert.equal(runtimeHeapFlag(['--initial-heap-size=256']), undefined)
    // The operator's own choice stands, however spelled.
    assert.equal(runtimeHeapFlag(['--heap-growing-percent=50']), undefined)
    assert.equal(runtimeHeapFlag(['--heap_growing_percent=50']), undefined)
    assert.equal(runtimeHeapFlag(['--heap-growing-percent', '50']), undefined)
  })

  it('is set through setFlagsFromString when due, and is a flag Node.js takes', () => {
    const set: string[] = []
    assert.equal(
      setRuntimeHeapFlag([], (f) => set.push(f)),
      RUNTIME_HEAP_FLAG,
    )
    assert.equal(
      setRuntimeHeapFlag([...DB_NODE_FLAGS], (f) => set.push(f)),
      undefined,
    )
    assert.deepEqual(set, [RUNTIME_HEAP_FLAG])
    // Node.js refuses a flag it does not know ("bad option") before running anything.
    const run = spawnSync(process.execPath, [RUNTIME_HEAP_FLAG, '-e', '0'], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
  })
})
