/**
 * Wait for conditions that events make true: call `notify()` after each event (a line from a child, an
 * entry read), and `until(cond, what)` resolves once `cond()` holds or rejects after `ms`. Never a sleep.
 */
export class Conditions {
  private readonly waiters = new Set<() => void>()

  notify(): void {
    for (const w of [...this.waiters]) w()
  }

  until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
    if (cond()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`not within ${ms} ms: ${what}`))
      }, ms)
      const check = (): void => {
        if (!cond()) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve()
      }
      this.waiters.add(check)
    })
  }
}
