// The geometry of a sparkline: SVG paths for a series placed by time over a fixed window.
// Kept apart from the component so it can be tested without a browser.

/** SparkPoint is one point of a sparkline; a null value leaves a gap. */
export interface SparkPoint {
  readonly time: number
  readonly value: number | null
}

/** SparkOptions size and scale a sparkline. */
export interface SparkOptions {
  readonly width: number
  readonly height: number
  /** end is the window's right edge (ms since the epoch). */
  readonly end: number
  readonly windowMs: number
  /** max fixes the top of the scale (1 for ratios); undefined: the largest value. */
  readonly max: number | undefined
  /** gapMs: consecutive points further apart than this are not joined. */
  readonly gapMs: number
}

/** SparkPaths are the line, the area under it, and the newest drawn point. */
export interface SparkPaths {
  readonly line: string
  readonly area: string
  readonly last: { readonly x: number; readonly y: number } | undefined
}

const PAD = 2
/** RIGHT_PAD keeps the newest point's dot whole at the right edge. */
const RIGHT_PAD = 3

/** sparkPaths draws the points inside the window; points before it are left out. */
export function sparkPaths(points: readonly SparkPoint[], o: SparkOptions): SparkPaths {
  const start = o.end - o.windowMs
  let top = o.max ?? 0
  if (o.max === undefined)
    for (const p of points) if (p.value !== null) top = Math.max(top, p.value)
  if (top <= 0) top = 1
  const x = (t: number): number => PAD + ((t - start) / o.windowMs) * (o.width - PAD - RIGHT_PAD)
  const y = (v: number): number =>
    o.height - PAD - (Math.min(Math.max(v, 0), top) / top) * (o.height - 2 * PAD)
  const xy = (px: number, py: number): string => `${px.toFixed(1)},${py.toFixed(1)}`

  let line = ''
  let area = ''
  let run: { x: number; y: number }[] = []
  let last: { x: number; y: number } | undefined
  const closeRun = (): void => {
    const first = run[0]
    const final = run[run.length - 1]
    if (!first || !final) return
    // A lone point (between two gaps) is drawn as a 2 px dash, or it would not show at all.
    const pts = run.length === 1 ? [first, { x: first.x + 2, y: first.y }] : run
    const path = pts.map((p) => xy(p.x, p.y)).join('L')
    line += `M${path}`
    area += `M${xy(first.x, o.height)}L${path}L${xy(pts[pts.length - 1]?.x ?? final.x, o.height)}Z`
    run = []
  }
  let prevTime = -Infinity
  for (const p of points) {
    if (p.time < start) continue
    if (p.time - prevTime > o.gapMs) closeRun()
    prevTime = p.time
    if (p.value === null) {
      closeRun()
      continue
    }
    last = { x: x(p.time), y: y(p.value) }
    run.push(last)
  }
  closeRun()
  return { line, area, last }
}
