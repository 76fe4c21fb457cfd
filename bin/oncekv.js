#!/usr/bin/env node
// The oncekv command. It runs the compiled JavaScript in build/ (`npm run build:server`, part
// of `npm ci`'s prepare step) when that build is newer than every source file: a process then
// starts without the TypeScript loader (about 28 MiB less resident memory per process, and no
// loader thread). Otherwise, as in a checkout being edited, it loads the TypeScript sources
// through tsx, so a change is never run stale and a fresh clone runs without a build step.
// ONCEKV_FROM_SOURCE=1 always takes the sources.
import { existsSync, readdirSync, statSync } from 'node:fs'
import process from 'node:process'
import { URL } from 'node:url'

const built = new URL('../build/cli/main.js', import.meta.url)
const stamp = new URL('../build/.stamp', import.meta.url)

/** newest is the latest modification time under dir (files and folders: a rename counts). */
function newest(dir) {
  let latest = statSync(dir).mtimeMs
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = new URL(e.name + (e.isDirectory() ? '/' : ''), dir)
    latest = Math.max(latest, e.isDirectory() ? newest(path) : statSync(path).mtimeMs)
  }
  return latest
}

function buildIsFresh() {
  if (process.env.ONCEKV_FROM_SOURCE === '1' || !existsSync(built) || !existsSync(stamp))
    return false
  const sources = Math.max(
    newest(new URL('../src/', import.meta.url)),
    statSync(new URL('../tsconfig.server.json', import.meta.url)).mtimeMs,
  )
  return statSync(stamp).mtimeMs >= sources
}

if (buildIsFresh()) {
  await import(built.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/cli/main.ts')
}
