/**
 * How a bench prints, in the shape kafka-producer-perf-test and pulsar-perf users know: a line per report
 * interval (stderr), a summary at the end (stdout, or the JSON summary with --json), and, when stderr is a
 * terminal, a one-line progress indicator that report lines push up. MB = 2^20 bytes (Kafka's
 * convention); latencies in ms.
 *
 *   [   5.0s] 24105 entries, 4821.0 entries/s, 4.71 MB/s, 0 errors | append ms: p50 2.980 p99 7.920 max 18.00
 *   Summary: append, 241065 entries in 50.0 s, 4821.3 entries/s, 4.71 MB/s, 0 errors
 *   Latency append (ms): avg 3.210 min 0.410 p50 2.980 p95 5.100 p99 7.920 p99.9 12.40 max 18.00
 */
import type {BenchMode} from './options.js'
import type {LatencySummary, StreamWindow, Window} from './recorder.js'
import {MB, type BenchSummary, type StreamSummary} from './summary.js'

/** ms with 3 significant decimals below 10 ms, fewer above. */
export function fmtMs(v: number): string {
  return v < 10 ? v.toFixed(3) : v < 100 ? v.toFixed(2) : v.toFixed(1)
}

const rate = (n: number, s: number): string => (s > 0 ? (n / s).toFixed(1) : '0.0')
const mbps = (bytes: number, s: number): string => (s > 0 ? (bytes / MB / s).toFixed(2) : '0.00')

/** Which latencies a mode shows in its report lines. */
function shown(mode: BenchMode, w: StreamWindow): boolean {
  return !(mode === 'tail' && w.name === 'produced')
}

const verb = (mode: BenchMode, w: StreamWindow): string => (w.name === 'produced' ? 'sent' : mode === 'read' ? 'read' : 'received')

export function windowLine(mode: BenchMode, w: Window): string {
  const at = `[${w.warmup ? 'warm-up ' : ''}${w.at.toFixed(1).padStart(6)}s]`
  const streams = w.streams
  const counts = streams.length === 1
    ? `${streams[0]!.entries} entries, ${rate(streams[0]!.entries, w.seconds)} entries/s, ${mbps(streams[0]!.bytes, w.seconds)} MB/s`
    : streams.map(s => `${verb(mode, s)} ${s.entries}, ${rate(s.entries, w.seconds)}/s, ${mbps(s.bytes, w.seconds)} MB/s`).join('; ')
  const lat = streams.filter(s => shown(mode, s)).map(s => {
    const l = s.latency
    return ` | ${s.latencyName} ms: ${l ? `p50 ${fmtMs(l.p50)} p99 ${fmtMs(l.p99)} max ${fmtMs(l.max)}` : '-'}`
  }).join('')
  const codes = w.errors === 0 ? '' : ` (${Object.entries(w.errorsByCode).map(([k, v]) => `${k} ${v}`).join(', ')})`
  return `${at} ${counts || 'no entries'}, ${w.errors} error${w.errors === 1 ? '' : 's'}${codes}${lat}`
}

export function latencyLine(name: string, l: LatencySummary | null): string {
  if (!l) return `Latency ${name} (ms): none measured`
  return `Latency ${name} (ms): avg ${fmtMs(l.avg)} min ${fmtMs(l.min)} p50 ${fmtMs(l.p50)} p95 ${fmtMs(l.p95)} p99 ${fmtMs(l.p99)} p99.9 ${fmtMs(l.p999)} max ${fmtMs(l.max)}`
}

function streamLine(label: string, s: StreamSummary): string {
  return `${label}${s.entries} entries in ${s.seconds.toFixed(1)} s, ${s.entriesPerSec.toFixed(1)} entries/s, ${s.mbPerSec.toFixed(2)} MB/s`
}

export function summaryLines(s: BenchSummary): string[] {
  const out: string[] = []
  if (s.interrupted) out.push('Interrupted: the figures so far.')
  const errs = `${s.errors} error${s.errors === 1 ? '' : 's'}`
  if (s.consumed === null) {
    out.push(`Summary: ${s.mode}, ${streamLine('', s.produced)}, ${errs}`)
    out.push(latencyLine(s.produced.latencyName, s.produced.latencyMs))
  } else {
    out.push(`Summary: ${s.mode}, ${errs}`)
    out.push(streamLine(s.mode === 'read' ? '  written:  ' : '  sent:     ', s.produced))
    out.push(streamLine(s.mode === 'read' ? '  read:     ' : '  received: ', s.consumed))
    if (s.mode === 'e2e' || s.mode === 'read') out.push(latencyLine(s.produced.latencyName, s.produced.latencyMs))
    out.push(latencyLine(s.consumed.latencyName, s.consumed.latencyMs))
  }
  if (s.errors > 0) out.push(`Errors: ${Object.entries(s.errorsByCode).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  if (s.config.warmupSec > 0) {
    const got = s.consumed === null ? '' : `, ${s.consumed.warmupEntries} ${s.mode === 'read' ? 'read' : 'received'}`
    out.push(`Warm-up: ${s.config.warmupSec} s, not counted: ${s.produced.warmupEntries} sent${got}`)
  }
  if (s.kept) out.push(`Logs kept: ${s.logs.join(', ')}`)
  if (s.histogramFile) out.push(`Histograms: ${s.histogramFile} (HdrHistogram log, µs)`)
  return out
}

/**
 * The progress indicator: one line, redrawn in place, only on a terminal. Lines printed through
 * `line()` clear it first, so the indicator always stays the last line.
 */
export class Progress {
  private status = ''
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly tty: NodeJS.WriteStream | undefined, private readonly write: (line: string) => void) {}

  start(status: () => string, everyMs = 250): void {
    if (!this.tty) return
    this.timer = setInterval(() => this.draw(status()), everyMs)
    this.timer.unref()
  }

  line(text: string): void {
    this.clear()
    this.write(text)
    if (this.status) this.draw(this.status)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.clear()
    this.status = ''
  }

  private draw(text: string): void {
    if (!this.tty) return
    this.status = text.slice(0, Math.max(10, (this.tty.columns || 80) - 1))
    this.tty.write(`\r\x1b[2K${this.status}`)
  }

  private clear(): void {
    if (this.tty && this.status) this.tty.write('\r\x1b[2K')
  }
}
