// Option parsers shared by the CLI's commands.
import { InvalidArgumentError } from 'commander'

/** intOption parses a non-negative integer flag value. */
export function intOption(value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError(`${value} is not a non-negative integer`)
  return n
}
