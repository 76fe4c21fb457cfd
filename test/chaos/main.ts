// `npm run chaos -- --minutes M [--seed S] [--members 3|5] [--clients N] [--bug skip-read-index]
// [--out DIR]`: one long chaos run (run.ts), then its summary; exit code 1 on any violation.
// Replay a run with the seed it prints (the fault schedule and the clients' choices follow the
// seed; timing on a real machine does not, so a replay is similar, not identical).
import { join } from 'node:path'
import { scriptArgs } from '../script-args.ts'
import { formatViolation } from './checker.ts'
import { FAULT_KINDS, type FaultKind } from './nemesis.ts'
import { runChaos } from './run.ts'

const values = scriptArgs(
  'usage: npm run chaos -- [--minutes 5] [--seed S] [--members 3|5] [--clients 16] ' +
    '[--faults kind,...] [--bug skip-read-index] [--out DIR]',
  {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    members: { type: 'string', default: '3' },
    clients: { type: 'string', default: '16' },
    faults: { type: 'string' },
    bug: { type: 'string' },
    out: { type: 'string' },
  },
)

function fail(msg: string): never {
  console.error(`chaos: ${msg}`)
  process.exit(2)
}

const minutes = Number(values.minutes)
if (!(minutes > 0)) fail('--minutes must be a positive number')
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
if (!Number.isSafeInteger(seed) || seed < 0) fail('--seed must be a non-negative integer')
const members = Number(values.members)
if (members !== 3 && members !== 5) fail('--members must be 3 or 5')
const clients = Number(values.clients)
if (!Number.isInteger(clients) || clients < 1) fail('--clients must be a positive integer')
const kinds = values.faults === undefined ? FAULT_KINDS : (values.faults.split(',') as FaultKind[])
for (const k of kinds)
  if (!FAULT_KINDS.includes(k)) fail(`unknown fault ${k}; known: ${FAULT_KINDS.join(', ')}`)
if (values.bug !== undefined && values.bug !== 'skip-read-index')
  fail('--bug must be skip-read-index')
const outDir =
  values.out ??
  join('chaos-results', `seed-${seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`)

console.log(
  `chaos: seed ${seed}, ${minutes} min, ${members} members, 3 caches, ${clients} clients, faults ${kinds.join(',')}` +
    (values.bug ? `, deliberate bug ${values.bug}` : ''),
)
console.log(
  `replay: npm run chaos -- --minutes ${minutes} --seed ${seed} --members ${members} --clients ${clients}` +
    (values.faults ? ` --faults ${values.faults}` : '') +
    (values.bug ? ` --bug ${values.bug}` : ''),
)
const started = Date.now()
const result = await runChaos({
  seed,
  durationMs: minutes * 60_000,
  members,
  clients,
  kinds,
  bug: values.bug as 'skip-read-index' | undefined,
  outDir,
  progress: (line) => console.log(line),
})
console.log(`\nchaos: done in ${((Date.now() - started) / 1000).toFixed(0)} s, seed ${seed}`)
console.log(`operations: ${result.ops}`)
for (const [k, n] of Object.entries(result.outcomes).sort()) console.log(`  ${k}: ${n}`)
console.log(
  `faults: ${
    Object.entries(result.faults)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none'
  }`,
)
console.log(
  `keys per member: ${Object.entries(result.keysPerMember)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')}`,
)
console.log(`violations: ${result.violations.length}`)
for (const v of result.violations.slice(0, 20)) console.log(formatViolation(v))
console.log(`history, faults and summary kept in ${outDir}`)
process.exit(result.violations.length > 0 ? 1 : 0)
