// The body of one simulator worker thread (see sim-pool.ts): it plays the runs it was given,
// in order, and posts one message per run (its summary or its failure) and a final 'done'.
// It stops at its first failure unless told to go on.
import { parentPort, workerData } from 'node:worker_threads'
import { SimFailure } from './sim-trace.ts'
import { runSeed } from './simulation.ts'
import type { WorkerJob, WorkerReport } from './sim-pool.ts'

const job = workerData as WorkerJob
const port = parentPort
if (port === null) throw new Error('sim-worker runs in a worker thread only')

for (const options of job.runs) {
  let report: WorkerReport
  try {
    report = { kind: 'ok', summary: runSeed(options) }
  } catch (err) {
    if (!(err instanceof SimFailure)) {
      const e = err instanceof Error ? err : new Error(String(err))
      report = { kind: 'error', seed: options.seed, message: e.stack ?? e.message }
    } else {
      report = {
        kind: 'fail',
        seed: err.seed,
        invariant: err.invariant,
        message: err.message,
        replay: err.replay,
      }
    }
  }
  port.postMessage(report)
  if (report.kind !== 'ok' && job.stopOnFailure) break
}
port.postMessage({ kind: 'done' } satisfies WorkerReport)
