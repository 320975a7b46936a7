/**
 * What a bench counts: two streams (`produced`: acknowledged appends; `consumed`: entries a consumer got),
 * each with entry and byte counters and a latency in µs kept in hdr-histograms (an interval histogram,
 * reset at every report, merged into a cumulative one), and every error by code.
 *
 * Warm-up: a stream counts an event only once it measures (`begin`), and only if the event's reference
 * time (an entry's intended send time; a read's receive time) is not before that moment: entries sent
 * during the warm-up but acknowledged after it are left out, so the totals, the histograms and the log
 * (when kept) agree. `begin` rolls the window first, so nothing recorded before it reaches the totals.
 */
import {performance} from 'node:perf_hooks'
import hdr, {type Histogram} from 'hdr-histogram-js'
import {isLogError} from '../errors.js'

/** Wall-clock time in µs since the epoch, with performance.now()'s resolution. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000
}

/** 1 hour: longer latencies are recorded as 1 hour (and show as such). */
export const HIGHEST_US = 3_600_000_000

export function newHistogram(): Histogram {
  return hdr.build({lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3, autoResize: false})
}

/** Milliseconds, as reported; min/avg/percentiles/max from the histogram (within 0.1%). */
export interface LatencySummary {
  count: number
  avg: number
  min: number
  p50: number
  p95: number
  p99: number
  p999: number
  max: number
}

export interface WindowLatency {
  count: number
  p50: number
  p99: number
  max: number
}

export interface StreamWindow {
  name: StreamName
  latencyName: string
  entries: number
  bytes: number
  latency: WindowLatency | undefined
}

export interface Window {
  /** Seconds since the load started, at the end of the window. */
  at: number
  seconds: number
  /** The window ended a warm-up: its figures are not in the totals. */
  warmup: boolean
  streams: StreamWindow[]
  errors: number
  errorsByCode: Record<string, number>
}

export type StreamName = 'produced' | 'consumed'

const ms = (us: number): number => Math.round(us) / 1000

/**
 * Percentiles in ms. A histogram reports a bucket's upper edge, which can lie above the largest value
 * recorded; no percentile is shown above the max.
 */
const pct = (h: Histogram) => (p: number): number => ms(Math.min(h.getValueAtPercentile(p), h.maxValue))

export class Stream {
  entries = 0
  bytes = 0
  /** Events left out: before the stream began measuring, or for entries sent before it. */
  warmupEntries = 0
  /** When measuring began (µs since the epoch); Infinity until then. */
  startUs = Number.POSITIVE_INFINITY
  /** When the load of this stream stopped (duration reached, all read, interrupted). */
  stopUs = 0
  /** Time of the last event counted. */
  lastUs = 0
  measuring = false
  /** No more load on this stream (read mode's write phase, once over): left out of report lines. */
  finished = false
  windowEntries = 0
  windowBytes = 0
  readonly window = newHistogram()
  readonly total = newHistogram()

  constructor(readonly name: StreamName, readonly latencyName: string) {}

  record(refUs: number, bytes: number, latencyUs: number, atUs: number): void {
    if (this.measuring && refUs < this.startUs) {
      this.warmupEntries++
      return
    }
    if (!this.measuring) this.warmupEntries++
    else {
      this.entries++
      this.bytes += bytes
      this.lastUs = atUs
    }
    this.windowEntries++
    this.windowBytes += bytes
    this.window.recordValue(Math.min(HIGHEST_US, Math.max(1, Math.round(latencyUs))))
  }

  /** Measured seconds: from the start to when the load stopped or the last event, whichever is later. */
  seconds(): number {
    if (!Number.isFinite(this.startUs)) return 0
    return Math.max(0, (Math.max(this.stopUs, this.lastUs) - this.startUs) / 1e6)
  }

  latency(): LatencySummary | null {
    const h = this.total
    if (h.totalCount === 0) return null
    const at = pct(h)
    return {count: h.totalCount, avg: ms(Math.min(h.mean, h.maxValue)), min: ms(h.minNonZeroValue), p50: at(50), p95: at(95), p99: at(99), p999: at(99.9), max: ms(h.maxValue)}
  }
}

/** Where measured interval histograms go (see histogram-log.ts). */
export interface IntervalSink {
  interval(h: Histogram, startUs: number, endUs: number): void
}

export class Recorder {
  readonly produced: Stream
  readonly consumed: Stream
  readonly errors = new Map<string, number>()
  private windowErrors = new Map<string, number>()
  private windowStartUs: number
  /** After the summary is taken nothing more is counted (late acks of abandoned appends). */
  private sealed = false

  /** When the load started (report lines count from here). */
  private loadStartUs: number

  constructor(consumedLatency: string, private readonly sink: IntervalSink | undefined = undefined, atUs = nowUs()) {
    this.produced = new Stream('produced', 'append')
    this.consumed = new Stream('consumed', consumedLatency)
    this.loadStartUs = this.windowStartUs = atUs
  }

  /** The load starts now (after the logs were created and the writers opened): the first window opens. */
  start(atUs = nowUs()): void {
    this.loadStartUs = this.windowStartUs = atUs
  }

  /** Seconds since the load started. */
  elapsed(atUs = nowUs()): number {
    return (atUs - this.loadStartUs) / 1e6
  }

  record(stream: Stream, refUs: number, bytes: number, latencyUs: number, atUs = nowUs()): void {
    if (!this.sealed) stream.record(refUs, bytes, latencyUs, atUs)
  }

  /** Count `n` errors under `code` (a LOG_ERR_* code, or one of the bench's own: docs/BENCH.md). */
  error(code: string, n = 1): void {
    if (this.sealed || n <= 0) return
    this.errors.set(code, (this.errors.get(code) ?? 0) + n)
    this.windowErrors.set(code, (this.windowErrors.get(code) ?? 0) + n)
  }

  errorOf(err: unknown): void {
    this.error(isLogError(err) ? err.code : (err as Error | undefined)?.name ?? 'Error')
  }

  get errorCount(): number {
    let n = 0
    for (const v of this.errors.values()) n += v
    return n
  }

  /** Start measuring these streams now; returns the warm-up window (to print), or undefined if none. */
  begin(streams: Stream[], atUs = nowUs()): Window | undefined {
    const warm = streams.some(s => s.windowEntries > 0)
    const w = this.roll(atUs, streams)
    for (const s of streams) {
      s.measuring = true
      s.startUs = atUs
    }
    return warm ? w : undefined
  }

  /**
   * End the current window: its figures (to print), its histograms merged into the totals for the streams
   * that measure (and written to the histogram log), then reset. The window of a stream that does not
   * measure yet, or is in `warming` (begin() is about to start it), is discarded: it was a warm-up.
   */
  roll(atUs = nowUs(), warming: Stream[] = []): Window {
    const seconds = Math.max(1e-6, (atUs - this.windowStartUs) / 1e6)
    const streams: StreamWindow[] = []
    let warmup = false
    for (const s of [this.produced, this.consumed]) {
      const h = s.window
      if (s.windowEntries > 0 || (s.measuring && !s.finished)) {
        streams.push({
          name: s.name, latencyName: s.latencyName, entries: s.windowEntries, bytes: s.windowBytes,
          latency: h.totalCount === 0 ? undefined : {count: h.totalCount, p50: pct(h)(50), p99: pct(h)(99), max: ms(h.maxValue)},
        })
      }
      const discard = !s.measuring || warming.includes(s)
      if (discard && s.windowEntries > 0) warmup = true
      if (!discard && h.totalCount > 0) {
        h.tag = s.latencyName // reset() clears it
        this.sink?.interval(h, this.windowStartUs, atUs)
        s.total.add(h)
      }
      h.reset()
      s.windowEntries = 0
      s.windowBytes = 0
    }
    const errorsByCode = Object.fromEntries(this.windowErrors)
    const w: Window = {at: this.elapsed(atUs), seconds, warmup, streams, errors: Object.values(errorsByCode).reduce((a, b) => a + b, 0), errorsByCode}
    this.windowErrors = new Map()
    this.windowStartUs = atUs
    return w
  }

  /** Roll the last window and stop counting. */
  seal(atUs = nowUs()): Window {
    const w = this.roll(atUs)
    this.sealed = true
    return w
  }
}
