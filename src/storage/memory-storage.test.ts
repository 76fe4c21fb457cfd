// Runs the shared LogStorage suite against the core's MemoryStorage (the simulator's log), so
// it and LmdbStore are held to one behaviour.
import { MemoryStorage } from '../raft/index.ts'
import { runLogStorageSuite } from './log-storage.suite.ts'

runLogStorageSuite('MemoryStorage', () => {
  const storage = new MemoryStorage()
  return {
    storage,
    append: (entries) => storage.append(entries),
    applySnapshot: (meta) => storage.applySnapshot(meta),
    compact: (index, conf) => storage.compact(index, conf),
    close: () => undefined,
  }
})
