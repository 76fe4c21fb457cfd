export * from './secrets.ts'
export * from './tls.ts'
export * from './options.ts'
