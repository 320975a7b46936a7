/**
 * Bounded pipelining for producers that read input faster than the cluster acknowledges it (a CLI fed by
 * `tail -F`): at most `limit` appends outstanding; `push` waits for the oldest once the limit is reached,
 * so memory stays flat however long the input runs. Each result is handed to `onResult` as soon as it and
 * every earlier one are in (in order), not when the window fills.
 */
export class Pipeline<T> {
  private readonly queue: Array<Promise<T>> = []
  private delivered: Promise<void> = Promise.resolve()
  private failure: unknown

  constructor(private readonly limit: number, private readonly onResult: (value: T) => void = () => undefined) {}

  /** Start `op` now; resolves once there is room for the next one. Rethrows the first failure. */
  async push(op: () => Promise<T>): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const p = op()
    p.catch(err => { this.failure ??= err })
    this.delivered = this.delivered.then(() => p).then(v => {
      if (this.failure === undefined) this.onResult(v)
    }, () => undefined)
    this.queue.push(p)
    while (this.queue.length >= this.limit) await this.shiftOne()
  }

  private async shiftOne(): Promise<void> {
    try {
      await this.queue.shift()!
    } catch (err) {
      this.failure ??= err
      throw this.failure
    }
  }

  /** Wait for everything pushed (and delivered); rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.shiftOne()
    await this.delivered
    if (this.failure !== undefined) throw this.failure
  }
}
