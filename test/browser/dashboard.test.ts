// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core)
// against a whole local system started the way users start it (`oncekv dev`): the cards and
// the Leader tag appear, the tag moves when the leader is killed and the dead member shows as
// down, a put through the form and a lookup work and a second put shows the conflict, the
// page fits a phone-width screen, and an admin with no nodes says how to start some.
// Screenshots of each state go to test-artifacts/dashboard/ (not committed).
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { AdminOverview } from '../../src/protocol/index.ts'
import { freePort, waitFor } from '../e2e/cluster.ts'

// The few DOM names the page-side functions below use (they run in the browser; the project's
// type-check has no DOM library, so they are declared here, for this file only).
interface PageElement {
  getAttribute(name: string): string | null
  closest(selector: string): PageElement | null
  readonly textContent: string | null
}
declare const document: {
  querySelectorAll(selector: string): ArrayLike<PageElement>
  querySelector(selector: string): PageElement | null
  readonly documentElement: { readonly scrollWidth: number }
}
declare const window: { readonly innerWidth: number }

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'oncekv.js')
const SHOTS = join(ROOT, 'test-artifacts', 'dashboard')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

interface Dev {
  child: ChildProcess
  output: string
  adminUrl: string
  pids: Map<string, number>
}

/** startDev runs `oncekv dev` in a temp folder and reads its banner. */
async function startDev(dir: string): Promise<Dev> {
  const child = spawn(process.execPath, [BIN, 'dev', '--data', dir, '--fresh'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const dev: Dev = { child, output: '', adminUrl: '', pids: new Map() }
  child.stdout?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  child.stderr?.on('data', (d: Buffer) => (dev.output += d.toString('utf8')))
  await waitFor(
    'oncekv dev to be up',
    () => {
      if (child.exitCode !== null) throw new Error(`oncekv dev exited: ${dev.output}`)
      return dev.output.includes('Ctrl-C stops everything')
    },
    { timeoutMs: 90_000, intervalMs: 100 },
  )
  const admin = /dashboard\s+(http:\/\/\S+)\s+\(admin pid (\d+)\)/.exec(dev.output)
  assert.ok(admin, dev.output)
  dev.adminUrl = admin[1] as string
  dev.pids.set('admin', Number(admin[2]))
  for (const m of dev.output.matchAll(/^\s+(?:database|cache)\s+(\w+)\s.*pid (\d+)$/gm))
    dev.pids.set(m[1] as string, Number(m[2]))
  return dev
}

/** StopOutcome is how `oncekv dev` ended: its exit, and the children still alive after it. */
interface StopOutcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly clean: boolean
  readonly leftovers: string[]
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** stopDev stops it with Ctrl-C's signal and says how that went; if it hangs, or children
 * outlive it, they are killed (the outcome still says so). */
async function stopDev(dev: Dev): Promise<StopOutcome | undefined> {
  if (dev.child.exitCode !== null || dev.child.signalCode !== null) return undefined
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    dev.child.once('exit', (code, signal) => r([code, signal])),
  )
  dev.child.kill('SIGINT')
  const result = await Promise.race([
    exited,
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 30_000)),
  ])
  let leftovers: string[] = []
  if (result) {
    // dev waits for its children; give the kernel a moment to reap the last of them.
    await waitFor('every child of oncekv dev to be gone', () =>
      [...dev.pids.values()].every((pid) => !alive(pid)),
    ).catch(() => undefined)
    leftovers = [...dev.pids].filter(([, pid]) => alive(pid)).map(([id]) => id)
  }
  for (const pid of dev.pids.values()) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  if (!result) dev.child.kill('SIGKILL')
  return {
    code: result?.[0] ?? null,
    signal: result?.[1] ?? null,
    clean: result !== undefined,
    leftovers,
  }
}

async function overview(dev: Dev): Promise<AdminOverview> {
  return (await (await fetch(`${dev.adminUrl}/overview`)).json()) as AdminOverview
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

describe('dashboard in a browser', { timeout: 240_000 }, () => {
  let dir: string
  let dev: Dev | undefined
  let browser: Browser | undefined
  let page: Page

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `no browser at ${CHROMIUM}: install Debian's chromium (.ci/run does)`,
    )
    assert.ok(
      existsSync(join(ROOT, 'web', 'dist', 'index.html')),
      'the dashboard is not built: npm run build:web',
    )
    mkdirSync(SHOTS, { recursive: true })
    dir = mkdtempSync(join(tmpdir(), 'oncekv-browser-'))
    dev = await startDev(join(dir, 'dev'))
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  })

  after(async () => {
    await browser?.close().catch(() => {})
    if (dev) await stopDev(dev)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('shows a card per node and one Leader tag', async () => {
    const d = dev as Dev
    await page.goto(d.adminUrl)
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=node-card]').length === 6,
      null,
      { timeout: 20_000 },
    )
    await page.waitForFunction(
      () => document.querySelectorAll('[data-testid=node-card][data-health=up]').length === 6,
      null,
      { timeout: 20_000 },
    )
    assert.equal(await page.locator('[data-testid=node-card][data-kind=db]').count(), 3)
    assert.equal(await page.locator('[data-testid=node-card][data-kind=cache]').count(), 3)
    assert.equal(await page.locator('[data-testid=leader-tag]').count(), 1)
    const leader = (await overview(d)).leader
    const tagged = page.locator('[data-testid=node-card]', {
      has: page.locator('[data-testid=leader-tag]'),
    })
    assert.equal(await tagged.getAttribute('data-node-id'), leader)
    await shot(page, '1-all-up')
  })

  it('moves the Leader tag when the leader is killed, and shows the dead member as down', async () => {
    const d = dev as Dev
    const old = (await overview(d)).leader
    assert.ok(old)
    const pid = d.pids.get(old)
    assert.ok(pid, `no pid for ${old} in ${d.output}`)
    process.kill(pid, 'SIGKILL')
    await page.waitForFunction(
      (oldId) => {
        const tags = document.querySelectorAll('[data-testid=leader-tag]')
        if (tags.length !== 1) return false
        const card = tags[0]?.closest('[data-testid=node-card]')
        const dead = document.querySelector(`[data-testid=node-card][data-node-id="${oldId}"]`)
        return (
          card?.getAttribute('data-node-id') !== oldId &&
          dead?.getAttribute('data-health') === 'down'
        )
      },
      old,
      { timeout: 30_000 },
    )
    await shot(page, '2-leader-moved')
  })

  it('puts a key through the form, looks it up, and shows a conflict on another value', async () => {
    const key = `browser-${Date.now()}`
    await page.fill('[data-testid=put-key]', key)
    await page.fill('[data-testid=put-value]', 'first value')
    await page.click('[data-testid=put-button]')
    await page.waitForSelector('[data-testid=put-result][data-outcome=created]', {
      timeout: 20_000,
    })
    await page.fill('[data-testid=lookup-input]', key)
    await page.click('[data-testid=lookup-button]')
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid=lookup-result]')?.textContent?.includes('first value'),
      null,
      { timeout: 20_000 },
    )
    await shot(page, '3-put-and-lookup')
    await page.fill('[data-testid=put-value]', 'second value')
    await page.click('[data-testid=put-button]')
    await page.waitForSelector('[data-testid=put-result][data-outcome=conflict]', {
      timeout: 20_000,
    })
    const text = await page.locator('[data-testid=put-result]').innerText()
    assert.match(text, /first value/, 'the conflict shows the value that stays')
    await shot(page, '4-conflict')
  })

  it('fits a phone-width screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 })
    await page.waitForTimeout(300)
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    )
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`)
    await shot(page, '5-phone')
  })

  it('says how to start nodes when there are none', async () => {
    const port = await freePort()
    const nowhere = await freePort()
    const admin = spawn(
      process.execPath,
      [BIN, 'admin', '--http', `127.0.0.1:${port}`, '--db', `http://127.0.0.1:${nowhere}`],
      {
        cwd: ROOT,
        stdio: 'ignore',
      },
    )
    try {
      const p = await (browser as Browser).newPage({ viewport: { width: 1280, height: 800 } })
      await waitFor(
        'the empty admin to answer',
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
      )
      await p.goto(`http://127.0.0.1:${port}/`)
      const empty = p.locator('[data-testid=empty-state]')
      await empty.waitFor({ timeout: 20_000 })
      assert.match(await empty.innerText(), /npm run dev|oncekv dev/)
      await shot(p, '6-empty')
      await p.close()
    } finally {
      admin.kill('SIGKILL')
    }
  })

  it('stops cleanly on Ctrl-C: exit code 0 and no process left', async () => {
    const d = dev as Dev
    assert.ok(d.pids.size >= 7, `pids from the banner: ${[...d.pids.keys()].join(', ')}`)
    const out = await stopDev(d)
    assert.ok(out, 'oncekv dev had already exited')
    assert.ok(out.clean, 'oncekv dev did not exit within 30 s of SIGINT')
    assert.equal(out.code, 0, d.output.slice(-2000))
    assert.deepEqual(out.leftovers, [])
  })
})
