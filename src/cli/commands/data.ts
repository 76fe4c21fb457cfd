// The CLI's data commands (put, get, status, bench), and the exit code of usage errors.
import type { Command, CommanderError } from 'commander'
import { registerBench } from './bench.ts'
import { EXIT } from './client-flags.ts'
import { registerGet } from './get.ts'
import { registerPut } from './put.ts'
import { registerStatus } from './status.ts'

/** registerDataCommands adds put, get, status and bench. */
export function registerDataCommands(program: Command): void {
  registerPut(program)
  registerGet(program)
  registerStatus(program)
  registerBench(program)
}

/** exitTwoOnUsageErrors makes commander's usage errors (an unknown option or command, a
 * missing or invalid argument, no command at all) exit with 2, on the program and on every
 * command registered so far; help and --version still exit with 0, and cmd.error() keeps
 * the exit code it is given. Call it after registering every command. */
export function exitTwoOnUsageErrors(program: Command): void {
  const onExit = (err: CommanderError): never => {
    if (err.exitCode === 0) process.exit(0)
    process.exit(err.code === 'commander.error' ? err.exitCode : EXIT.usage)
  }
  const apply = (cmd: Command): void => {
    cmd.exitOverride(onExit)
    for (const sub of cmd.commands) apply(sub)
  }
  apply(program)
}
