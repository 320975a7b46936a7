/**
 * A producer: appends to one log, at a fixed rate or as fast as its window allows, and records each
 * acknowledgement's latency.
 *
 * Fixed rate (no coordinated omission): entry k of a producer is *due* at start + k / rate. Its latency is
 * measured from that intended time, not from when the producer got round to sending it: if the cluster
 * stalls and the window of `outstanding` appends fills, the producer falls behind, and every entry it
 * sends late carries the time it waited (as wrk2 and HdrHistogram's recorders do). When it is behind it
 * sends back to back until it has caught up, skipping none. It never sends early; timers sleep
 * up to ~1 ms too long, and that delay is part of the measured latency (it is the load generator's, and
 * small). A run bounded by --duration stops on time even when behind.
 *
 * As fast as possible (rate 0): a closed loop; the intended time is the moment of the append() call.
 *
 * A failed append is counted by its code and never retried (it may still be in the log: recovery keeps
 * what reached the bookies). After a failure the writer is gone (a failed ledger writer stays failed), so
 * the producer opens the log again, which takes the writer role over and starts a new segment.
 */
import {performance} from 'node:perf_hooks'
import {setImmediate as yieldToLoop} from 'node:timers/promises'
import type {PayloadFactory} from './payloads.js'
import {nowUs, type Recorder} from './recorder.js'

/** A log's writer side (client Log handles are). */
export interface Appender {
  append(data: Buffer): Promise<bigint>
  close(): Promise<void>
}

/** Shared by the producers of a run; the runner moves it along. */
export class Phase {
  /** Producers stop issuing at (not after) this time, µs since the epoch; set when measuring begins. */
  endUs = Number.POSITIVE_INFINITY
  stopped = false
  /** Resolves at stop(). */
  readonly whenStopped: Promise<void>
  private wake: Array<() => void> = []
  private resolveStopped!: () => void

  constructor() {
    this.whenStopped = new Promise(resolve => { this.resolveStopped = resolve })
  }

  /** Stop issuing now (interrupted, or another phase ends the load). */
  stop(): void {
    this.stopped = true
    this.resolveStopped()
    for (const w of this.wake.splice(0)) w()
  }

  /** Resolves after `ms` or at stop(), whichever is first. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.wake = this.wake.filter(w => w !== done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wake.push(done)
    })
  }
}

export interface ProducerOptions {
  index: number
  /** Entries per second for this producer; 0 = closed loop. */
  rate: number
  outstanding: number
  /** Measured entries this producer sends at most (undefined: until the phase ends). */
  maxEntries: number | undefined
  /** Delay of this producer's first entry (µs), so that producers at one rate do not send in step. */
  offsetUs: number
}

const REOPEN_BACKOFF_MS = 200
/** Sends without yielding to the event loop at most (a producer that is behind sends back to back). */
const BURST = 256

export class Producer {
  inflight = 0
  /** Appends issued (measured or not) and acknowledged. */
  sent = 0
  acked = 0
  /** Highest offset acknowledged (-1n: none). */
  lastOffset = -1n
  private measuredSent = 0
  private seq = 0
  private appender: Appender | undefined
  private broken = false
  private readonly slotWaiters: Array<() => void> = []
  private readonly idleWaiters: Array<() => void> = []

  constructor(private readonly o: ProducerOptions, private readonly open: () => Promise<Appender>, private readonly payloads: PayloadFactory, private readonly rec: Recorder, private readonly phase: Phase) {}

  /** Open the writer before the clock starts. */
  async init(): Promise<void> {
    this.appender = await this.open()
  }

  /** Issue appends until the phase ends (time, entries, stop); in-flight ones are still running then. */
  async run(): Promise<void> {
    const {rate, outstanding, maxEntries} = this.o
    const intervalUs = rate > 0 ? 1e6 / rate : 0
    let due = nowUs() + this.o.offsetUs
    let burst = 0
    const s = this.rec.produced
    while (!this.phase.stopped) {
      // Stop on time, even when behind: what was not sent by then is not measured, and every entry sent
      // late already carries its wait in its latency.
      if (nowUs() >= this.phase.endUs) break
      if (intervalUs > 0) {
        if (due >= this.phase.endUs) break
        // Never early (the latency would flatter): a timer sleeps at least ~1 ms, so at high rates each
        // wake-up sends everything that has come due since.
        const waitMs = (due - nowUs()) / 1000
        if (waitMs > 0) {
          burst = 0
          await this.phase.sleep(Math.min(waitMs, 100))
          continue
        }
      }
      if (this.inflight >= outstanding) {
        burst = 0
        await this.slot()
        continue
      }
      if (this.broken && !(await this.reopen())) continue
      const intended = intervalUs > 0 ? due : nowUs()
      const measured = s.measuring && intended >= s.startUs
      if (measured && maxEntries !== undefined && this.measuredSent >= maxEntries) break
      if (measured) this.measuredSent++
      due += intervalUs
      this.send(intended)
      if (++burst >= BURST) {
        burst = 0
        await yieldToLoop()
      }
    }
  }

  /** Wait for the appends in flight, at most `timeoutMs`; returns how many are still unanswered. */
  async settle(timeoutMs: number): Promise<number> {
    const until = performance.now() + timeoutMs
    while (this.inflight > 0 && performance.now() < until) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, Math.max(1, until - performance.now()))
        this.idleWaiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.inflight
  }

  /** The current writer handle (for closing it at the end); undefined after a failure. */
  get handle(): Appender | undefined {
    return this.broken ? undefined : this.appender
  }

  /** The handle was closed by the caller: don't close it again. */
  forget(): void {
    this.appender = undefined
  }

  private send(intended: number): void {
    const appender = this.appender!
    const payload = this.payloads.make({sendUs: intended, producer: this.o.index, seq: this.seq++})
    this.inflight++
    this.sent++
    appender.append(payload).then(offset => {
      this.acked++
      if (offset > this.lastOffset) this.lastOffset = offset
      const at = nowUs()
      this.rec.record(this.rec.produced, intended, payload.length, at - intended, at)
      this.release()
    }, err => {
      if (appender === this.appender) this.broken = true
      this.rec.errorOf(err)
      this.release()
    })
  }

  /** Take the writer role (again). false: it failed (counted), try later. */
  private async reopen(): Promise<boolean> {
    if (this.appender !== undefined) await this.phase.sleep(REOPEN_BACKOFF_MS)
    if (this.phase.stopped) return false
    try {
      this.appender = await this.open()
      this.broken = false
      return true
    } catch (err) {
      this.rec.errorOf(err)
      await this.phase.sleep(REOPEN_BACKOFF_MS)
      return false
    }
  }

  /** Resolves when an append in flight completes, or at stop(). */
  private slot(): Promise<void> {
    if (this.phase.stopped) return Promise.resolve()
    return Promise.race([new Promise<void>(resolve => this.slotWaiters.push(resolve)), this.phase.whenStopped])
  }

  private release(): void {
    this.inflight--
    this.slotWaiters.shift()?.()
    if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w()
  }
}
