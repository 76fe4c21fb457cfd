// The package as another project gets it: `npm pack` (which runs `prepare`: the dashboard and
// the client's build into dist/client), the tarball installed into a fresh project, then
// `import { OnceKV } from 'oncekv'` from plain ESM, a TypeScript file type-checked against the
// shipped declarations (once with browser types only, once with Node's, then with the README's
// pooled fetch through undici), and the CLI started from the installed copy.
//
// The install uses `--omit=dev --ignore-scripts --prefer-offline`: only the package's runtime
// dependencies, from npm's cache when it has them (the registry otherwise), and no install
// scripts (lmdb's native binary comes prebuilt in an optional dependency anyway).
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

/** run runs a command and resolves to its stdout; it rejects with its output on failure. */
function run(
  cmd: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 180_000,
): Promise<string> {
  const env: Record<string, string | undefined> = {}
  // Not the outer npm's per-run settings (npm test exports its config as npm_* variables),
  // nor the test runner's.
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('npm_') && k !== 'NODE_OPTIONS' && k !== 'NODE_TEST_CONTEXT') env[k] = v
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(
              `${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`,
            ),
          )
        else resolve(stdout)
      },
    )
  })
}

const CONSUMER_TS = `
import {
  InvalidKeyError,
  KeyConflictError,
  OnceKV,
  OnceKVError,
  TimeoutError,
  UnavailableError,
  ValueTooLargeError,
  type NodeInfo,
  type OnceKVOptions,
  type PutResult,
} from 'oncekv'

const opts: OnceKVOptions = {
  admin: 'http://127.0.0.1:5546',
  timeoutMs: 1000,
  retries: 2,
  token: 'secret',
  fetch: (input, init) => fetch(input, init),
}
const kv = new OnceKV(opts)

export async function demo(): Promise<void> {
  const r: PutResult = await kv.put('k', new Uint8Array([0, 1]), { signal: AbortSignal.timeout(100) })
  const s: PutResult = await kv.put('k', 'text')
  const v: Uint8Array | undefined = await kv.get('k')
  const t: string | undefined = await kv.getString('k', { timeoutMs: 50 })
  const h: boolean = await kv.has('k')
  const many: PutResult[] = await kv.putMany([['a', 'b']], { concurrency: 4, batchTimeoutMs: 500 })
  const values: (Uint8Array | undefined)[] = await kv.getMany(['a'])
  const dbs: readonly NodeInfo[] = kv.nodes().dbs
  try {
    await kv.put('k', 'x')
  } catch (e) {
    if (e instanceof KeyConflictError) {
      const etag: string | undefined = e.etag
      const code: number = e.code
      console.log(etag, code, e.key)
    } else if (e instanceof OnceKVError) {
      const status: number | undefined = e.status
      const said: string | undefined = e.serverMessage
      console.log(status, said, e.message)
    }
  }
  console.log(r, s, v, t, h, many, values, dbs, InvalidKeyError, TimeoutError, UnavailableError, ValueTooLargeError)
  // @ts-expect-error a put needs a value
  await kv.put('k')
  // @ts-expect-error values are strings or bytes
  await kv.put('k', 42)
}
`

// The README's pooled fetch, as written there: undici comes with the package (a dependency).
// It needs Node's types (undici's name them), so only the Node check compiles it.
const POOLED_TS = `
import { Agent, fetch as undiciFetch } from 'undici'
import { OnceKV, type FetchLike } from 'oncekv'

const agent = new Agent({ connections: 8 }) // at most 8 connections to each node
export const kv = new OnceKV({
  admin: 'http://127.0.0.1:5546',
  fetch: (input, init) => undiciFetch(input, { ...init, dispatcher: agent }),
})
// The global fetch, and a function typed as it, fit too.
export const plain = new OnceKV({ dbs: ['http://127.0.0.1:11000'], fetch })
const wrapped: typeof fetch = (input, init) => fetch(input, init)
export const viaWrapper: FetchLike = wrapped
`

const CONSUMER_MJS = `
import * as oncekv from 'oncekv'
import { OnceKV, KeyConflictError, OnceKVError } from 'oncekv'
const kv = new OnceKV({ dbs: ['http://127.0.0.1:9'], caches: ['127.0.0.1:8'] })
const e = new KeyConflictError('k', '"etag"')
console.log(JSON.stringify({
  exports: Object.keys(oncekv).sort(),
  put: typeof kv.put,
  nodes: kv.nodes().dbs.length + kv.nodes().caches.length,
  conflict: e instanceof OnceKVError && e.code === 1003 && e.etag === '"etag"',
}))
`

describe('the npm package', () => {
  it('packs, installs into another project and serves the client and the CLI', async (t) => {
    const tmp = mkdtempSync(join(tmpdir(), 'oncekv-pack-'))
    try {
      let started = performance.now()
      const lap = (what: string): void => {
        t.diagnostic(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`)
        started = performance.now()
      }
      await run('npm', ['pack', '--pack-destination', tmp], REPO_ROOT)
      const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'))
      assert.ok(tarball, 'npm pack made no tarball')
      lap('npm pack (with prepare)')

      const listed = (await run('tar', ['-tzf', join(tmp, tarball)], tmp)).split('\n')
      for (const f of [
        'package/package.json',
        'package/README.md',
        'package/bin/oncekv.js',
        'package/dist/client/index.js',
        'package/dist/client/index.d.ts',
        'package/src/cli/main.ts',
        'package/src/client/client.ts',
        'package/web/dist/index.html',
      ])
        assert.ok(listed.includes(f), `${f} is not in the package`)
      assert.deepEqual(
        listed.filter((f) => /\.test\.ts$|^package\/(test|bench|node_modules)\//.test(f)),
        [],
      )

      const project = join(tmp, 'project')
      mkdirSync(project)
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
      )
      await run(
        'npm',
        [
          'install',
          join(tmp, tarball),
          '--omit=dev',
          '--ignore-scripts',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
        ],
        project,
      )
      lap('npm install of the tarball')

      // Plain ESM.
      writeFileSync(join(project, 'check.mjs'), CONSUMER_MJS)
      const out = JSON.parse(await run(process.execPath, ['check.mjs'], project)) as {
        exports: string[]
        put: string
        nodes: number
        conflict: boolean
      }
      for (const name of [
        'OnceKV',
        'OnceKVError',
        'KeyConflictError',
        'InvalidKeyError',
        'ValueTooLargeError',
        'UnavailableError',
        'TimeoutError',
      ])
        assert.ok(out.exports.includes(name), `${name} is not exported: ${out.exports.join(', ')}`)
      assert.equal(out.put, 'function')
      assert.equal(out.nodes, 2)
      assert.equal(out.conflict, true)

      // The declarations name nothing of Node.js.
      const dts = join(project, 'node_modules', 'oncekv', 'dist', 'client')
      for (const f of readdirSync(dts).filter((f) => f.endsWith('.d.ts'))) {
        const text = readFileSync(join(dts, f), 'utf8')
        assert.doesNotMatch(text, /\bNodeJS\b|\bBuffer\b|from ['"]node:|types="node"/, f)
      }
      // A TypeScript consumer type-checks against them, with browser types only and with
      // Node's types only.
      writeFileSync(join(project, 'consumer.ts'), CONSUMER_TS)
      writeFileSync(join(project, 'pooled.ts'), POOLED_TS)
      // The browser check also checks the shipped .d.ts themselves (not TypeScript's own
      // libraries: skipDefaultLibCheck), so a Node.js type they named would fail it.
      const base = {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
      }
      writeFileSync(
        join(project, 'tsconfig.browser.json'),
        JSON.stringify({
          compilerOptions: {
            ...base,
            lib: ['ES2022', 'DOM'],
            types: [],
            skipDefaultLibCheck: true,
          },
          files: ['consumer.ts'],
        }),
      )
      writeFileSync(
        join(project, 'tsconfig.node.json'),
        JSON.stringify({
          compilerOptions: {
            ...base,
            lib: ['ES2022'],
            types: ['node'],
            skipLibCheck: true,
            typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
          },
          files: ['consumer.ts', 'pooled.ts'],
        }),
      )
      await Promise.all(
        ['tsconfig.browser.json', 'tsconfig.node.json'].map((c) =>
          run(process.execPath, [TSC, '-p', c], project),
        ),
      )
      lap('ESM import and two type-checks')

      // The CLI runs from the installed copy (TypeScript sources through tsx).
      const version = await run(
        process.execPath,
        [join(project, 'node_modules', 'oncekv', 'bin', 'oncekv.js'), '--version'],
        project,
      )
      const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        version: string
      }
      assert.equal(version.trim(), pkg.version)
      lap('oncekv --version from the installed package')
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})
