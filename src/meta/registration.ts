/**
 * A bookie registration, the part both drivers share: the refresh timer (every ttl/3, so two refreshes can
 * fail before the liveness expires), one-at-a-time ordering of refresh, update and close, and the end of
 * life (closed by the owner, or lost to a newer registration of the same bookie id). The driver supplies
 * only the three store operations (LivenessBackend): a heartbeat row in SQLite, a lease in etcd.
 */
import {ErrorCode, LogError, isLogError} from '../errors.js'
import type {BookieInfo, BookieRegistration} from './store.js'
import {checkBookieInfo} from './validate.js'

export interface LivenessBackend {
  /** Extend liveness by one ttl. BAD_VERSION when another registration owns the bookie id now. */
  refresh(): Promise<void>
  /** Replace the published info and extend liveness. BAD_VERSION as above. */
  publish(info: BookieInfo): Promise<void>
  /** Mark the bookie down now, if this registration still owns it. */
  release(): Promise<void>
}

export class Registration implements BookieRegistration {
  readonly #controller = new AbortController()
  readonly signal: AbortSignal = this.#controller.signal
  /** The last queued operation: refresh, update and close never overlap (etcd's lease re-grant relies on it). */
  #tail: Promise<unknown> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined

  constructor(
    readonly bookieId: string,
    private readonly backend: LivenessBackend,
    private readonly intervalMs: number,
    private readonly onEnd: (r: Registration) => void,
  ) {
    this.#schedule()
  }

  update(info: BookieInfo): Promise<void> {
    let checked: BookieInfo
    try {
      checked = checkBookieInfo(info)
    } catch (err) {
      return Promise.reject(err)
    }
    if (checked.id !== this.bookieId) {
      return Promise.reject(new LogError(ErrorCode.BAD_INPUT, `this registration is for bookie ${this.bookieId}, not ${checked.id}`))
    }
    return this.#run(() => this.backend.publish(checked))
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#timer)
      await this.#tail
      const lost = this.signal.aborted
      this.#end(new LogError(ErrorCode.CLOSED, `registration of bookie ${this.bookieId} is closed`))
      // A lost registration no longer owns the id: marking it down would mark the new owner down.
      if (!lost) await this.backend.release()
    })()
    return this.#closing
  }

  #schedule(): void {
    this.#timer = setTimeout(() => { void this.#beat() }, this.intervalMs)
    // Liveness must not hold a process open: a process that is otherwise done exits and its liveness expires.
    this.#timer.unref()
  }

  async #beat(): Promise<void> {
    try {
      await this.#run(() => this.backend.refresh())
    } catch {
      // Transient (store unreachable) or final (lost, closed): #run has ended the registration in the final
      // cases; otherwise the next beat tries again, well before the ttl runs out.
    }
    if (!this.signal.aborted) this.#schedule()
  }

  #run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(() => {
      if (this.signal.aborted) throw this.signal.reason
      return op()
    })
    this.#tail = p.catch(() => undefined)
    return p.catch((err: unknown) => {
      if (isLogError(err) && err.code === ErrorCode.BAD_VERSION) this.#end(err)
      throw err
    })
  }

  #end(reason: LogError): void {
    if (this.signal.aborted) return
    clearTimeout(this.#timer)
    this.#controller.abort(reason)
    this.onEnd(this)
  }
}
