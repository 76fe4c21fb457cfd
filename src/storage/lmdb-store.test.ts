// Tests for LmdbStore: the shared LogStorage suite, then what only a durable store has
// (restart, apply transactions, big keys and values, batched compaction, snapshot streaming,
// and detection of corrupt files). Every store lives in a temp dir removed after its test.
import assert from 'node:assert/strict'
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, it } from 'node:test'
import { open, type RootDatabase } from 'lmdb'
import { AssertionError } from '../base/index.ts'
import { bootstrapSnapshot, type ConfState, type Entry, type HardState } from '../raft/index.ts'
import type { KvPair } from '../transport/transport.ts'
import { StoreCorruptError, ValueCorruptError } from './errors.ts'
import {
  CHECKPOINT_MS,
  FORMAT_VERSION,
  LmdbStore,
  VALUES_FILE,
  WAL_FILE,
  type LmdbStoreOptions,
} from './lmdb-store.ts'
import { encodeLogRecord, tailRefRecord } from './log-record.ts'
import { makeEntries, makeEntry, runLogStorageSuite } from './log-storage.suite.ts'
import { decodeMembers, type Members } from './members.ts'
import { decodeMetaRecord, encodeMetaRecord } from './meta-record.ts'
import { encodeValueRecord } from './value-record.ts'
import { encodeWalRecord, FILE_MAGIC, LEGACY_SALT, RECORDS_AT, Wal } from './wal.ts'

const enc = new TextEncoder()
const MEMBERS: Members = {
  a: { http: 'http://127.0.0.1:7001', raft: '127.0.0.1:8001' },
  b: { http: 'http://127.0.0.1:7002', raft: '127.0.0.1:8002' },
}

function flipBit(bytes: Uint8Array, at: number, mask: number): void {
  const b = bytes[at]
  assert(b !== undefined, `no byte at ${at}`)
  bytes[at] = b ^ mask
}

function newDir(): string {
  return mkdtempSync(join(tmpdir(), 'oncekv-store-'))
}

runLogStorageSuite('LmdbStore', () => {
  const dir = newDir()
  const store = LmdbStore.open(dir)
  return {
    storage: store,
    append: (entries) => store.writeReady({ entries }),
    applySnapshot: (snapshot) => store.writeReady({ entries: [], snapshot }),
    compact: (index, conf) => {
      // LmdbStore compacts only applied entries; the suite never applies, so mark them.
      if (index > store.initialState().applied) store.apply((t) => t.setApplied(index))
      store.compact(index, conf)
    },
    close: async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

describe('LmdbStore', () => {
  // Stores and dirs made by the running test; afterEach closes and removes them.
  let stores: LmdbStore[] = []
  let dirs: string[] = []
  afterEach(async () => {
    for (const s of stores) await s.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
    stores = []
    dirs = []
  })

  function tempDir(): string {
    const d = newDir()
    dirs.push(d)
    return d
  }

  function openStore(dir: string, opts: LmdbStoreOptions = {}): LmdbStore {
    const s = LmdbStore.open(dir, opts)
    stores.push(s)
    return s
  }

  async function reopen(
    s: LmdbStore,
    dir: string,
    opts: LmdbStoreOptions = {},
  ): Promise<LmdbStore> {
    await s.close()
    return openStore(dir, opts)
  }

  // openRaw opens the store's LMDB environment directly, to damage it on purpose.
  function openRaw(dir: string): {
    root: RootDatabase
    log: ReturnType<RootDatabase['openDB']>
    meta: ReturnType<RootDatabase['openDB']>
  } {
    const root = open(dir, { noSubdir: false, maxDbs: 4 })
    return {
      root,
      log: root.openDB<Uint8Array, number>('log', { encoding: 'binary' }),
      meta: root.openDB<Uint8Array, string>('meta', { encoding: 'binary' }),
    }
  }

  // logKeysInFile is how many log keys the closed store in dir holds in its file.
  async function logKeysInFile(dir: string): Promise<number> {
    const raw = openRaw(dir)
    try {
      return raw.log.getKeysCount()
    } finally {
      await raw.root.close()
    }
  }

  // bootstrapped opens a store in a fresh dir and bootstraps it as member a of {a, b}.
  function bootstrapped(opts: LmdbStoreOptions = {}): { store: LmdbStore; dir: string } {
    const dir = tempDir()
    const store = openStore(dir, opts)
    store.bootstrap(bootstrapSnapshot(['a', 'b']), MEMBERS)
    return { store, dir }
  }

  // appendCommitted writes entries after the log's end (term 1) and commits them.
  function appendCommitted(store: LmdbStore, count: number, dataBytes = 0): Entry[] {
    const from = store.lastIndex() + 1
    const entries = makeEntries(from, new Array<number>(count).fill(1), dataBytes)
    const hardState: HardState = { term: 1, vote: 'a', commit: from + count - 1 }
    store.writeReady({ hardState, entries })
    return entries
  }

  // commitPuts logs one entry for a batch of pairs, then applies the batch with it.
  function commitPuts(store: LmdbStore, pairs: readonly KvPair[]): number {
    const [e] = appendCommitted(store, 1)
    assert(e !== undefined)
    store.apply((t) => {
      for (const p of pairs) assert.equal(t.putIfAbsent(p.key, p.value), 'created')
      t.setApplied(e.index)
    })
    return e.index
  }

  function pair(i: number, valueBytes = 40): KvPair {
    const key = enc.encode(`user/${i.toString().padStart(7, '0')}`)
    const value = new Uint8Array(valueBytes)
    for (let j = 0; j < valueBytes; j++) value[j] = (i * 31 + j) & 0xff
    return { key, value }
  }

  function assertCorrupt(dir: string, pattern: RegExp): void {
    assert.throws(
      () => openStore(dir),
      (err: unknown) => {
        assert(err instanceof StoreCorruptError, `expected StoreCorruptError, got ${String(err)}`)
        assert.equal(err.dir, dir)
        assert.match(err.message, new RegExp(`^store ${dir} is corrupt: `))
        assert.match(err.message, pattern)
        return true
      },
    )
  }

  describe('open and restart', () => {
    it('opens a fresh dir as an empty, unbootstrapped store', () => {
      const s = openStore(join(tempDir(), 'nested', 'member.data'))
      assert.equal(s.isBootstrapped(), false)
      assert.deepEqual(s.initialState(), {
        hardState: { term: 0, vote: '', commit: 0 },
        applied: 0,
        conf: { voters: [], learners: [] },
      })
      assert.deepEqual(s.members(), {})
      assert.equal(s.count(), 0)
      assert(s.sizeBytes() > 0)
    })

    it('bootstraps from the bootstrap snapshot', () => {
      const { store } = bootstrapped()
      assert.equal(store.isBootstrapped(), true)
      assert.deepEqual(store.snapshot(), bootstrapSnapshot(['a', 'b']))
      assert.deepEqual(store.initialState(), {
        hardState: { term: 1, vote: '', commit: 1 },
        applied: 1,
        conf: { voters: ['a', 'b'], learners: [] },
      })
      assert.deepEqual(store.members(), MEMBERS)
      assert.equal(store.firstIndex(), 2)
      assert.equal(store.lastIndex(), 1)
      assert.equal(store.term(1), 1)
      assert.throws(() => store.bootstrap(bootstrapSnapshot(['a']), MEMBERS), AssertionError)
    })

    it('keeps the log, hard state, snapshot, applied, conf, members and data across restarts', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      const entries = appendCommitted(store, 20, 10)
      const conf: ConfState = { voters: ['a', 'b', 'c'], learners: [] }
      const members: Members = { ...MEMBERS, c: { http: 'http://h:3', raft: 'h:4' } }
      store.apply((t) => {
        t.putIfAbsent(enc.encode('k1'), enc.encode('v1'))
        t.putIfAbsent(enc.encode('k2'), new Uint8Array(0))
        t.setConf(conf)
        t.setMembers(members)
        t.setApplied(15)
      })
      store.compact(10, conf)
      store.writeReady({ entries: [], hardState: { term: 2, vote: 'b', commit: 21 } })
      await store.sync()
      const before = {
        init: store.initialState(),
        snap: store.snapshot(),
        first: store.firstIndex(),
        last: store.lastIndex(),
      }
      store = await reopen(store, dir)
      assert.deepEqual(store.initialState(), before.init)
      assert.deepEqual(store.initialState(), {
        hardState: { term: 2, vote: 'b', commit: 21 },
        applied: 15,
        conf,
      })
      assert.deepEqual(store.snapshot(), before.snap)
      assert.deepEqual(store.snapshot(), { index: 10, term: 1, conf })
      assert.equal(store.firstIndex(), before.first)
      assert.equal(store.lastIndex(), before.last)
      assert.equal(store.lastIndex(), 21)
      assert.deepEqual(store.entries(11, 22, Infinity), entries.slice(9))
      assert.deepEqual(store.members(), members)
      assert.deepEqual(store.get(enc.encode('k1')), enc.encode('v1'))
      assert.deepEqual(store.get(enc.encode('k2')), new Uint8Array(0))
      assert.equal(store.has(enc.encode('k3')), false)
      assert.equal(store.count(), 2)
      assert.equal(store.isBootstrapped(), true)
    })

    it('opens a directory whose name has a dot in it as a directory', async () => {
      const dir = join(tempDir(), 'node-1.data')
      let s = openStore(dir)
      s.bootstrap(bootstrapSnapshot(['a']), MEMBERS)
      s = await reopen(s, dir)
      assert.equal(s.isBootstrapped(), true)
      assert.ok(readFileSync(join(dir, 'data.mdb')).byteLength > 0)
    })
  })

  describe('reads', () => {
    it('hands out entries and values as fresh plain Uint8Arrays', () => {
      const { store } = bootstrapped()
      appendCommitted(store, 3, 8)
      const [e] = store.entries(2, 3, Infinity)
      assert(e !== undefined)
      assert.equal(Object.getPrototypeOf(e.data), Uint8Array.prototype)
      assert.equal(e.data.buffer.byteLength, e.data.byteLength)
      e.data.fill(0)
      assert.deepEqual(store.entries(2, 3, Infinity), [makeEntry(2, 1, 8)])
      commitPuts(store, [{ key: enc.encode('k'), value: enc.encode('value') }])
      const v = store.get(enc.encode('k'))
      assert(v !== undefined)
      assert.equal(Object.getPrototypeOf(v), Uint8Array.prototype)
      v.fill(0)
      assert.deepEqual(store.get(enc.encode('k')), enc.encode('value'))
    })

    it('answers term() for entries older than its term cache', () => {
      const { store } = bootstrapped()
      const terms = Array.from({ length: 6000 }, (_, i) => 1 + Math.floor(i / 1000))
      store.writeReady({
        entries: makeEntries(2, terms),
        hardState: { term: 6, vote: '', commit: 2 },
      })
      for (const i of [2, 999, 1001, 3000, 5999, 6001]) assert.equal(store.term(i), terms[i - 2])
    })

    it('maps its data file once however large it grows (the resident set counts it once)', () => {
      const { store, dir } = bootstrapped()
      // About 8 MiB of log entries (values go to the value file): a map that started small
      // would have doubled several times.
      for (let b = 0; b < 16; b++) appendCommitted(store, 128, 4096)
      for (let i = 2; i < 16 * 128; i += 97) assert.equal(store.entries(i, i + 1, 0).length, 1)
      const file = realpathSync(join(dir, 'data.mdb'))
      assert(statSync(file).size > 8 * 2 ** 20, `data file of ${statSync(file).size} bytes`)
      const maps = readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((l) => l.endsWith(` ${file}`))
      assert.equal(maps.length, 1, maps.join('\n'))
    })
  })

  describe('apply', () => {
    it('puts once: created, then exists for the same bytes, conflict for others', () => {
      const { store } = bootstrapped()
      appendCommitted(store, 3)
      const key = enc.encode('build/abc')
      const outcomes: string[] = []
      store.apply((t) => {
        outcomes.push(t.putIfAbsent(key, enc.encode('one')))
        outcomes.push(t.putIfAbsent(key, enc.encode('one')))
        outcomes.push(t.putIfAbsent(key, enc.encode('two')))
        t.setApplied(2)
      })
      store.apply((t) => {
        outcomes.push(t.putIfAbsent(key, enc.encode('one')))
        outcomes.push(t.putIfAbsent(key, enc.encode('onex')))
        outcomes.push(t.putIfAbsent(key, new Uint8Array(0)))
        t.setApplied(3)
      })
      assert.deepEqual(outcomes, [
        'created',
        'exists',
        'conflict',
        'exists',
        'conflict',
        'conflict',
      ])
      assert.deepEqual(store.get(key), enc.encode('one'))
      assert.equal(store.initialState().applied, 3)
      assert.equal(store.count(), 1)
    })

    it('commits data and the applied index together, or neither (and then fails stop)', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      appendCommitted(store, 2)
      store.apply((t) => {
        t.putIfAbsent(enc.encode('a'), enc.encode('1'))
        t.setApplied(2)
      })
      assert.throws(
        () =>
          store.apply((t) => {
            t.putIfAbsent(enc.encode('b'), enc.encode('2'))
            t.setApplied(3)
            throw new Error('state machine bug')
          }),
        /state machine bug/,
      )
      assert.equal(store.initialState().applied, 2)
      assert.throws(() => store.get(enc.encode('a')), /stopped after a failed write/)
      store = await reopen(store, dir)
      assert.equal(store.initialState().applied, 2)
      assert.deepEqual(store.get(enc.encode('a')), enc.encode('1'))
      assert.equal(store.has(enc.encode('b')), false)
    })

    it('refuses an ApplyTxn used after its callback, and applied moving backwards', () => {
      const { store } = bootstrapped()
      appendCommitted(store, 2)
      let kept: Parameters<Parameters<LmdbStore['apply']>[0]>[0] | undefined
      store.apply((t) => {
        kept = t
        t.setApplied(3)
      })
      assert.throws(() => kept?.putIfAbsent(enc.encode('x'), enc.encode('y')), AssertionError)
      assert.throws(() => store.apply((t) => t.setApplied(2)), AssertionError)
    })

    it('stores 1024-byte keys and 1 MiB values, and log entries of 1 MiB', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      const key = new Uint8Array(1024).fill(0x6b)
      const value = new Uint8Array(1 << 20)
      for (let i = 0; i < value.byteLength; i++) value[i] = (i * 7) & 0xff
      const longest = new Uint8Array(1978).fill(0x6c)
      const [e] = appendCommitted(store, 1, 1 << 20)
      store.apply((t) => {
        assert.equal(t.putIfAbsent(key, value), 'created')
        assert.equal(t.putIfAbsent(longest, enc.encode('v')), 'created')
        t.setApplied(2)
      })
      assert.throws(
        () => store.apply((t) => t.putIfAbsent(new Uint8Array(1979), enc.encode('v'))),
        AssertionError,
      )
      store = await reopen(store, dir)
      assert.deepEqual(store.get(key), value)
      assert.deepEqual(store.get(longest), enc.encode('v'))
      assert.deepEqual(store.entries(2, 3, 0), [e])
    })
  })

  describe('apply in memory', () => {
    it('shows at once what it applied, writes nothing until flushApplied, then keeps it', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      appendCommitted(store, 3)
      const conf: ConfState = { voters: ['a', 'b', 'c'], learners: [] }
      const outcomes: string[] = []
      store.applyInMemory((t) => {
        outcomes.push(t.putIfAbsent(enc.encode('k'), enc.encode('one')))
        outcomes.push(t.putIfAbsent(enc.encode('k'), enc.encode('one')))
        outcomes.push(t.putIfAbsent(enc.encode('k'), enc.encode('two')))
        t.setConf(conf)
        t.setApplied(3)
      })
      assert.deepEqual(outcomes, ['created', 'exists', 'conflict'])
      assert.deepEqual(store.get(enc.encode('k')), enc.encode('one'))
      assert.equal(store.has(enc.encode('k')), true)
      assert.equal(store.count(), 1)
      assert.equal(store.initialState().applied, 3)
      assert.equal(store.hasPending(), true)
      // A snapshot for a follower describes what the file holds, not the pending state.
      const source = store.snapshotSource()
      assert.equal(source.meta.index, 1)
      source.close()
      // Nothing was written: a restart sees the state before (the log has the entries).
      store = await reopen(store, dir)
      assert.equal(store.has(enc.encode('k')), false)
      assert.equal(store.initialState().applied, 1)
      store.applyInMemory((t) => {
        assert.equal(t.putIfAbsent(enc.encode('k'), enc.encode('one')), 'created')
        t.setConf(conf)
        t.setApplied(3)
      })
      store.noteHardState({ term: 1, vote: 'a', commit: 3 })
      store.flushApplied()
      assert.equal(store.hasPending(), false)
      store = await reopen(store, dir)
      assert.deepEqual(store.get(enc.encode('k')), enc.encode('one'))
      assert.deepEqual(store.initialState(), {
        hardState: { term: 1, vote: 'a', commit: 3 },
        applied: 3,
        conf,
      })
    })

    it('is written by the next writeReady or compaction, with the entries it covers', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      // The core may hand out committed entries of the Ready being written: they apply first.
      const entries = makeEntries(2, [1, 1], 0)
      store.applyInMemory(
        (t) => {
          assert.equal(t.putIfAbsent(enc.encode('a'), enc.encode('1')), 'created')
          t.setApplied(3)
        },
        { first: 2, last: 3 },
      )
      store.writeReady({ hardState: { term: 1, vote: 'a', commit: 3 }, entries })
      assert.equal(store.hasPending(), false)
      appendCommitted(store, 2)
      store.applyInMemory((t) => {
        assert.equal(t.putIfAbsent(enc.encode('b'), enc.encode('2')), 'created')
        // A conflict with a pending value is a conflict like any other.
        assert.equal(t.putIfAbsent(enc.encode('b'), enc.encode('3')), 'conflict')
        t.setApplied(5)
      })
      store.compact(5, { voters: ['a', 'b'], learners: [] })
      assert.equal(store.hasPending(), false)
      assert.equal(store.snapshotSource().meta.index, 5)
      store = await reopen(store, dir)
      assert.deepEqual(store.get(enc.encode('a')), enc.encode('1'))
      assert.deepEqual(store.get(enc.encode('b')), enc.encode('2'))
      assert.equal(store.initialState().applied, 5)
      assert.equal(store.snapshot().index, 5)
      // A Ready whose entries replace an uncommitted tail may apply some of them first.
      store.writeReady({ entries: makeEntries(6, [1, 1, 1], 0) })
      store.applyInMemory((t) => t.setApplied(6), { first: 7, last: 8 })
      store.applyInMemory((t) => t.setApplied(7), { first: 7, last: 8 })
      store.writeReady({
        hardState: { term: 2, vote: 'a', commit: 7 },
        entries: makeEntries(7, [2, 2], 0),
      })
      assert.equal(store.lastIndex(), 8)
      assert.equal(store.term(8), 2)
      // Entries applied before their Ready are never replaced.
      store.applyInMemory((t) => t.setApplied(8))
      assert.throws(() => store.writeReady({ entries: makeEntries(8, [3], 0) }), AssertionError)
      store = await reopen(store, dir)
      assert.equal(store.initialState().applied, 7)
      // Applying past the entries held is refused.
      assert.throws(() => store.applyInMemory((t) => t.setApplied(9)), AssertionError)
      // So is a hard state whose term or vote is not durable.
      assert.throws(() => store.noteHardState({ term: 3, vote: 'a', commit: 8 }), AssertionError)
    })
  })

  describe('asynchronous Ready writes', () => {
    it('writes a Ready and the pending state in one transaction off the event loop', async () => {
      // Without the write-ahead file every Ready is an LMDB transaction.
      const noWal = { wal: false }
      const boot = bootstrapped(noWal)
      const dir = boot.dir
      let store = boot.store
      const entries = makeEntries(2, [1, 1, 1], 100)
      store.applyInMemory(
        (t) => {
          assert.equal(t.putIfAbsent(enc.encode('k'), enc.encode('v')), 'created')
          t.setApplied(3)
        },
        { first: 2, last: 4 },
      )
      const written = store.writeReadyAsync({
        hardState: { term: 1, vote: 'a', commit: 3 },
        entries,
      })
      // Nothing changes in memory before the transaction commits.
      assert.equal(store.lastIndex(), 1)
      assert.equal(store.hasPending(), true)
      await written
      assert.equal(store.lastIndex(), 4)
      assert.equal(store.hasPending(), false)
      // Replacing the uncommitted tail, as writeReady does.
      await store.writeReadyAsync({
        hardState: { term: 2, vote: 'b', commit: 3 },
        entries: makeEntries(4, [2], 10),
      })
      assert.equal(store.lastIndex(), 4)
      assert.equal(store.term(4), 2)
      store = await reopen(store, dir, noWal)
      assert.deepEqual(
        store.entries(2, 5, 1 << 30).map((e) => e.term),
        [1, 1, 2],
      )
      assert.deepEqual(store.get(enc.encode('k')), enc.encode('v'))
      assert.deepEqual(store.initialState().hardState, { term: 2, vote: 'b', commit: 3 })
      assert.equal(store.initialState().applied, 3)
    })
  })

  describe('the write-ahead file', () => {
    const term1 = (commit: number): HardState => ({ term: 1, vote: 'a', commit })

    // No checkpoint by the clock, so that a slow machine does not turn an append into one.
    const noClock = { checkpointMs: Infinity }

    // appendEach appends entries from..to (term 1, one Ready each, `bytes` of data each),
    // each Ready committing the entry before it.
    async function appendEach(store: LmdbStore, from: number, to: number, bytes: number) {
      for (let i = from; i <= to; i++) {
        await store.writeReadyAsync({
          hardState: term1(i - 1),
          entries: makeEntries(i, [1], bytes),
        })
      }
    }

    it('takes big Readies too, whose records LMDB would keep whole until compaction', async () => {
      const { store, dir } = bootstrapped(noClock)
      const entries = makeEntries(2, [1, 1], 256 * 1024)
      await store.writeReadyAsync({ hardState: term1(1), entries })
      assert.equal(store.hasPending(), true)
      assert.deepEqual(store.entries(2, 4, Infinity), entries)
      assert.equal(statSync(join(dir, WAL_FILE)).size > 512 * 1024, true)
    })

    it('refuses a record that refers to the value file (only LMDB keeps those)', async () => {
      const { store, dir } = bootstrapped(noClock)
      const [e, next] = makeEntries(2, [1, 1], 100)
      assert(e !== undefined && next !== undefined)
      await store.writeReadyAsync({ hardState: term1(1), entries: [e] })
      await store.close()
      const opened = Wal.open(join(dir, WAL_FILE))
      const seq = opened.records.at(-1)?.seq ?? 0
      const ref = tailRefRecord(encodeLogRecord(next), next.data.subarray(50), 0)
      assert(ref !== undefined)
      await opened.wal.append({ seq: seq + 1, hardState: undefined, entries: [ref] })
      opened.wal.close()
      assertCorrupt(dir, /wal\.log, record \d+: entry 3 refers to the value file/)
    })

    it('takes Readies with one record each and gives them back on open, then folds them into LMDB', async () => {
      const boot = bootstrapped(noClock)
      const dir = boot.dir
      let store = boot.store
      store.applyInMemory(
        (t) => {
          assert.equal(t.putIfAbsent(enc.encode('k'), enc.encode('v')), 'created')
          t.setApplied(3)
        },
        { first: 2, last: 4 },
      )
      await store.writeReadyAsync({ hardState: term1(3), entries: makeEntries(2, [1, 1, 1], 100) })
      assert.equal(store.lastIndex(), 4)
      // LMDB does not hold them yet: the next checkpoint writes them.
      assert.equal(store.hasPending(), true)
      await store.writeReadyAsync({
        hardState: { term: 2, vote: 'b', commit: 3 },
        entries: makeEntries(4, [2], 10),
      })
      assert.deepEqual(
        store.entries(2, 5, 1 << 30).map((e) => e.term),
        [1, 1, 2],
      )
      await store.close()
      assert.equal(await logKeysInFile(dir), 0)
      assert.ok(statSync(join(dir, WAL_FILE)).size > 0)

      store = openStore(dir)
      assert.equal(store.lastIndex(), 4)
      assert.deepEqual(
        store.entries(2, 5, 1 << 30).map((e) => [e.term, e.data.byteLength]),
        [
          [1, 100],
          [1, 100],
          [2, 10],
        ],
      )
      assert.deepEqual(store.initialState().hardState, { term: 2, vote: 'b', commit: 3 })
      // What was applied in memory only is applied again from the log by the member.
      assert.equal(store.initialState().applied, 1)
      assert.equal(store.get(enc.encode('k')), undefined)
      assert.equal(store.hasPending(), false)
      await store.close()
      assert.equal(await logKeysInFile(dir), 3)
      // The records LMDB covers now are left in the file until the next append: skipped.
      store = openStore(dir)
      assert.equal(store.lastIndex(), 4)
      assert.deepEqual(store.initialState().hardState, { term: 2, vote: 'b', commit: 3 })
      // The next append writes over them; its record follows the covered ones.
      await store.writeReadyAsync({
        hardState: { term: 2, vote: 'b', commit: 4 },
        entries: makeEntries(5, [2], 10),
      })
      store = await reopen(store, dir)
      assert.equal(store.lastIndex(), 5)
      assert.deepEqual(store.initialState().hardState, { term: 2, vote: 'b', commit: 4 })
    })

    it('checkpoints into LMDB with the first Ready after CHECKPOINT_MS', async () => {
      const { store, dir } = bootstrapped()
      await store.writeReadyAsync({ hardState: term1(2), entries: makeEntries(2, [1], 10) })
      const started = performance.now()
      while (performance.now() - started < CHECKPOINT_MS)
        await new Promise((r) => setTimeout(r, 10))
      store.applyInMemory((t) => {
        t.putIfAbsent(enc.encode('k'), enc.encode('v'))
        t.setApplied(2)
      })
      await store.writeReadyAsync({ hardState: term1(3), entries: makeEntries(3, [1], 10) })
      assert.equal(store.hasPending(), false)
      await store.close()
      assert.equal(await logKeysInFile(dir), 2)
      const again = openStore(dir)
      assert.equal(again.initialState().applied, 2)
      assert.deepEqual(again.get(enc.encode('k')), enc.encode('v'))
    })

    it('drops a torn last record, skips records a checkpoint covers, and refuses damage before the end', async () => {
      const { store, dir } = bootstrapped(noClock)
      await appendEach(store, 2, 4, 50)
      await store.close()
      const file = join(dir, WAL_FILE)
      const full = readFileSync(file)

      // A bit flipped in the first of three records (the records start at RECORDS_AT).
      const damaged = Buffer.from(full)
      flipBit(damaged, RECORDS_AT + 20, 0x01)
      writeFileSync(file, damaged)
      const middle =
        /wal\.log: the log ends at byte 4096, before any record, but record \d+ at byte \d+, further on, is newer/
      assertCorrupt(dir, middle)
      // A bit flipped in its length (caught by the checksum of the record's header).
      const badLength = Buffer.from(full)
      flipBit(badLength, RECORDS_AT + 1, 0x40)
      writeFileSync(file, badLength)
      assertCorrupt(dir, middle)
      // A bit flipped in the file header.
      const badHeader = Buffer.from(full)
      flipBit(badHeader, 9, 0x02)
      writeFileSync(file, badHeader)
      assertCorrupt(dir, /wal\.log: the file header is damaged/)

      // The last record cut short (its write never returned): dropped.
      writeFileSync(file, full.subarray(0, full.byteLength - 5))
      let s = openStore(dir)
      assert.equal(s.lastIndex(), 3)
      assert.deepEqual(s.initialState().hardState, term1(2))
      await s.close()

      // The whole file again: the first two records are in LMDB now (skipped), the third
      // is new.
      writeFileSync(file, full)
      s = openStore(dir)
      assert.equal(s.lastIndex(), 4)
      assert.deepEqual(s.initialState().hardState, term1(3))
      assert.equal(s.term(4), 1)
      await s.close()
      // The file lost (a checkpoint recorded it): refused, not started without its records.
      rmSync(file)
      assertCorrupt(dir, /wal\.log is missing, and the data file says there was one/)
    })

    it('writes over the records a checkpoint covers, from the start of the file, and reads back only the newest', async () => {
      const boot = bootstrapped(noClock)
      const dir = boot.dir
      let store = boot.store
      const file = join(dir, WAL_FILE)
      await appendEach(store, 2, 7, 300)
      const longest = statSync(file).size
      store.flushApplied()
      // Two shorter records now lie over the first of the six LMDB holds; the file keeps
      // its size (a flush of the data alone), the older records stay past them.
      await appendEach(store, 8, 9, 20)
      assert.equal(statSync(file).size, longest)
      await store.close()
      const whole = readFileSync(file)
      assert.deepEqual(whole.subarray(0, 8), FILE_MAGIC)
      // The second of the two torn (its last bytes never landed): dropped; the older records
      // after it, which LMDB holds, are no sign of damage.
      const second = RECORDS_AT + 12 + whole.readUInt32LE(RECORDS_AT)
      const secondEnd = second + 12 + whole.readUInt32LE(second)
      const torn = Buffer.from(whole)
      torn.fill(0xee, secondEnd - 10, secondEnd)
      writeFileSync(file, torn)
      store = openStore(dir, noClock)
      assert.equal(store.lastIndex(), 8)
      assert.deepEqual(store.initialState().hardState, term1(7))
      await store.close()
      // Both whole: the first is in LMDB now (open checkpointed it), the second is replayed.
      writeFileSync(file, whole)
      store = openStore(dir, noClock)
      assert.equal(store.lastIndex(), 9)
      assert.deepEqual(store.initialState().hardState, term1(8))
      assert.deepEqual(
        store.entries(6, 10, Infinity).map((e) => e.data.byteLength),
        [300, 300, 20, 20],
      )
      await store.close()
    })

    it('opens after a crash in the first append after a checkpoint, the older records past it covered', async () => {
      const boot = bootstrapped(noClock)
      const dir = boot.dir
      let store = boot.store
      const file = join(dir, WAL_FILE)
      await appendEach(store, 2, 5, 100)
      store.flushApplied()
      await store.writeReadyAsync({ hardState: term1(5), entries: makeEntries(6, [1], 10) })
      await store.close()
      // The append's first bytes never landed: its header is garbage, the records of the
      // cycle before lie past it (LMDB holds them: no damage, nothing to replay).
      const torn = readFileSync(file)
      torn.fill(0xee, RECORDS_AT, RECORDS_AT + 12)
      writeFileSync(file, torn)
      store = openStore(dir, noClock)
      assert.equal(store.lastIndex(), 5)
      assert.deepEqual(store.initialState().hardState, term1(4))
      await store.close()
    })

    it('reads a write-ahead file of the older layout and gives it a file header once a checkpoint covers it', async () => {
      const boot = bootstrapped(noClock)
      const dir = boot.dir
      let store = boot.store
      const file = join(dir, WAL_FILE)
      await appendEach(store, 2, 4, 50)
      await store.close()
      // The same records as an older oncekv wrote them: no file header, checksums from 0.
      const opened = Wal.open(file, 0)
      opened.wal.close()
      assert.equal(opened.records.length, 3)
      const legacy = Buffer.concat(opened.records.map((r) => encodeWalRecord(r, LEGACY_SALT)))
      writeFileSync(file, legacy)
      // And the store as version 4 recorded it: opened, it records the current version.
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.meta.putSync('format', encodeMetaRecord(4)))
      await raw.root.close()
      // A record of the older layout damaged before the end is refused as before.
      const damaged = Buffer.from(legacy)
      flipBit(damaged, 20, 0x01)
      writeFileSync(file, damaged)
      assertCorrupt(
        dir,
        /wal\.log: the record at byte 0 fails its checksum, with \d+ bytes after it/,
      )
      writeFileSync(file, legacy)
      store = openStore(dir, noClock)
      assert.equal(store.lastIndex(), 4)
      assert.deepEqual(store.initialState().hardState, term1(3))
      // open() checkpointed them: the next append cuts the file and gives it a header.
      assert.deepEqual(readFileSync(file), legacy)
      await store.writeReadyAsync({ hardState: term1(4), entries: makeEntries(5, [1], 50) })
      assert.deepEqual(readFileSync(file).subarray(0, 8), FILE_MAGIC)
      store = await reopen(store, dir, noClock)
      assert.equal(store.lastIndex(), 5)
      assert.deepEqual(store.initialState().hardState, term1(4))
      await store.close()
      const check = openRaw(dir)
      try {
        const format = decodeMetaRecord(check.meta.getBinary('format') as Uint8Array)
        assert.deepEqual(format, { ok: true, value: FORMAT_VERSION })
      } finally {
        await check.root.close()
      }
    })

    it('replaces entries in LMDB and in the tail, across a checkpoint and a restart', async () => {
      const boot = bootstrapped(noClock)
      const dir = boot.dir
      let store = boot.store
      // Entries 2-6 in LMDB (a synchronous write is a checkpoint).
      store.writeReady({ hardState: term1(2), entries: makeEntries(2, [1, 1, 1, 1, 1], 10) })
      // A new leader's entries replace 4-6 with 4-5 (term 2): appended, LMDB still holds 4-6.
      await store.writeReadyAsync({
        hardState: { term: 2, vote: 'b', commit: 2 },
        entries: makeEntries(4, [2, 2], 20),
      })
      assert.equal(store.lastIndex(), 5)
      // And the tail itself is replaced from 5 on (term 3), past LMDB's old 6.
      await store.writeReadyAsync({
        hardState: { term: 3, vote: 'c', commit: 2 },
        entries: makeEntries(5, [3, 3, 3], 30),
      })
      const expected = [1, 1, 1, 2, 3, 3, 3]
      const terms = (s: LmdbStore): number[] =>
        s.entries(1 + 1, s.lastIndex() + 1, Infinity).map((e) => e.term)
      assert.equal(store.lastIndex(), 7)
      assert.deepEqual(terms(store), expected.slice(1))
      // Replayed after a crash (no checkpoint ran: the file holds both records).
      store = await reopen(store, dir, noClock)
      assert.equal(store.lastIndex(), 7)
      assert.deepEqual(terms(store), expected.slice(1))
      assert.deepEqual(store.initialState().hardState, { term: 3, vote: 'c', commit: 2 })
      // Shortened by a later leader (term 4) after the checkpoint open() made: LMDB holds
      // 2-7, the new last is 4; a checkpoint must not let 5-7 come back.
      await store.writeReadyAsync({
        hardState: { term: 4, vote: 'a', commit: 2 },
        entries: makeEntries(4, [4], 40),
      })
      store.flushApplied()
      store = await reopen(store, dir, noClock)
      assert.equal(store.lastIndex(), 4)
      assert.deepEqual(terms(store), [1, 1, 4])
      assert.deepEqual(
        store.entries(4, 5, Infinity).map((e) => e.data.byteLength),
        [40],
      )
    })

    it('keeps a vote made durable by an append only (no entries) across a crash', async () => {
      const boot = bootstrapped(noClock)
      let store = boot.store
      await store.writeReadyAsync({ hardState: { term: 5, vote: 'b', commit: 1 }, entries: [] })
      store = await reopen(store, boot.dir, noClock)
      assert.deepEqual(store.initialState().hardState, { term: 5, vote: 'b', commit: 1 })
      await store.close()
      store = openStore(boot.dir, noClock)
      assert.deepEqual(store.initialState().hardState, { term: 5, vote: 'b', commit: 1 })
    })

    it('a checkpoint trims the log below a compaction for the entries the file took too', async () => {
      const { store, dir } = bootstrapped(noClock)
      for (let b = 0; b < 5; b++) appendCommitted(store, 1000)
      store.applyInMemory((t) => t.setApplied(5001))
      store.compactLater(5001, store.initialState().conf)
      // The compaction goes with the next Ready, a checkpoint (which deletes nothing below
      // it: the store served those entries while it committed).
      await store.writeReadyAsync({ hardState: term1(5002), entries: makeEntries(5002, [1]) })
      assert.equal(store.firstIndex(), 5002)
      // Three Readies of 200 entries go to the file; then one is a checkpoint (its window
      // has passed), and deletes twice what it carries (601 entries), at most DELETE_BATCH:
      // 1,000 keys.
      for (let i = 0; i < 3; i++) {
        const next = store.lastIndex() + 1
        const entries = makeEntries(next, new Array<number>(200).fill(1))
        await store.writeReadyAsync({ hardState: term1(5002), entries })
      }
      const next = store.lastIndex() + 1
      assert.equal(next, 5603)
      Object.assign(store, { checkpointMs: 0 }) // as if the window had passed
      await store.writeReadyAsync({ hardState: term1(5002), entries: makeEntries(next, [1]) })
      assert.equal(store.hasPending(), false)
      await store.close()
      // Below the snapshot: 5,000 keys - 1,000 (256 if the 600 were not counted); above it
      // 5002-5603.
      assert.equal(await logKeysInFile(dir), 5000 - 1000 + 602)
    })

    it('is read by a store opened without it, and a version 2 store is upgraded', async () => {
      const { store, dir } = bootstrapped(noClock)
      await store.writeReadyAsync({ hardState: term1(2), entries: makeEntries(2, [1, 1], 10) })
      await store.close()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.meta.putSync('format', encodeMetaRecord(2)))
      await raw.root.close()
      const s = openStore(dir, { wal: false })
      assert.equal(s.lastIndex(), 3)
      await s.writeReadyAsync({ hardState: term1(3), entries: makeEntries(4, [1], 10) })
      await s.close()
      assert.equal(await logKeysInFile(dir), 3)
      const check = openRaw(dir)
      try {
        const format = decodeMetaRecord(check.meta.getBinary('format') as Uint8Array)
        assert.deepEqual(format, { ok: true, value: FORMAT_VERSION })
      } finally {
        await check.root.close()
      }
    })
  })

  describe('compaction', () => {
    it('compacts 50,000 entries in batches and keeps the rest', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      for (let b = 0; b < 50; b++) appendCommitted(store, 1000)
      assert.equal(store.lastIndex(), 50_001)
      store.apply((t) => t.setApplied(50_001))
      store.compact(49_001, store.initialState().conf)
      assert.equal(store.firstIndex(), 49_002)
      assert.equal(store.term(49_001), 1)
      assert.equal(store.term(49_000), undefined)
      assert.equal(store.entries(49_002, 50_002, Infinity).length, 1000)
      assert.throws(() => store.compact(50_002, store.initialState().conf), AssertionError)
      await store.close()
      assert.equal(await logKeysInFile(dir), 1000)
      store = openStore(dir)
      assert.equal(store.firstIndex(), 49_002)
      assert.equal(store.lastIndex(), 50_001)
    })

    it('ignores and deletes entries left below the snapshot by a crash mid-compaction', async () => {
      const { store, dir } = bootstrapped()
      for (let b = 0; b < 5; b++) appendCommitted(store, 1000)
      store.apply((t) => t.setApplied(5001))
      const conf = store.initialState().conf
      await store.close()
      // What compact() commits first, on its own: the snapshot metadata. The crash comes
      // before any entry below it is deleted.
      const raw = openRaw(dir)
      raw.root.transactionSync(() =>
        raw.meta.putSync('snapshot', encodeMetaRecord({ index: 3000, term: 1, conf })),
      )
      await raw.root.close()
      let s = openStore(dir)
      assert.equal(s.firstIndex(), 3001)
      assert.equal(s.lastIndex(), 5001)
      assert.equal(s.term(2999), undefined)
      s = await reopen(s, dir)
      await s.close()
      assert.equal(await logKeysInFile(dir), 2001)
    })

    it('compactLater writes the compaction with the next Ready; later Readies trim the log a batch each', async () => {
      // Every Ready an LMDB transaction (with the write-ahead file, a checkpoint does this).
      const boot = bootstrapped({ wal: false })
      const dir = boot.dir
      let store = boot.store
      for (let b = 0; b < 5; b++) appendCommitted(store, 1000)
      store.applyInMemory((t) => {
        t.putIfAbsent(enc.encode('k'), enc.encode('v'))
        t.setApplied(5001)
      })
      const conf = store.initialState().conf
      store.compactLater(4001, conf)
      store.compactLater(3000, conf) // below the recorded one: nothing
      // Recorded only: the log reads as before, and a crash now loses nothing.
      assert.equal(store.firstIndex(), 2)
      assert.equal(store.hasPending(), true)
      assert.throws(() => store.compactLater(5002, conf), AssertionError)
      // The next Ready's transaction writes the data and the snapshot metadata, and deletes
      // nothing the store still served while it committed.
      await store.writeReadyAsync({
        hardState: { term: 1, vote: 'a', commit: 5002 },
        entries: makeEntries(5002, [1], 10),
      })
      assert.equal(store.firstIndex(), 4002)
      assert.deepEqual(store.snapshot(), { index: 4001, term: 1, conf })
      assert.equal(store.term(4000), undefined)
      assert.equal(store.hasPending(), false)
      assert.equal(store.hasLogToTrim(), true)
      // The Readies after it delete the keys below it: at least 256 each (2..257), and twice
      // their entries when more (300 entries: 258..857).
      await store.writeReadyAsync({
        hardState: { term: 1, vote: 'a', commit: 5003 },
        entries: makeEntries(5003, [1], 10),
      })
      store.writeReady({
        hardState: { term: 1, vote: 'a', commit: 5003 },
        entries: makeEntries(5004, new Array<number>(300).fill(1), 0),
      })
      assert.equal(store.hasLogToTrim(), true)
      assert.equal(store.entries(4002, 5304, Infinity).length, 1302)
      await store.close()
      assert.equal(await logKeysInFile(dir), 5303 - 1 - 256 - 600)
      // Opening again deletes what is left below the snapshot at once.
      store = openStore(dir)
      assert.equal(store.hasLogToTrim(), false)
      assert.equal(store.firstIndex(), 4002)
      assert.deepEqual(store.get(enc.encode('k')), enc.encode('v'))
      assert.equal(store.initialState().applied, 5001)
      await store.close()
      assert.equal(await logKeysInFile(dir), 1302)
    })

    it('flushApplied writes a recorded compaction; trimLog deletes one batch per call', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      const store = boot.store
      for (let b = 0; b < 3; b++) appendCommitted(store, 1000)
      store.applyInMemory((t) => t.setApplied(3001))
      store.compactLater(2500, store.initialState().conf)
      store.flushApplied()
      assert.equal(store.firstIndex(), 2501)
      assert.equal(store.hasPending(), false)
      // 2..2500 left: batches of 1,000, 1,000 and 499.
      let calls = 0
      while (store.hasLogToTrim()) {
        store.trimLog()
        calls++
        assert(calls <= 3, 'trimLog does not finish')
      }
      assert.equal(calls, 3)
      await store.close()
      assert.equal(await logKeysInFile(dir), 501)
    })

    it('drops a recorded compaction that a received snapshot supersedes', async () => {
      const { store } = bootstrapped()
      appendCommitted(store, 100)
      store.apply((t) => t.setApplied(101))
      const conf = store.initialState().conf
      store.compactLater(50, conf)
      store.writeReady({ entries: [], snapshot: { index: 200, term: 3, conf } })
      assert.equal(store.hasPending(), false)
      assert.equal(store.hasLogToTrim(), false)
      assert.deepEqual(store.snapshot(), { index: 200, term: 3, conf })
      assert.equal(store.firstIndex(), 201)
    })
  })

  describe('snapshots', () => {
    it('streams 100,000 pairs from a consistent view into another store', async () => {
      const { store: a } = bootstrapped()
      const n = 100_000
      for (let b = 0; b < n; b += 10_000) {
        commitPuts(
          a,
          Array.from({ length: 10_000 }, (_, i) => pair(b + i)),
        )
      }
      const source = a.snapshotSource()
      // Writes after the view opened are not in it.
      const later = commitPuts(a, [pair(n), pair(n + 1)])
      assert.equal(a.has(pair(n).key), true, 'the store itself reads the newest commit')
      assert.deepEqual(source.meta, {
        index: later - 1,
        term: 1,
        conf: { voters: ['a', 'b'], learners: [] },
      })
      assert.deepEqual(decodeMembers(source.extra), MEMBERS)

      const b = openStore(tempDir())
      const chunkBytes = 64 * 1024
      let chunks = 0
      let pairs = 0
      await b.installSnapshot({
        from: 'a',
        meta: source.meta,
        extra: source.extra,
        chunks: async function* () {
          for await (const chunk of source.chunks(chunkBytes)) {
            const bytes = chunk.reduce((sum, p) => sum + p.key.byteLength + p.value.byteLength, 0)
            assert(bytes <= chunkBytes, `chunk of ${bytes} bytes`)
            chunks++
            pairs += chunk.length
            yield chunk
          }
        },
      })
      source.close()
      b.writeReady({
        entries: [],
        snapshot: source.meta,
        hardState: { term: 1, vote: '', commit: source.meta.index },
      })
      await b.sync()
      assert.equal(pairs, n)
      assert(chunks >= Math.floor((n * 52) / chunkBytes), `${chunks} chunks`)
      assert.equal(b.count(), n)
      for (let i = 0; i < n; i++) {
        const { key, value } = pair(i)
        assert.deepEqual(b.get(key), value)
      }
      assert.equal(b.has(pair(n).key), false)
      assert.deepEqual(b.initialState(), {
        hardState: { term: 1, vote: '', commit: source.meta.index },
        applied: source.meta.index,
        conf: source.meta.conf,
      })
      assert.deepEqual(b.snapshot(), source.meta)
      assert.deepEqual(b.members(), MEMBERS)
      assert.equal(b.isBootstrapped(), true)
    })

    it('yields a pair larger than chunkBytes in a chunk of its own', async () => {
      const { store } = bootstrapped()
      commitPuts(store, [pair(1, 10), pair(2, 5000), pair(3, 10)])
      const source = store.snapshotSource()
      const sizes: number[] = []
      for await (const chunk of source.chunks(1000)) sizes.push(chunk.length)
      source.close()
      assert.deepEqual(sizes, [1, 1, 1])
      await assert.rejects(source.chunks(1000)[Symbol.asyncIterator]().next(), AssertionError)
    })

    it('installs over data it already has, but throws on a key holding other bytes', async () => {
      const { store: a } = bootstrapped()
      commitPuts(a, [pair(1), pair(2), pair(3)])
      const b = openStore(tempDir())
      b.bootstrap(bootstrapSnapshot(['b']), MEMBERS)
      commitPuts(b, [pair(2)])
      const source = a.snapshotSource()
      const incoming = {
        from: 'a',
        meta: source.meta,
        extra: source.extra,
        chunks: () => source.chunks(100),
      }
      await b.installSnapshot(incoming)
      assert.equal(b.count(), 3)

      const c = openStore(tempDir())
      c.bootstrap(bootstrapSnapshot(['c']), MEMBERS)
      commitPuts(c, [{ key: pair(3).key, value: enc.encode('other bytes') }])
      await assert.rejects(
        c.installSnapshot(incoming),
        (err: unknown) =>
          err instanceof StoreCorruptError && /two values committed for one key/.test(err.message),
      )
      source.close()
    })

    it('writeReady with a received snapshot drops the log and sets applied and conf', async () => {
      const boot = bootstrapped()
      const dir = boot.dir
      let store = boot.store
      appendCommitted(store, 30)
      const conf: ConfState = { voters: ['a', 'b', 'c'], learners: [] }
      store.writeReady({
        entries: makeEntries(101, [4, 4]),
        snapshot: { index: 100, term: 4, conf },
        hardState: { term: 4, vote: '', commit: 100 },
      })
      assert.equal(store.firstIndex(), 101)
      assert.equal(store.lastIndex(), 102)
      assert.deepEqual(store.initialState().conf, conf)
      assert.equal(store.initialState().applied, 100)
      store = await reopen(store, dir)
      assert.equal(store.firstIndex(), 101)
      assert.equal(store.lastIndex(), 102)
      assert.equal(store.term(100), 4)
      assert.deepEqual(store.entries(101, 103, Infinity), makeEntries(101, [4, 4]))
      assert.equal(store.initialState().applied, 100)
      await store.close()
      assert.equal(await logKeysInFile(dir), 2)
    })
  })

  describe('the value file', () => {
    // sizes: empty, the largest value a reference holds, the smallest one in the file, and
    // a 1 MiB one.
    const sizes = [0, 32, 33, 4096, 1 << 20]
    const valueOf = (n: number): Uint8Array => pair(n, n).value

    it('keeps big values in values.dat and small ones in the reference, across restarts and snapshots', async () => {
      // Every Ready a checkpoint, so the asynchronous write carries the values.
      const boot = bootstrapped({ checkpointMs: 0 })
      const dir = boot.dir
      let store = boot.store
      const [e] = appendCommitted(store, 2)
      assert(e !== undefined)
      // One half through apply (the values synced within its transaction), the other
      // applied in memory and written with the next Ready, off the event loop.
      store.apply((t) => {
        for (const n of sizes)
          assert.equal(t.putIfAbsent(enc.encode(`a${n}`), valueOf(n)), 'created')
        // Read back before the transaction's values reach the file.
        assert.equal(t.putIfAbsent(enc.encode('a33'), valueOf(33)), 'exists')
        assert.equal(t.putIfAbsent(enc.encode('a33'), valueOf(34).subarray(1)), 'conflict')
        t.setApplied(e.index)
      })
      store.applyInMemory((t) => {
        for (const n of sizes)
          assert.equal(t.putIfAbsent(enc.encode(`b${n}`), valueOf(n)), 'created')
        // The same bytes again are "exists", other bytes a conflict, also for big values.
        assert.equal(t.putIfAbsent(enc.encode('a4096'), valueOf(4096)), 'exists')
        assert.equal(t.putIfAbsent(enc.encode('a4096'), valueOf(4095)), 'conflict')
        t.setApplied(e.index + 1)
      })
      await store.writeReadyAsync({
        hardState: { term: 1, vote: 'a', commit: e.index + 1 },
        entries: [],
      })
      // Stored outside LMDB: 33 + 4096 + 1 MiB, twice.
      const inFile = 2 * (33 + 4096 + (1 << 20))
      assert.equal(statSync(join(dir, VALUES_FILE)).size, inFile)
      store = await reopen(store, dir)
      for (const prefix of ['a', 'b'])
        for (const n of sizes) assert.deepEqual(store.get(enc.encode(`${prefix}${n}`)), valueOf(n))
      assert.equal(store.count(), 2 * sizes.length)
      let again = ''
      store.apply((t) => (again = t.putIfAbsent(enc.encode('b33'), valueOf(33))))
      assert.equal(again, 'exists')
      const source = store.snapshotSource()
      const got = new Map<string, Uint8Array>()
      for await (const chunk of source.chunks(64 * 1024))
        for (const p of chunk) got.set(new TextDecoder().decode(p.key), p.value)
      source.close()
      assert.equal(got.size, 2 * sizes.length)
      for (const n of sizes) assert.deepEqual(got.get(`b${n}`), valueOf(n))
      assert.equal(statSync(join(dir, VALUES_FILE)).size, inFile, 'nothing written twice')
      await store.close()
    })

    it("keeps an applied put's log record in LMDB as a reference to its value, and reads the entry back whole", async () => {
      const boot = bootstrapped({ checkpointMs: Infinity })
      const dir = boot.dir
      let store = boot.store
      const from = store.lastIndex() + 1
      // Entries as the state machine writes puts: a head, then the value.
      const puts = [
        { key: 'big', value: valueOf(4096) }, // in the value file: referred to
        { key: 'small', value: valueOf(20) }, // in its key's reference: kept whole
        { key: 'big', value: valueOf(4000) }, // a conflict, stored nowhere: kept whole
        { key: 'odd', value: valueOf(100) }, // applied with other bytes: kept whole
        { key: 'late', value: valueOf(300) }, // applied after the checkpoint: kept whole
      ]
      const entries: Entry[] = puts.map((p, i) => ({
        index: from + i,
        term: 1,
        type: 'normal',
        data: new Uint8Array(Buffer.concat([enc.encode(`put ${p.key} `), p.value])),
      }))
      const valueIn = (e: Entry, bytes: number): Uint8Array =>
        e.data.subarray(e.data.byteLength - bytes)
      const hardState: HardState = { term: 1, vote: 'a', commit: from + 4 }
      await store.writeReadyAsync({ hardState, entries })
      const outcomes: string[] = []
      store.applyInMemory((t) => {
        puts.slice(0, 3).forEach((p, i) => {
          const e = entries[i] as Entry
          outcomes.push(t.putIfAbsent(enc.encode(p.key), valueIn(e, p.value.byteLength), e.index))
        })
        const odd = puts[3]?.value.map((b) => b ^ 1) as Uint8Array
        outcomes.push(t.putIfAbsent(enc.encode('odd'), odd, from + 3))
        t.setApplied(from + 3)
      })
      assert.deepEqual(outcomes, ['created', 'created', 'conflict', 'created'])
      store.flushApplied() // the checkpoint
      assert.deepEqual(store.entries(from, from + 5, Infinity), entries)
      store = await reopen(store, dir)
      assert.deepEqual(store.entries(from, from + 5, Infinity), entries)
      assert.deepEqual(store.get(enc.encode('big')), valueOf(4096))
      store.apply((t) => {
        const late = entries[4] as Entry
        assert.equal(t.putIfAbsent(enc.encode('late'), valueIn(late, 300), late.index), 'created')
        t.setApplied(late.index)
      })
      await store.close()
      // LMDB holds entry `from` as 8 bytes of head and a reference, the others whole.
      const raw = openRaw(dir)
      const sizes = entries.map((e) => raw.log.getBinary(e.index)?.byteLength)
      assert.deepEqual(sizes, [
        37 + 8,
        ...entries.slice(1).map((e) => encodeLogRecord(e).byteLength),
      ])
      await raw.root.close()
      // The value file damaged where the entry's value is: the entry (and the key) read as
      // damaged, never handed out.
      const file = join(dir, VALUES_FILE)
      const bytes = readFileSync(file)
      flipBit(bytes, 10, 0x04)
      writeFileSync(file, bytes)
      store = openStore(dir)
      assert.deepEqual(store.entries(from + 1, from + 5, Infinity), entries.slice(1))
      assert.throws(
        () => store.entries(from, from + 1, Infinity),
        (err: unknown) =>
          err instanceof StoreCorruptError &&
          /log entry \d+: its 4096 bytes at 0 in the value file fail their checksum/.test(
            err.message,
          ),
      )
      assert.throws(() => store.get(enc.encode('big')), ValueCorruptError)
      await store.close()
      // Such a record past the applied index was never written: the store is refused.
      const again = openRaw(dir)
      again.root.transactionSync(() => again.meta.putSync('applied', encodeMetaRecord(from - 1)))
      await again.root.close()
      assertCorrupt(
        dir,
        new RegExp(`log entry ${from} refers to the value file but is not applied`),
      )
    })

    it('refers to values from a checkpoint off the event loop too, for entries applied before their Ready is written', async () => {
      const { store, dir } = bootstrapped({ checkpointMs: Infinity })
      const from = store.lastIndex() + 1
      const put = (index: number): Entry => ({
        index,
        term: 1,
        type: 'normal',
        data: new Uint8Array(Buffer.concat([enc.encode(`put k${index} `), valueOf(4096)])),
      })
      const [first, second, third] = [put(from), put(from + 1), put(from + 2)]
      const term1 = (commit: number): HardState => ({ term: 1, vote: 'a', commit })
      const valueIn = (e: Entry): Uint8Array => e.data.subarray(e.data.byteLength - 4096)
      // The first through the write-ahead file, applied after.
      await store.writeReadyAsync({ hardState: term1(from - 1), entries: [first] })
      store.applyInMemory((t) => {
        t.putIfAbsent(enc.encode(`k${from}`), valueIn(first), first.index)
        t.setApplied(first.index)
      })
      // The second and third applied in memory before their Ready is written (a follower
      // learning entries and their commit at once); the third's put carries an index the
      // applied index does not cover, as no caller should: its record stays whole.
      store.applyInMemory(
        (t) => {
          t.putIfAbsent(enc.encode(`k${from + 1}`), valueIn(second), second.index)
          t.putIfAbsent(enc.encode(`k${from + 2}`), valueIn(third), third.index)
          t.setApplied(second.index)
        },
        { first: second.index, last: third.index },
      )
      Object.assign(store, { checkpointMs: 0 }) // this Ready is a checkpoint
      await store.writeReadyAsync({ hardState: term1(third.index), entries: [second, third] })
      assert.equal(store.hasPending(), false)
      assert.deepEqual(store.entries(from, from + 3, Infinity), [first, second, third])
      await store.close()
      const raw = openRaw(dir)
      const sizes = [first, second, third].map((e) => raw.log.getBinary(e.index)?.byteLength)
      await raw.root.close()
      const head = `put k${from} `.length
      assert.deepEqual(sizes, [37 + head, 37 + head, encodeLogRecord(third).byteLength])
      const again = openStore(dir)
      assert.deepEqual(again.entries(from, from + 3, Infinity), [first, second, third])
    })

    it('cuts bytes past the recorded end, and refuses a file shorter than it or missing', async () => {
      const { store, dir } = bootstrapped()
      commitPuts(store, [pair(1, 100), pair(2, 100)])
      await store.close()
      const file = join(dir, VALUES_FILE)
      const full = readFileSync(file)
      assert.equal(full.byteLength, 200)
      writeFileSync(file, full.subarray(0, 150))
      assertCorrupt(dir, /values\.dat holds 150 bytes, and the data file refers to 200/)
      rmSync(file)
      assertCorrupt(dir, /values\.dat is missing, and the data file refers to 200 bytes in it/)
      // A crash after the values were written but before their transaction committed.
      writeFileSync(file, Buffer.concat([full, Buffer.alloc(77, 1)]))
      let s = openStore(dir)
      assert.deepEqual(s.get(pair(2).key), pair(2, 100).value)
      assert.equal(statSync(file).size, 200)
      // Appends go on from the recorded end.
      commitPuts(s, [pair(3, 100)])
      s = await reopen(s, dir)
      assert.deepEqual(s.get(pair(3).key), pair(3, 100).value)
      assert.deepEqual(s.get(pair(1).key), pair(1, 100).value)
      await s.close()
      assert.equal(statSync(file).size, 300)
    })

    it('upgrades a version 3 store, moving its values out of LMDB and keeping a damaged one damaged', async () => {
      const { store, dir } = bootstrapped()
      await store.close()
      // What version 3 wrote: each value after its checksum, in 'kv'.
      const raw = openRaw(dir)
      const kv = raw.root.openDB<Uint8Array, Uint8Array>('kv', { encoding: 'binary' })
      const pairs = Array.from({ length: 25_000 }, (_, i) => pair(i, i % 3 === 0 ? 10 : 100))
      const damaged = encodeValueRecord(pair(7).key, pair(7, 100).value)
      flipBit(damaged, 50, 0x01)
      raw.root.transactionSync(() => {
        for (const p of pairs) kv.putSync(p.key, encodeValueRecord(p.key, p.value))
        kv.putSync(pair(7).key, damaged)
        raw.meta.putSync('format', encodeMetaRecord(3))
      })
      await raw.root.close()
      const s = openStore(dir)
      assert.equal(s.count(), pairs.length)
      for (const i of [0, 1, 2, 24_999])
        assert.deepEqual(s.get(pairs[i]?.key as Uint8Array), pairs[i]?.value)
      assert.throws(() => s.get(pair(7).key), ValueCorruptError)
      await s.close()
      // The values of 100 B moved to the value file, those of 10 B into their references.
      const big = pairs.filter((p) => p.value.byteLength > 32).length
      assert.equal(statSync(join(dir, VALUES_FILE)).size, big * 100)
      const check = openRaw(dir)
      try {
        const old = check.root.openDB<Uint8Array, Uint8Array>('kv', { encoding: 'binary' })
        assert.equal(old.getKeysCount(), 0)
        assert.deepEqual(decodeMetaRecord(check.meta.getBinary('format') as Uint8Array), {
          ok: true,
          value: FORMAT_VERSION,
        })
        // An upgrade cut short: the version is new already (an older oncekv refuses the
        // store), a value is still in 'kv'.
        const late = pair(30_000, 100)
        check.root.transactionSync(() =>
          old.putSync(late.key, encodeValueRecord(late.key, late.value)),
        )
      } finally {
        await check.root.close()
      }
      const resumed = openStore(dir)
      assert.deepEqual(resumed.get(pair(30_000).key), pair(30_000, 100).value)
      assert.equal(resumed.count(), pairs.length + 1)
      await resumed.close()
    })

    it('fails stop when the value file cannot be synced, and the data file never refers to what was lost', async () => {
      const { store, dir } = bootstrapped({ checkpointMs: 0 })
      const [e] = appendCommitted(store, 1)
      assert(e !== undefined)
      store.applyInMemory((t) => {
        t.putIfAbsent(enc.encode('lost'), valueOf(100))
        t.setApplied(e.index)
      })
      const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 })
      const values = (store as unknown as { values: { flushAsync(): Promise<void> } }).values
      values.flushAsync = () => Promise.reject(eio)
      await assert.rejects(
        store.writeReadyAsync({ hardState: { term: 1, vote: 'a', commit: e.index }, entries: [] }),
      )
      assert.throws(() => store.get(enc.encode('lost')), /stopped after a failed write/)
      await store.close()
      // Nothing of that Ready reached LMDB: the store opens, as of before it (the entry
      // is in the log, to be applied again).
      const s = openStore(dir)
      assert.equal(s.has(enc.encode('lost')), false)
      assert.equal(s.initialState().applied, 1)
      assert.equal(s.lastIndex(), e.index)
      await s.close()
    })
  })

  describe('corruption', () => {
    // Each test writes a healthy store, closes it, damages it the way a disk or a crash
    // could, and expects open() to refuse it with a StoreCorruptError naming the dir.

    async function healthyStore(entries = 200): Promise<string> {
      const { store, dir } = bootstrapped()
      const es = makeEntries(2, new Array<number>(entries).fill(1), 64)
      // The newest entry carries a marker the byte-flipping test can find in the file.
      es[es.length - 1] = {
        ...makeEntry(entries + 1, 1),
        data: enc.encode('TAIL-ENTRY-MARKER-' + 'x'.repeat(64)),
      }
      store.writeReady({ entries: es, hardState: { term: 1, vote: 'a', commit: entries + 1 } })
      await store.close()
      return dir
    }

    it('never serves, replicates or overwrites a value that fails its checksum', async () => {
      const { store, dir } = bootstrapped()
      const good = enc.encode('good-value')
      const damaged = enc.encode('VALUE-MARKER-' + 'v'.repeat(40))
      store.apply((t) => {
        t.putIfAbsent(enc.encode('good'), good)
        t.putIfAbsent(enc.encode('damaged'), damaged)
        t.putIfAbsent(enc.encode('moved'), enc.encode('moved-value'))
        t.setApplied(1)
      })
      await store.close()
      // A bit flipped on disk inside one value (in the value file); and another value's
      // reference copied under a third key (a misdirected write): its bytes are intact, its
      // key is not the one it was stored with.
      const file = join(dir, VALUES_FILE)
      const bytes = readFileSync(file)
      const marker = Buffer.from('VALUE-MARKER-')
      let flipped = 0
      for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
        flipBit(bytes, at + marker.byteLength + 5, 0x04)
        flipped++
      }
      assert(flipped > 0, 'marker not found in the value file')
      writeFileSync(file, bytes)
      const raw = openRaw(dir)
      const kv = raw.root.openDB<Uint8Array, Uint8Array>('keys', { encoding: 'binary' })
      const goodRecord = kv.getBinary(enc.encode('good'))
      assert(goodRecord)
      // And a reference into the value file whose length has its top byte set: it must not
      // be read (4 GiB) but reported.
      const damagedRef = new Uint8Array(kv.getBinary(enc.encode('damaged')) as Uint8Array)
      assert.equal(damagedRef.byteLength, 17)
      damagedRef[8] = 0xff
      raw.root.transactionSync(() => {
        kv.putSync(enc.encode('moved'), new Uint8Array(goodRecord))
        kv.putSync(enc.encode('huge'), damagedRef)
      })
      await raw.root.close()

      const reopened = LmdbStore.open(dir)
      try {
        assert.deepEqual(reopened.get(enc.encode('good')), good)
        for (const key of ['damaged', 'moved', 'huge']) {
          assert.throws(
            () => reopened.get(enc.encode(key)),
            (e: unknown) =>
              e instanceof ValueCorruptError &&
              e.keyHex === `0x${Buffer.from(key).toString('hex')}` &&
              /fails its checksum/.test(e.message),
          )
        }
        // A snapshot never ships the damaged value.
        const source = reopened.snapshotSource()
        await assert.rejects(async () => {
          for await (const chunk of source.chunks(1 << 20)) void chunk
        }, ValueCorruptError)
        source.close()
        // A write to that key cannot say "exists" or "conflict": the store stops.
        assert.throws(
          () => reopened.apply((t) => t.putIfAbsent(enc.encode('damaged'), damaged)),
          ValueCorruptError,
        )
      } finally {
        await reopened.close().catch(() => undefined)
      }
    })

    it('refuses a store of the older layout with a message that says what to do', async () => {
      const { store, dir } = bootstrapped()
      await store.close()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.meta.putSync('format', encodeMetaRecord(1)))
      await raw.root.close()
      assertCorrupt(
        dir,
        /layout is version 1, written by an older oncekv; .*start the member empty with --join/,
      )
    })

    it('catches a garbled byte inside the newest log record (bit rot, torn tail)', async () => {
      const dir = await healthyStore()
      const file = join(dir, 'data.mdb')
      const bytes = readFileSync(file)
      const marker = Buffer.from('TAIL-ENTRY-MARKER-')
      let flipped = 0
      for (let at = bytes.indexOf(marker); at >= 0; at = bytes.indexOf(marker, at + 1)) {
        flipBit(bytes, at + marker.byteLength + 3, 0x20) // one bit of the entry's data
        flipped++
      }
      assert(flipped > 0, 'marker not found in the data file')
      writeFileSync(file, bytes)
      assertCorrupt(dir, /log record 201 fails its checksum/)
    })

    it('catches a record whose header was rewritten (term changed, CRC not)', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      const record = encodeLogRecord(makeEntry(201, 1, 64))
      flipBit(record, 12, 0x01) // a bit of the term
      raw.root.transactionSync(() => raw.log.putSync(201, record))
      await raw.root.close()
      assertCorrupt(dir, /log record 201 fails its checksum/)
    })

    it('catches a gap in the middle of the log', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.log.removeSync(100))
      await raw.root.close()
      assertCorrupt(dir, /the log from 2 to 201 holds 199 entries, not 200: it has gaps/)
    })

    it('catches a log that does not start right after the snapshot', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.log.removeSync(2))
      await raw.root.close()
      assertCorrupt(dir, /the log resumes at 3 but the snapshot ends at 1/)
    })

    it('catches a lost log tail (the commit index points past the last entry)', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => {
        for (let i = 150; i <= 201; i++) raw.log.removeSync(i)
      })
      await raw.root.close()
      assertCorrupt(dir, /commit index 201 is past the last entry 149/)
    })

    it('catches an unreadable metadata record', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      raw.root.transactionSync(() => raw.meta.putSync('hardState', enc.encode('garbage!')))
      await raw.root.close()
      assertCorrupt(dir, /metadata record 'hardState' is unreadable: bad checksum/)
    })

    it('catches a metadata record of the wrong shape', async () => {
      const dir = await healthyStore()
      const raw = openRaw(dir)
      raw.root.transactionSync(() =>
        raw.meta.putSync('snapshot', encodeMetaRecord({ index: 'one' })),
      )
      await raw.root.close()
      assertCorrupt(dir, /metadata record 'snapshot' has a bad shape/)
    })

    it('catches a truncated data file before LMDB maps it', async () => {
      // LMDB itself dies with SIGBUS on a truncated file; the header check runs first.
      const dir = await healthyStore(2000)
      truncateSync(join(dir, 'data.mdb'), 2 * 4096)
      assertCorrupt(dir, /the file was truncated/)
    })

    it('catches a zeroed header before LMDB maps it', async () => {
      // LMDB itself dies with SIGSEGV on this; the header check runs first.
      const dir = await healthyStore()
      const fd = openSync(join(dir, 'data.mdb'), 'r+')
      writeSync(fd, new Uint8Array(8192), 0, 8192, 0)
      closeSync(fd)
      assertCorrupt(dir, /first meta page is not a meta page/)
    })

    it('refuses a data file that is not an LMDB file', () => {
      const dir = tempDir()
      writeFileSync(join(dir, 'data.mdb'), Buffer.alloc(65536, 0x41))
      assertCorrupt(dir, /first meta page/)
    })

    it('reopens a healthy store after all', async () => {
      const dir = await healthyStore()
      const s = openStore(dir)
      assert.equal(s.lastIndex(), 201)
    })
  })

  describe('lifecycle', () => {
    it('refuses calls after close, and closes open snapshot sources', async () => {
      const { store } = bootstrapped()
      commitPuts(store, [pair(1)])
      const source = store.snapshotSource()
      await store.close()
      assert.throws(() => store.get(pair(1).key), /is closed/)
      await assert.rejects(store.sync(), /is closed/)
      await assert.rejects(source.chunks(100)[Symbol.asyncIterator]().next(), AssertionError)
      await store.close()
    })
  })
})
