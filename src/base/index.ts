// The base layer: assertions, seeded randomness and flag names. It imports nothing.
export { assert, assertNever, AssertionError } from './assert.ts'
export { SeededRng, type Rng } from './rng.ts'
export { anyFlagGiven, flagName } from './node-flags.ts'
