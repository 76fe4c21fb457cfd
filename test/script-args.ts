// scriptArgs parses the command line of a developer script (chaos, fuzz, the benchmarks) with
// node:util's parseArgs, strictly: --help (or -h) prints the usage and exits 0; an unknown
// option or a missing value prints what is wrong and the usage, and exits 2, instead of a
// stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

export function scriptArgs<const O extends Options>(
  usage: string,
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'] {
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
