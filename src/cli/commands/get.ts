// `oncekv get KEY`: the value's bytes as they are, on stdout or into --out. Exit 4 when the key
// has no value.
import type { Command } from 'commander'
import { writeFile } from 'node:fs/promises'
import { OnceKV } from '../../client/index.ts'
import {
  addClientFlags,
  clientOptions,
  EXIT,
  fail,
  failWith,
  writeOut,
  type ClientFlags,
} from './client-flags.ts'

interface GetFlags extends ClientFlags {
  out?: string
}

/** registerGet adds the get command. */
export function registerGet(program: Command): void {
  addClientFlags(
    program
      .command('get')
      .description('read the value of a key: raw bytes on stdout (or --out); exit 4 if none')
      .argument('<key>', 'the key')
      .option('-o, --out <path>', 'write the value to this file instead of stdout'),
  ).action(async (key: string, flags: GetFlags) => {
    const opts = clientOptions(flags, 'get', 'read')
    const client = new OnceKV(opts)
    let value: Uint8Array | undefined
    try {
      value = await client.get(key)
    } catch (e) {
      failWith('get', e, 'read', opts.token !== undefined)
    }
    if (value === undefined) fail('get', `key ${JSON.stringify(key)} not found`, EXIT.notFound)
    if (flags.out === undefined) {
      await writeOut(value)
      return
    }
    try {
      await writeFile(flags.out, value)
    } catch (e) {
      fail('get', `cannot write ${flags.out}: ${(e as Error).message}`)
    }
  })
}
