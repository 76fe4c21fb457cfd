// Progress and Inflights: the leader's flow control per follower. Probe sends one append at
// a time, replicate pipelines within a window, snapshot waits; stale rejections are ignored.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AssertionError } from '../base/index.ts'
import { Inflights, Progress } from './progress.ts'

test('Inflights: a bounded window freed by cumulative acknowledgements', () => {
  const w = new Inflights(3)
  w.add(5)
  w.add(7)
  w.add(9)
  assert.equal(w.full(), true)
  assert.throws(() => w.add(10), AssertionError)
  w.freeLE(6)
  assert.deepEqual([w.count(), w.full()], [2, false])
  w.freeLE(6) // a duplicate ack frees nothing more
  assert.equal(w.count(), 2)
  w.freeLE(100)
  assert.equal(w.count(), 0)
  w.add(11)
  w.reset()
  assert.equal(w.count(), 0)
})

test('probe: one append in flight, paused until an answer arrives', () => {
  const pr = new Progress(6, 4, false)
  assert.equal(pr.state, 'probe')
  assert.equal(pr.isPaused(), false)
  pr.sentEntries(8, 2)
  assert.equal(pr.isPaused(), true)
  assert.equal(pr.next, 6, 'probing does not move next optimistically')
  assert.equal(pr.maybeUpdate(8), true)
  assert.deepEqual([pr.match, pr.next, pr.isPaused()], [8, 9, false])
})

test('replicate: appends are pipelined optimistically until the window is full', () => {
  const pr = new Progress(1, 2, false)
  pr.maybeUpdate(3)
  pr.becomeReplicate()
  assert.equal(pr.next, 4)
  pr.sentEntries(5, 2)
  pr.sentEntries(6, 1)
  assert.deepEqual([pr.next, pr.isPaused()], [7, true])
  pr.sentEntries(6, 0) // an empty append takes no slot
  assert.equal(pr.inflights.count(), 2)
  pr.maybeUpdate(5)
  pr.inflights.freeLE(5)
  assert.deepEqual([pr.match, pr.next, pr.isPaused()], [5, 7, false])
})

test('maybeUpdate never lowers match or next (a late ack changes nothing)', () => {
  const pr = new Progress(1, 4, false)
  pr.maybeUpdate(9)
  assert.equal(pr.maybeUpdate(4), false)
  assert.deepEqual([pr.match, pr.next], [9, 10])
})

test('§5.3 maybeDecrTo in replicate: a rejection at or below match is stale', () => {
  const pr = new Progress(1, 4, false)
  pr.maybeUpdate(5)
  pr.becomeReplicate()
  pr.sentEntries(9, 4)
  assert.equal(pr.maybeDecrTo(5, 2), false, 'rejects an index already matched')
  assert.equal(pr.next, 10)
  assert.equal(pr.maybeDecrTo(9, 2), true)
  assert.equal(pr.next, 6, 'falls back to just after match')
})

test('§5.3 maybeDecrTo in probe: only a rejection of the append just sent counts', () => {
  const pr = new Progress(11, 4, false)
  pr.maybeUpdate(2)
  pr.becomeProbe()
  pr.next = 11
  pr.sentEntries(11, 1)
  assert.equal(pr.maybeDecrTo(7, 3), false, 'not the append we are waiting for')
  assert.equal(pr.probeSent, true)
  assert.equal(pr.maybeDecrTo(10, 5), true)
  assert.deepEqual([pr.next, pr.probeSent], [6, false], 'jumps to after the hint')
  pr.sentEntries(6, 1)
  assert.equal(pr.maybeDecrTo(5, 0), true)
  assert.equal(pr.next, 3, 'never at or below match')
})

test('snapshot: paused until the transfer ends; probing then resumes after it', () => {
  const pr = new Progress(1, 4, false)
  pr.maybeUpdate(2)
  pr.becomeSnapshot(50)
  assert.equal(pr.isPaused(), true)
  pr.becomeProbe()
  assert.deepEqual([pr.state, pr.next, pr.pendingSnapshot], ['probe', 51, 0])
  const lost = new Progress(1, 4, false)
  lost.maybeUpdate(2)
  lost.becomeSnapshot(50)
  lost.pendingSnapshot = 0 // what reportSnapshot(to, false) does
  lost.becomeProbe()
  assert.equal(lost.next, 3, 'a failed transfer probes from match again')
})
