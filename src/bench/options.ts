/**
 * What a `logctl bench` run is asked to do: the option set, the parsers for the flags whose syntax is ours
 * (sizes, rates, seconds), and the checks that must fail before the cluster is touched (exit 2, BAD_INPUT).
 * Defaults depend on the mode; `resolveOptions` fills them in and says why a combination is refused.
 */
import {ErrorCode, LogError} from '../errors.js'
import {HEADER_BYTES, type PayloadKind, type SizeRange} from './payloads.js'

export const BENCH_MODES = ['append', 'read', 'tail', 'e2e'] as const
export type BenchMode = (typeof BENCH_MODES)[number]

export interface BenchOptions {
  mode: BenchMode
  size: SizeRange
  /** Entries per second over all producers; 0 = as fast as the window allows (closed loop). */
  rate: number
  producers: number
  /** Consumers (read, tail, e2e); each one reads every entry of the logs it is given. */
  consumers: number
  /** Appends in flight per producer at most. */
  outstanding: number
  /** Measured seconds (append, tail, e2e: producing; read: reading back). undefined = until `entries`. */
  durationSec: number | undefined
  /** Measured entries over all producers (read: entries written first). undefined = until `durationSec`. */
  entries: number | undefined
  /** Seconds of load before measuring starts (not counted, not in the histograms). */
  warmupSec: number
  ensemble: number
  writeQuorum: number
  ackQuorum: number
  compression: 'none' | 'lz4'
  payload: PayloadKind
  /** Name of the log (one producer) or prefix of the logs NAME-0.. (several); default bench-<mode>-<id>. */
  logName: string | undefined
  /** Leave the logs in place at the end (default: delete them). */
  keep: boolean
  /** Seconds between report lines. */
  reportIntervalSec: number
  /** Write the measured intervals' histograms here, HdrHistogram log format (values in µs). */
  histogramFile: string | undefined
}

/** The flags as given (undefined = not given), before the mode's defaults. */
export type BenchInput = Omit<BenchOptions, 'consumers' | 'durationSec' | 'entries'> & {
  consumers: number | undefined
  durationSec: number | undefined
  entries: number | undefined
}

/** Largest entry the bench generates (a bookie refuses larger frames anyway). */
export const MAX_ENTRY_BYTES = 16 * 1024 * 1024
export const DEFAULT_DURATION_SEC = 10
export const DEFAULT_READ_ENTRIES = 50_000

function bad(message: string): LogError {
  return new LogError(ErrorCode.BAD_INPUT, message)
}

const UNITS: Record<string, number> = {'': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 * 1024, mb: 1024 * 1024, mib: 1024 * 1024}

function parseBytes(text: string, whole: string): number {
  const m = /^(\d{1,12})\s*([a-z]*)$/i.exec(text.trim())
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) {
    if (/^\s*-/.test(whole)) throw bad(`must not be negative, got ${JSON.stringify(whole)}`)
    throw bad(`must be a number of bytes (100, 16KiB) or a range MIN-MAX (100-2000), got ${JSON.stringify(whole)}`)
  }
  return Number(m[1]) * unit
}

/** `1024`, `16KiB`, `1M`, or a range `100-2000` (each entry's size drawn uniformly from it). Messages as parseNumber's. */
export function parseSize(text: string): SizeRange {
  const parts = /^\s*(\d[^-]*?)\s*-\s*(\d.*)$/.exec(text)
  const min = parseBytes(parts ? parts[1]! : text, text)
  const max = parts ? parseBytes(parts[2]!, text) : min
  if (min < 1) throw bad(`must be at least 1 byte, got ${JSON.stringify(text)}`)
  if (max < min) throw bad(`the range ${JSON.stringify(text)} ends below its start`)
  if (max > MAX_ENTRY_BYTES) throw bad(`must be at most ${MAX_ENTRY_BYTES} bytes (16 MiB), got ${JSON.stringify(text)}`)
  return {min, max}
}

/**
 * A non-negative decimal number (`--rate 2500`, `--duration 1.5`). Messages leave the flag's name out:
 * oclif (and BaseCommand) put `--flag: ` in front.
 */
export function parseNumber(text: string, o: {min: number; exclusiveMin?: boolean; what: string}): number {
  const v = /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isFinite(v)) {
    if (/^\s*-\s*\d/.test(text)) throw bad(`must not be negative, got ${JSON.stringify(text)}`)
    throw bad(`must be ${o.what}, got ${JSON.stringify(text)}`)
  }
  if (o.exclusiveMin ? v <= o.min : v < o.min) throw bad(`must be ${o.exclusiveMin ? 'greater than' : 'at least'} ${o.min}, got ${JSON.stringify(text)}`)
  return v
}

export function sizeLabel(s: SizeRange): string {
  const one = (n: number): string => (n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`)
  return s.min === s.max ? one(s.min) : `${one(s.min)}-${one(s.max)}`
}

/** Fill in the mode's defaults and refuse what cannot run. */
export function resolveOptions(i: BenchInput): BenchOptions {
  const needsConsumers = i.mode !== 'append'
  if (!needsConsumers && i.consumers !== undefined && i.consumers > 0) {
    throw bad('--consumers: append mode has no consumers (use e2e or tail to produce and consume)')
  }
  const consumers = needsConsumers ? i.consumers ?? 1 : 0
  if (needsConsumers && consumers < 1) throw bad(`--consumers: ${i.mode} mode needs at least one consumer`)
  if ((i.mode === 'tail' || i.mode === 'e2e') && i.size.min < HEADER_BYTES) {
    throw bad(`--size: ${i.mode} mode needs entries of at least ${HEADER_BYTES} bytes (each carries its send time), got ${i.size.min}`)
  }
  if (!(i.ensemble >= i.writeQuorum && i.writeQuorum >= i.ackQuorum)) {
    throw bad(`need --ensemble >= --write-quorum >= --ack-quorum, got ${i.ensemble}, ${i.writeQuorum}, ${i.ackQuorum}`)
  }
  let {durationSec, entries} = i
  if (i.mode === 'read') entries ??= DEFAULT_READ_ENTRIES
  else if (durationSec === undefined && entries === undefined) durationSec = DEFAULT_DURATION_SEC
  return {...i, consumers, durationSec, entries}
}
