// The base layer: assertions and seeded randomness. It imports nothing.
export { assert, assertNever, AssertionError } from './assert.ts'
export { SeededRng, type Rng } from './rng.ts'
