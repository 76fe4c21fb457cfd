// The oncekv command line: parses arguments and calls the libraries. Each subcommand lives in
// its own module; this file only wires them up.
import { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { registerAdmin } from './commands/admin.ts'
import { registerCache } from './commands/cache.ts'
import { registerDb } from './commands/db.ts'
import { exitTwoOnUsageErrors, registerDataCommands } from './commands/data.ts'
import { registerDev } from './commands/dev.ts'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

const program = new Command()
program
  .name('oncekv')
  .description('oncekv: a write-once key/value database (Raft-replicated, cached)')
  .version(pkg.version)

// A reader of stdout that goes away (`oncekv get k | head -c1`) ends the output, not the
// process with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0)
  throw e
})

registerDb(program)
registerCache(program)
registerAdmin(program)
registerDev(program)
registerDataCommands(program)
exitTwoOnUsageErrors(program)

await program.parseAsync(process.argv)
