// Tests for runtimeYoungFlag: what a cache node started without its Node.js flags sets for
// itself.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import {
  CACHE_NODE_FLAGS,
  RUNTIME_YOUNG_FLAG,
  runtimeYoungFlag,
  setRuntimeYoungFlag,
} from './node-flags.ts'

describe('runtimeYoungFlag', () => {
  it('bounds the young generation only when nothing the process was started with does', () => {
    assert.equal(runtimeYoungFlag([], undefined), RUNTIME_YOUNG_FLAG)
    assert.equal(
      runtimeYoungFlag(['--import', 'tsx'], '--max-old-space-size=512'),
      RUNTIME_YOUNG_FLAG,
    )
    assert.equal(runtimeYoungFlag([...CACHE_NODE_FLAGS], undefined), undefined)
    assert.equal(runtimeYoungFlag(['--max-semi-space-size=8'], undefined), undefined)
    // NODE_OPTIONS counts (process.execArgv leaves it out), in either spelling.
    assert.equal(runtimeYoungFlag([], '--max-semi-space-size=2'), undefined)
    assert.equal(runtimeYoungFlag([], ' --enable-source-maps  --max_semi_space_size=4'), undefined)
    // The operator's own growth factor stands.
    assert.equal(runtimeYoungFlag(['--semi-space-growth-factor=2'], undefined), undefined)
  })

  it('is set through setFlagsFromString when due, and is a flag Node.js takes', () => {
    const set: string[] = []
    assert.equal(
      setRuntimeYoungFlag([], undefined, (f) => set.push(f)),
      RUNTIME_YOUNG_FLAG,
    )
    assert.equal(
      setRuntimeYoungFlag([...CACHE_NODE_FLAGS], undefined, (f) => set.push(f)),
      undefined,
    )
    assert.deepEqual(set, [RUNTIME_YOUNG_FLAG])
    const run = spawnSync(process.execPath, [RUNTIME_YOUNG_FLAG, '-e', '0'], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
  })
})
