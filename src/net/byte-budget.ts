/**
 * A FIFO limit on request-body bytes in flight to one bookie. It exists because an HTTP/2 session holding
 * more than nghttp2's maxSessionMemory of unsent bodies (10 MB unless raised; undici cannot raise it) resets
 * its own streams with ENHANCE_YOUR_CALM. A request larger than the whole budget still goes, alone.
 * Waiting is FIFO so that a large batch is not starved by a stream of small ones.
 */
interface Waiter {
  bytes: number
  resolve: () => void
}

export class ByteBudget {
  private used = 0
  private readonly queue: Waiter[] = []

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.used
  }

  /** Resolves when `bytes` may go; rejects with the signal's reason if it is aborted while waiting. */
  acquire(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.queue.length === 0 && this.fits(bytes)) {
      this.used += bytes
      return Promise.resolve()
    }
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise((resolve, reject) => {
      const w: Waiter = {bytes, resolve: () => { signal.removeEventListener('abort', onAbort); resolve() }}
      const onAbort = (): void => {
        const i = this.queue.indexOf(w)
        if (i >= 0) this.queue.splice(i, 1)
        reject(signal.reason)
        this.grant() // the waiter behind it may fit now
      }
      signal.addEventListener('abort', onAbort, {once: true})
      this.queue.push(w)
    })
  }

  release(bytes: number): void {
    this.used -= bytes
    this.grant()
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit
  }

  private grant(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!
      this.used += w.bytes
      w.resolve()
    }
  }
}
