/**
 * Child processes for the metadata tests (fixtures/meta-child.ts), waiting for an AbortSignal with a bound,
 * and a bounded poll for things that happen on a clock (liveness expiry), where there is no event to wait for.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import type {ChildCommand, ChildReply} from './fixtures/meta-child.js'

const CHILD = new URL('./fixtures/meta-child.js', import.meta.url)
const REPLY_TIMEOUT_MS = 20_000

export class MetaChild {
  readonly #replies: ChildReply[] = []
  readonly #waiters: Array<(r: ChildReply) => void> = []

  private constructor(readonly process: ChildProcess) {
    process.on('message', (r: ChildReply) => {
      const waiter = this.#waiters.shift()
      if (waiter === undefined) this.#replies.push(r)
      else waiter(r)
    })
  }

  /** Start a child on `url` and wait until its store is open. */
  static async start(url: string): Promise<MetaChild> {
    const child = new MetaChild(fork(CHILD, [url], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']}))
    const first = await child.reply()
    if (first.op !== 'open') throw new Error(`child did not open the store: ${JSON.stringify(first)}`)
    return child
  }

  send(cmd: ChildCommand): void {
    this.process.send(cmd)
  }

  /** The next reply, in order; fails if the child exits or stays silent for REPLY_TIMEOUT_MS. */
  async reply(): Promise<ChildReply> {
    const queued = this.#replies.shift()
    if (queued !== undefined) return queued
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(), REPLY_TIMEOUT_MS)
    let waiter: ((r: ChildReply) => void) | undefined
    try {
      return await Promise.race([
        new Promise<ChildReply>(resolve => { waiter = resolve; this.#waiters.push(resolve) }),
        once(this.process, 'exit', {signal: ac.signal}).then(([code, signal]) => {
          throw new Error(`meta child exited (${String(code ?? signal)}) before replying`)
        }),
        once(ac.signal, 'abort').then(() => { throw new Error(`meta child sent nothing for ${REPLY_TIMEOUT_MS} ms`) }),
      ])
    } finally {
      clearTimeout(timer)
      ac.abort()
      // A waiter left behind after a failure would swallow the next reply meant for someone else.
      const i = waiter === undefined ? -1 : this.#waiters.indexOf(waiter)
      if (i >= 0) this.#waiters.splice(i, 1)
    }
  }

  async request(cmd: ChildCommand): Promise<ChildReply> {
    this.send(cmd)
    return this.reply()
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    const gone = once(this.process, 'exit')
    this.process.kill('SIGKILL')
    await gone
  }
}

/**
 * Poll `check` until it returns true, at most `timeoutMs`. For clock-driven outcomes only (a lease or a
 * heartbeat row expiring): everything with an event waits on the event instead.
 */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<number> {
  const start = Date.now()
  for (let i = 0; i < 10_000 && Date.now() - start < timeoutMs; i++) {
    if (await check()) return Date.now() - start
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/**
 * Wait for `signal` to abort (an event), failing after `timeoutMs`. The bound is a plain (ref'd) timer on
 * purpose: the registration timers that will abort the signal are unref'd, and AbortSignal.timeout's timer is
 * too, so without it nothing would keep the process alive while it waits.
 */
export async function aborted(signal: AbortSignal, timeoutMs: number): Promise<void> {
  if (signal.aborted) return
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      once(signal, 'abort'),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`signal not aborted within ${timeoutMs} ms`)), timeoutMs) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
