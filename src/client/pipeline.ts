/**
 * Bounded pipelining for producers that read input faster than the cluster acknowledges it (a CLI fed by
 * `tail -F`): at most `limit` appends outstanding; `push` waits for the oldest once the limit is reached,
 * so memory stays flat however long the input runs. Results are delivered in order.
 */
export class Pipeline<T> {
  private readonly queue: Array<Promise<T>> = []
  private failure: unknown

  constructor(private readonly limit: number, private readonly onResult: (value: T) => void = () => undefined) {}

  /** Start `op` now; resolves once there is room for the next one. Rethrows the first failure. */
  async push(op: () => Promise<T>): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    const p = op()
    p.catch(err => { this.failure ??= err })
    this.queue.push(p)
    while (this.queue.length >= this.limit) await this.shiftOne()
  }

  private async shiftOne(): Promise<void> {
    const p = this.queue.shift()!
    try {
      this.onResult(await p)
    } catch (err) {
      this.failure ??= err
      throw this.failure
    }
  }

  /** Wait for everything pushed; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.shiftOne()
    if (this.failure !== undefined) throw this.failure
  }
}
