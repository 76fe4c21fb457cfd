// `npm run fuzz -- [--runs N] [--seed S] [--auth]`: the HTTP fuzzer of test/fuzz/http-fuzz.ts,
// long. It starts a system of its own (one member, the admin, a cache node; with --auth
// protected by tokens and a cluster secret, which the requests send now and then, right or
// wrong) on free loopback ports,
// sends N random requests (100,000 by default) with a progress line, checks every answer,
// then that every process is alive and that the keys written are the keys answered
// "created". Exit code 0 when all holds, 1 otherwise (the failures are printed).
import { scriptArgs } from '../script-args.ts'
import { Cluster } from '../e2e/cluster.ts'
import { FUZZ_SECRETS, runFuzz, startFuzzSystem } from './http-fuzz.ts'

const values = scriptArgs('usage: npm run fuzz -- [--runs 100000] [--seed S] [--auth]', {
  runs: { type: 'string', default: '100000' },
  seed: { type: 'string' },
  auth: { type: 'boolean', default: false },
})
const runs = Number(values.runs)
const seed = values.seed === undefined ? (Math.random() * 2 ** 31) >>> 0 : Number(values.seed)
if (!Number.isSafeInteger(runs) || runs < 1 || !Number.isSafeInteger(seed)) {
  console.error('npm run fuzz: --runs and --seed take whole numbers')
  process.exit(2)
}
console.log(
  `fuzz: ${runs} requests, seed ${seed}${values.auth ? ', tokens on' : ''} (replay: npm run fuzz -- --seed ${seed} --runs ${runs}${values.auth ? ' --auth' : ''})`,
)

const env = values.auth ? FUZZ_SECRETS : undefined
const cluster = await Cluster.start({
  name: 'fuzz',
  size: 1,
  maxValueBytes: 65536,
  ...(env ? { env } : {}),
})
let failed: boolean
const stop = (): void => {
  void cluster.close().then(() => process.exit(130))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
try {
  const { targets, member, processes } = await startFuzzSystem(cluster, env)
  const keysBefore = (await member.stats()).keys
  const started = Date.now()
  const report = await runFuzz({
    targets,
    seed,
    runs,
    tokens: env ? [...Object.values(env), 'fuzz-wrong-token-0123456789abcdef'] : [],
    onProgress: (r) =>
      process.stderr.write(
        `\r${r.requests}/${runs} requests, ${r.failures.length} failures, ` +
          `${Math.round(r.requests / ((Date.now() - started) / 1000))}/s   `,
      ),
  })
  process.stderr.write('\n')
  const dead = processes.filter((p) => !p.running).map((p) => p.id)
  const keysAfter = (await member.stats()).keys
  console.log(`by status: ${JSON.stringify(report.byStatus)}`)
  console.log(`by listener: ${JSON.stringify(report.byTarget)}`)
  console.log(`keys created: ${report.created}; keys added to the store: ${keysAfter - keysBefore}`)
  for (const f of report.failures.slice(0, 50)) console.log(`FAIL ${f}`)
  if (dead.length > 0) console.log(`FAIL processes that died: ${dead.join(', ')}`)
  const keysOk = keysAfter - keysBefore === report.created
  if (!keysOk) console.log('FAIL the store gained keys that no answer reported created')
  failed = report.failures.length > 0 || dead.length > 0 || !keysOk
  console.log(failed ? `fuzz: FAILED (seed ${seed})` : `fuzz: ok, ${report.requests} requests`)
} finally {
  await cluster.close()
}
process.exit(failed ? 1 : 0)
