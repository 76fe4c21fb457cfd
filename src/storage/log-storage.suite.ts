// The shared behaviour suite for LogStorage implementations, in the shape of Hono's
// runTest({ newRouter }): every implementation (MemoryStorage for the simulator, LmdbStore
// for real members) runs these same tests through a tiny adapter for its write methods, so
// the core sees one behaviour whatever holds its log. The implementations' own tests run it.
import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { AssertionError } from '../base/index.ts'
import type { ConfState, Entry, LogStorage, SnapshotMeta } from '../raft/index.ts'
import { entryBytes } from '../raft/index.ts'

/** LogStorageHarness adapts one implementation's writes to the suite. */
export interface LogStorageHarness {
  readonly storage: LogStorage
  /** append stores entries, replacing any stable suffix from entries[0].index on. */
  append(entries: readonly Entry[]): void
  /** applySnapshot replaces the whole log with a received snapshot. */
  applySnapshot(meta: SnapshotMeta): void
  /** compact records a snapshot at index and drops the log up to it. */
  compact(index: number, conf: ConfState): void
  /** close releases the implementation (and removes its files). */
  close(): Promise<void> | void
}

/** CONF is the configuration the suite's snapshots carry. */
const CONF: ConfState = { voters: ['a', 'b', 'c'], learners: ['d'] }

/** makeEntry builds an entry whose data names its index and term, padded to dataBytes. */
export function makeEntry(index: number, term: number, dataBytes = 0): Entry {
  const text = new TextEncoder().encode(`e${index}t${term}`)
  const data = new Uint8Array(Math.max(dataBytes, text.byteLength))
  data.set(text)
  return { index, term, type: index % 7 === 0 ? 'conf' : 'normal', data }
}

/** makeEntries builds entries from..from+terms.length-1 with the given terms. */
export function makeEntries(from: number, terms: readonly number[], dataBytes = 0): Entry[] {
  return terms.map((t, i) => makeEntry(from + i, t, dataBytes))
}

/** runLogStorageSuite registers the shared LogStorage tests under name. */
export function runLogStorageSuite(name: string, make: () => LogStorageHarness): void {
  describe(`LogStorage suite: ${name}`, () => {
    let h: LogStorageHarness
    beforeEach(() => {
      h = make()
    })
    afterEach(async () => {
      await h.close()
    })

    it('starts empty: first index 1, last index 0, term 0 at index 0', () => {
      const s = h.storage
      assert.equal(s.firstIndex(), 1)
      assert.equal(s.lastIndex(), 0)
      assert.equal(s.term(0), 0)
      assert.equal(s.term(1), undefined)
      assert.deepEqual(s.entries(1, 1, 1024), [])
      assert.deepEqual(s.snapshot(), { index: 0, term: 0, conf: { voters: [], learners: [] } })
    })

    it('appends and reads entries back with their terms, types and data', () => {
      const es = makeEntries(1, [1, 1, 2, 2, 3])
      h.append(es)
      const s = h.storage
      assert.equal(s.firstIndex(), 1)
      assert.equal(s.lastIndex(), 5)
      assert.deepEqual(
        [0, 1, 2, 3, 4, 5, 6].map((i) => s.term(i)),
        [0, 1, 1, 2, 2, 3, undefined],
      )
      assert.deepEqual(s.entries(1, 6, Infinity), es)
      assert.deepEqual(s.entries(2, 5, Infinity), es.slice(1, 4))
      h.append(makeEntries(6, [3, 3]))
      assert.equal(s.lastIndex(), 7)
      assert.deepEqual(s.entries(5, 8, Infinity), [es[4], ...makeEntries(6, [3, 3])])
    })

    it('limits entries by maxBytes but always returns at least one', () => {
      h.append(makeEntries(1, [1, 1, 1, 1], 100))
      const one = entryBytes(makeEntry(1, 1, 100))
      const s = h.storage
      assert.equal(s.entries(1, 5, 0).length, 1)
      assert.equal(s.entries(1, 5, one).length, 1)
      assert.equal(s.entries(1, 5, 2 * one - 1).length, 1)
      assert.equal(s.entries(1, 5, 2 * one).length, 2)
      assert.equal(s.entries(2, 5, 3 * one).length, 3)
      assert.equal(s.entries(1, 5, 100 * one).length, 4)
    })

    it('replaces the stable suffix from the first new entry on (§5.3)', () => {
      h.append(makeEntries(1, [1, 1, 1, 1, 1]))
      h.append(makeEntries(3, [2]))
      const s = h.storage
      assert.equal(s.lastIndex(), 3)
      assert.equal(s.term(3), 2)
      assert.equal(s.term(4), undefined)
      assert.deepEqual(s.entries(1, 4, Infinity), [...makeEntries(1, [1, 1]), makeEntry(3, 2)])
      h.append(makeEntries(2, [3, 3, 3, 3, 3, 3]))
      assert.equal(s.lastIndex(), 7)
      assert.deepEqual(
        [1, 2, 3, 4, 5, 6, 7].map((i) => s.term(i)),
        [1, 3, 3, 3, 3, 3, 3],
      )
      assert.deepEqual(s.entries(1, 8, Infinity), [
        makeEntry(1, 1),
        ...makeEntries(2, [3, 3, 3, 3, 3, 3]),
      ])
    })

    it('compacts: first index moves past the snapshot, its term stays known', () => {
      h.append(makeEntries(1, [1, 1, 2, 2, 2, 3, 3, 3, 3, 3]))
      h.compact(4, CONF)
      const s = h.storage
      assert.deepEqual(s.snapshot(), { index: 4, term: 2, conf: CONF })
      assert.equal(s.firstIndex(), 5)
      assert.equal(s.lastIndex(), 10)
      assert.equal(s.term(3), undefined)
      assert.equal(s.term(4), 2)
      assert.equal(s.term(5), 2)
      assert.deepEqual(s.entries(5, 11, Infinity), makeEntries(5, [2, 3, 3, 3, 3, 3]))
      h.compact(3, CONF) // at or below the snapshot: nothing to do
      assert.equal(s.firstIndex(), 5)
      h.compact(10, CONF)
      assert.equal(s.firstIndex(), 11)
      assert.equal(s.lastIndex(), 10)
      assert.equal(s.term(10), 3)
      assert.deepEqual(s.entries(11, 11, 1), [])
      h.append(makeEntries(11, [4]))
      assert.deepEqual(s.entries(11, 12, 0), [makeEntry(11, 4)])
    })

    it('applies a snapshot past the log: the log restarts after it', () => {
      h.append(makeEntries(1, [1, 1, 1]))
      h.applySnapshot({ index: 20, term: 5, conf: CONF })
      const s = h.storage
      assert.deepEqual(s.snapshot(), { index: 20, term: 5, conf: CONF })
      assert.equal(s.firstIndex(), 21)
      assert.equal(s.lastIndex(), 20)
      assert.equal(s.term(20), 5)
      assert.equal(s.term(3), undefined)
      assert.equal(s.term(21), undefined)
      h.append(makeEntries(21, [5, 6]))
      assert.equal(s.lastIndex(), 22)
      assert.deepEqual(s.entries(21, 23, Infinity), makeEntries(21, [5, 6]))
    })

    it('applies a snapshot inside the log: the whole log is dropped', () => {
      h.append(makeEntries(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]))
      h.applySnapshot({ index: 6, term: 7, conf: CONF })
      const s = h.storage
      assert.equal(s.firstIndex(), 7)
      assert.equal(s.lastIndex(), 6)
      assert.equal(s.term(6), 7)
      assert.equal(s.term(7), undefined)
      assert.equal(s.term(10), undefined)
    })

    it('refuses reads outside [firstIndex, lastIndex + 1) as a bug', () => {
      h.append(makeEntries(1, [1, 1, 1, 1]))
      h.compact(2, CONF)
      const s = h.storage
      assert.throws(() => s.entries(2, 4, Infinity), AssertionError)
      assert.throws(() => s.entries(3, 6, Infinity), AssertionError)
      assert.equal(s.entries(3, 5, Infinity).length, 2)
    })
  })
}
