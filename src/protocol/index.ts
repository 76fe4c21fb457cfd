// The HTTP API's shared vocabulary: error classes and codes, key and value rules, and the
// JSON shapes of responses. Imports nothing from the rest of the project.
export * from './errors.ts'
export * from './keys.ts'
export * from './shapes.ts'
export * from './urls.ts'
