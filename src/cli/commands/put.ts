// `oncekv put KEY [VALUE]`: write a value once. The value is VALUE as UTF-8 text, the bytes of
// --file, or stdin when neither is given and stdin is not a terminal.
import type { Command } from 'commander'
import { readFile } from 'node:fs/promises'
import { OnceKV } from '../../client/index.ts'
import {
  addClientFlags,
  clientOptions,
  fail,
  failWith,
  usage,
  writeOut,
  type ClientFlags,
} from './client-flags.ts'

interface PutFlags extends ClientFlags {
  file?: string
}

/** registerPut adds the put command. */
export function registerPut(program: Command): void {
  addClientFlags(
    program
      .command('put')
      .description(
        'write a value under a key, once: prints "created", or "already there (same value)"; ' +
          'exit 3 if another value is there',
      )
      .argument('<key>', 'the key: 1 to 1024 bytes of UTF-8')
      .argument('[value]', "the value as text ('' for an empty one; else --file, else stdin)")
      .option('-f, --file <path>', 'read the value from a file, bytes as they are'),
  ).action(async (key: string, value: string | undefined, flags: PutFlags) => {
    if (value !== undefined && flags.file !== undefined)
      usage('put', 'give VALUE or --file, not both')
    let bytes: Uint8Array | string
    if (flags.file !== undefined) {
      try {
        bytes = await readFile(flags.file)
      } catch (e) {
        fail('put', `cannot read ${flags.file}: ${(e as Error).message}`)
      }
    } else if (value !== undefined) {
      bytes = value
    } else if (process.stdin.isTTY) {
      usage('put', 'give VALUE, --file PATH, or pipe the value on stdin')
    } else {
      bytes = await readStdin()
      // A key is written once: an empty value read from a forgotten or closed stdin would stay
      // for good. An empty value must be asked for: oncekv put KEY ''
      if (bytes.byteLength === 0) usage('put', "stdin was empty; to put an empty value, give ''")
    }
    const opts = clientOptions(flags, 'put', 'write')
    const client = new OnceKV(opts)
    let created: boolean
    try {
      created = (await client.put(key, bytes)).created
    } catch (e) {
      failWith('put', e, 'write', opts.token !== undefined)
    }
    await writeOut(created ? 'created\n' : 'already there (same value)\n')
  })
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
