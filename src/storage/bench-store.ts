// A benchmark of LmdbStore's durable writes, not a test: for group commits of 1, 16 and 64
// entries (100-byte data), how many writeReady + sync rounds and entries per second; then
// how fast the state machine's apply transaction and snapshot streaming go. Run it with
//   node --import tsx src/storage/bench-store.ts [secondsPerCase]
// Figures on a shared machine are noisy (±30 %): read them as orders of magnitude.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bootstrapSnapshot, type Entry } from '../raft/index.ts'
import { LmdbStore } from './lmdb-store.ts'

const secondsPerCase = Number(process.argv[2] ?? '2')
const VALUE_BYTES = 100

function entriesAfter(store: LmdbStore, count: number, term: number): Entry[] {
  const from = store.lastIndex() + 1
  const out: Entry[] = []
  for (let i = 0; i < count; i++) {
    out.push({ index: from + i, term, type: 'normal', data: new Uint8Array(VALUE_BYTES).fill(i) })
  }
  return out
}

function rate(n: number, ms: number): string {
  return Math.round((n * 1000) / ms).toLocaleString('en-US')
}

async function benchGroupCommit(store: LmdbStore, group: number): Promise<void> {
  const start = performance.now()
  let rounds = 0
  while (performance.now() - start < secondsPerCase * 1000) {
    const entries = entriesAfter(store, group, 1)
    const last = entries.at(-1)?.index ?? 0
    store.writeReady({ entries, hardState: { term: 1, vote: 'a', commit: last } })
    await store.sync()
    rounds++
  }
  const ms = performance.now() - start
  console.log(
    `group commit ${String(group).padStart(2)}: ${rate(rounds, ms).padStart(7)} durable ` +
      `commits/s, ${rate(rounds * group, ms).padStart(8)} entries/s, ` +
      `${((ms * 1000) / rounds).toFixed(0)} µs per commit`,
  )
}

async function benchApply(store: LmdbStore, batch: number): Promise<number> {
  const start = performance.now()
  let puts = 0
  let next = 0
  while (performance.now() - start < secondsPerCase * 1000) {
    const entries = entriesAfter(store, 1, 1)
    const index = entries[0]?.index ?? 0
    store.writeReady({ entries, hardState: { term: 1, vote: 'a', commit: index } })
    store.apply((t) => {
      for (let i = 0; i < batch; i++) {
        const key = new TextEncoder().encode(`bench/${(next++).toString().padStart(9, '0')}`)
        t.putIfAbsent(key, new Uint8Array(VALUE_BYTES).fill(i))
      }
      t.setApplied(index)
    })
    await store.sync()
    puts += batch
  }
  const ms = performance.now() - start
  console.log(
    `apply ${batch} puts + log entry per round: ${rate(puts, ms).padStart(8)} durable puts/s`,
  )
  return puts
}

async function benchSnapshot(from: LmdbStore, pairs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-bench-'))
  const to = LmdbStore.open(dir)
  try {
    const source = from.snapshotSource()
    const start = performance.now()
    let bytes = 0
    await to.installSnapshot({
      from: 'a',
      meta: source.meta,
      extra: source.extra,
      chunks: async function* () {
        for await (const chunk of source.chunks(1 << 20)) {
          for (const p of chunk) bytes += p.key.byteLength + p.value.byteLength
          yield chunk
        }
      },
    })
    source.close()
    const ms = performance.now() - start
    console.log(
      `snapshot stream of ${pairs.toLocaleString('en-US')} pairs, 1 MiB chunks, store to ` +
        `store: ${rate(pairs, ms)} pairs/s, ${(((bytes / ms) * 1000) / 2 ** 20).toFixed(1)} MiB/s`,
    )
  } finally {
    await to.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'oncekv-bench-'))
  const store = LmdbStore.open(dir)
  try {
    store.bootstrap(bootstrapSnapshot(['a']), { a: { http: 'http://h:1', raft: 'h:2' } })
    console.log(`LmdbStore durable writes, ${VALUE_BYTES}-byte entries, ${secondsPerCase} s/case`)
    for (const group of [1, 16, 64]) await benchGroupCommit(store, group)
    const puts = await benchApply(store, 64)
    await benchSnapshot(store, puts)
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
