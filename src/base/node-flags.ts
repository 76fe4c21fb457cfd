// Node.js and V8 flags a process was started with. V8 takes '-' and '_' alike in a flag's
// name, and a value after '=' or as the next argument, so flags compare by their names only.

/** flagName is a flag's name: what comes before any '=', with '_' read as '-'. */
export function flagName(flag: string): string {
  return (flag.split('=')[0] ?? flag).replaceAll('_', '-')
}

/** anyFlagGiven says whether given (process.execArgv, or NODE_OPTIONS split on spaces) holds
 * a flag of the same name as one of flags, whatever its value. */
export function anyFlagGiven(given: readonly string[], flags: readonly string[]): boolean {
  const names = new Set(flags.map(flagName))
  return given.some((a) => names.has(flagName(a)))
}
