// Single flight: concurrent calls for one key share one execution (groupcache's
// singleflight). Once it settles, the next call runs again: results are not kept here.

/** SingleFlight de-duplicates concurrent work by key. */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>()

  /** do runs fn for key unless a call for key is in flight, in which case it joins it;
   * joined is true for calls that did not run fn. */
  do(key: string, fn: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const running = this.inFlight.get(key)
    if (running) return { promise: running, joined: true }
    const promise = (async () => {
      try {
        return await fn()
      } finally {
        this.inFlight.delete(key)
      }
    })()
    this.inFlight.set(key, promise)
    return { promise, joined: false }
  }

  /** size is the number of keys in flight. */
  get size(): number {
    return this.inFlight.size
  }
}
