// scriptArgs parses the command line of a developer script (chaos, fuzz, the benchmarks) with
// node:util's parseArgs, strictly: --help (or -h) prints the usage and exits 0; an unknown
// option or a missing value prints what is wrong and the usage, and exits 2, instead of a
// stack trace; usageError does the same for a value the script finds wrong.
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

let usageText = ''

/** usageError prints message and the usage scriptArgs was given, and exits 2: for an option
 * whose value is wrong. */
export function usageError(message: string): never {
  console.error(`${message}\n${usageText}`)
  process.exit(2)
}

export function scriptArgs<const O extends Options>(
  usage: string,
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'] {
  usageText = usage
  if (process.argv.slice(2).some((a) => a === '--help' || a === '-h')) {
    console.log(usage)
    process.exit(0)
  }
  try {
    return parseArgs({ options, strict: true }).values
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`)
    process.exit(2)
  }
}
