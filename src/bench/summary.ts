/**
 * The result of a bench run, as `--json` prints it (and as run() returns it). The top-level figures are the
 * mode's headline stream: acknowledged appends for `append`, entries received or read for `tail`, `e2e`
 * and `read`; `produced` and `consumed` have both sides. Bytes are payload bytes; MB = 2^20 bytes;
 * latencies in ms.
 */
import type {BenchMode, BenchOptions} from './options.js'
import type {LatencySummary, Recorder, Stream} from './recorder.js'

/** MB in every figure: 2^20 bytes (Kafka's convention). */
export const MB = 1024 * 1024

export interface StreamSummary {
  entries: number
  bytes: number
  seconds: number
  entriesPerSec: number
  mbPerSec: number
  /** Events left out as warm-up. */
  warmupEntries: number
  latencyName: string
  latencyMs: LatencySummary | null
}

export interface BenchSummary {
  mode: BenchMode
  /** Stopped by SIGINT: the figures so far. */
  interrupted: boolean
  entries: number
  bytes: number
  seconds: number
  entriesPerSec: number
  mbPerSec: number
  latencyMs: LatencySummary | null
  errors: number
  errorsByCode: Record<string, number>
  produced: StreamSummary
  consumed: StreamSummary | null
  logs: string[]
  kept: boolean
  histogramFile: string | null
  config: {
    size: {min: number; max: number}
    rate: number
    producers: number
    consumers: number
    outstanding: number
    durationSec: number | null
    entries: number | null
    warmupSec: number
    ensemble: number
    writeQuorum: number
    ackQuorum: number
    compression: string
    payload: string
  }
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits))

export function streamSummary(s: Stream): StreamSummary {
  const seconds = s.seconds()
  return {
    entries: s.entries, bytes: s.bytes, seconds: round(seconds, 6),
    entriesPerSec: seconds > 0 ? round(s.entries / seconds, 3) : 0,
    mbPerSec: seconds > 0 ? round(s.bytes / MB / seconds, 4) : 0,
    warmupEntries: s.warmupEntries, latencyName: s.latencyName, latencyMs: s.latency(),
  }
}

export function buildSummary(o: BenchOptions, rec: Recorder, r: {interrupted: boolean; logs: string[]; histogramFile: string | null}): BenchSummary {
  const produced = streamSummary(rec.produced)
  const consumed = o.mode === 'append' ? null : streamSummary(rec.consumed)
  const head = consumed ?? produced
  return {
    mode: o.mode,
    interrupted: r.interrupted,
    entries: head.entries, bytes: head.bytes, seconds: head.seconds, entriesPerSec: head.entriesPerSec, mbPerSec: head.mbPerSec, latencyMs: head.latencyMs,
    errors: rec.errorCount,
    errorsByCode: Object.fromEntries([...rec.errors.entries()].sort(([a], [b]) => a.localeCompare(b))),
    produced, consumed,
    logs: r.logs, kept: o.keep, histogramFile: r.histogramFile,
    config: {
      size: o.size, rate: o.rate, producers: o.producers, consumers: o.consumers, outstanding: o.outstanding,
      durationSec: o.durationSec ?? null, entries: o.entries ?? null, warmupSec: o.warmupSec,
      ensemble: o.ensemble, writeQuorum: o.writeQuorum, ackQuorum: o.ackQuorum, compression: o.compression, payload: o.payload,
    },
  }
}
