// Runs many seeded simulations on worker threads (one per core, two at most by default): each
// worker gets every n-th run, so all workers see the same mix. Runs stay deterministic: a run
// depends on its options alone, never on which worker plays it or when. Workers load the
// TypeScript sources through tsx's loader, registered from an evaluated bootstrap because a
// worker's entry file is loaded before any --import hook of the parent applies to it.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { RunSummary, SimulationOptions } from './simulation.ts'

/** WorkerJob is what one worker is asked to play. */
export interface WorkerJob {
  readonly runs: readonly SimulationOptions[]
  readonly stopOnFailure: boolean
}

/** WorkerReport is one message from a worker. */
export type WorkerReport =
  | { readonly kind: 'ok'; readonly summary: RunSummary }
  | {
      readonly kind: 'fail'
      readonly seed: number
      readonly invariant: string
      readonly message: string
      readonly replay: string
    }
  | { readonly kind: 'error'; readonly seed: number; readonly message: string }
  | { readonly kind: 'done' }

/** PoolResult gathers what every worker reported. */
export interface PoolResult {
  readonly passed: RunSummary[]
  readonly failures: Extract<WorkerReport, { kind: 'fail' | 'error' }>[]
}

/** PoolOptions tune runPool. */
export interface PoolOptions {
  /** workers defaults to min(2, available cores). */
  readonly workers?: number
  /** stopOnFailure makes each worker stop at its first failure (default true). */
  readonly stopOnFailure?: boolean
  /** onReport hears each report as it arrives (progress printing). */
  readonly onReport?: (r: WorkerReport) => void
}

/** runPool plays every run on worker threads and resolves when all workers are done. */
export async function runPool(
  runs: readonly SimulationOptions[],
  options: PoolOptions = {},
): Promise<PoolResult> {
  const n = Math.max(
    1,
    Math.min(options.workers ?? Math.min(2, availableParallelism()), runs.length),
  )
  const passed: RunSummary[] = []
  const failures: Extract<WorkerReport, { kind: 'fail' | 'error' }>[] = []
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const entry = new URL('./sim-worker.ts', import.meta.url).href
  const bootstrap =
    `import(${JSON.stringify(tsxApi)})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}) })`
  const jobs = Array.from({ length: n }, (_, w) => ({
    runs: runs.filter((_, i) => i % n === w),
    stopOnFailure: options.stopOnFailure ?? true,
  }))
  await Promise.all(
    jobs.map(
      (job) =>
        new Promise<void>((resolve, reject) => {
          const worker = new Worker(bootstrap, { eval: true, workerData: job })
          let done = false
          worker.on('message', (r: WorkerReport) => {
            options.onReport?.(r)
            if (r.kind === 'ok') passed.push(r.summary)
            else if (r.kind === 'done') done = true
            else failures.push(r)
          })
          worker.on('error', reject)
          worker.on('exit', (code) => {
            if (done) resolve()
            else reject(new Error(`a simulator worker exited with code ${code} before it was done`))
          })
        }),
    ),
  )
  failures.sort((a, b) => a.seed - b.seed)
  return { passed, failures }
}
