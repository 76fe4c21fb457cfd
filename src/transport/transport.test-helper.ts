// What the transport's test files share: cleanups run after the file, in reverse order, and a
// condition wait with a deadline.
import { after } from 'node:test'

/** cleanups run after the file's tests, last registered first. */
export const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

/** waitFor polls cond until it holds, failing with what after timeoutMs. */
export async function waitFor(
  what: string,
  cond: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
