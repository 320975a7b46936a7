/**
 * One bench run against a cluster: create the logs, run the mode, report every interval, summarise, and
 * delete the logs (unless kept), also after an error or Ctrl-C.
 *
 *   append      producers append (one log each: a log has one writer); latency = ack - intended send
 *   read        producers write `entries` first and seal their logs; then consumers read them back
 *   tail, e2e   producers append while consumers follow the logs; latency = receive - intended send
 *               (e2e also shows the append latency)
 *
 * Each producer takes its log's writer role before the clock starts (so the first append does not carry
 * the cost of creating the first segment). Consumers: with C >= P consumer c reads log c mod P (several
 * consumers of a log each get all of it); with C < P consumer c reads logs c, c+C, ... After the producers
 * stop and their appends settle, followers get a bounded time to receive everything acknowledged; what
 * they did not is counted as BENCH_NOT_RECEIVED, appends still unanswered as BENCH_UNFINISHED.
 * Ctrl-C (SIGINT) stops the load, settles briefly and returns the summary so far; a second one exits.
 */
import type {ClientOptions, LogctlClient} from '../client/client.js'
import {LogWriter} from '../client/log.js'
import {isLogError} from '../errors.js'
import {Subscription} from './consumer.js'
import {HistogramLogFile} from './histogram-log.js'
import {sizeLabel, type BenchOptions} from './options.js'
import {PayloadFactory} from './payloads.js'
import {nowUs, Recorder, type Stream, type Window} from './recorder.js'
import {Progress, windowLine} from './reporter.js'
import {Phase, Producer} from './scheduler.js'
import {buildSummary, type BenchSummary} from './summary.js'

export const NOT_RECEIVED = 'BENCH_NOT_RECEIVED'
export const UNFINISHED = 'BENCH_UNFINISHED'
export const CLOSE_TIMEOUT = 'BENCH_CLOSE_TIMEOUT'

export interface BenchIO {
  /** A report line or a notice (the command sends them to stderr). */
  line(text: string): void
  /** Where the progress indicator goes: a terminal, or undefined for none. */
  tty: NodeJS.WriteStream | undefined
}

const SETTLE_MS = 30_000
const DRAIN_MS = 10_000
const INTERRUPTED_SETTLE_MS = 2000
const INTERRUPTED_DRAIN_MS = 1000
const STOP_MS = 3000
const CLEANUP_MS = 15_000

/** Client options a bench needs: the bookie timeout, and a writer window no smaller than --outstanding. */
export function clientOptionsFor(o: {outstanding: number}, bookieTimeoutMs: number | undefined): Omit<ClientOptions, 'metadata'> {
  return {
    ...(bookieTimeoutMs === undefined ? {} : {bookieTimeoutMs}),
    ...(o.outstanding > 1024 ? {writer: {maxPendingEntries: o.outstanding}} : {}),
  }
}

export function logNames(o: Pick<BenchOptions, 'logName' | 'mode' | 'producers'>): string[] {
  const base = o.logName ?? `bench-${o.mode}-${Date.now().toString(36)}-${process.pid}`
  return o.producers === 1 ? [base] : Array.from({length: o.producers}, (_, i) => `${base}-${i}`)
}

/** Measured entries of producer i when `total` are split over `n`. */
function share(total: number | undefined, n: number, i: number): number | undefined {
  return total === undefined ? undefined : Math.floor(total / n) + (i < total % n ? 1 : 0)
}

/** The log each subscription reads: one per consumer (C >= P), or one per log (C < P). */
function subscribedLogs(consumers: number, logs: number): number[] {
  return consumers >= logs ? Array.from({length: consumers}, (_, c) => c % logs) : Array.from({length: logs}, (_, l) => l)
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), ms) })]).finally(() => clearTimeout(timer))
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

export function runBench(client: LogctlClient, o: BenchOptions, io: BenchIO): Promise<BenchSummary> {
  return new BenchRun(client, o, io).run()
}

class BenchRun {
  private readonly names: string[]
  private readonly follow: boolean
  private readonly hlog: HistogramLogFile | undefined
  private readonly rec: Recorder
  private readonly progress: Progress
  private readonly phase = new Phase()
  private readonly created: string[] = []
  private producers: Producer[] = []
  private subs: Subscription[] = []
  private interrupted = false
  private ticker: NodeJS.Timeout | undefined
  private readonly timers: NodeJS.Timeout[] = []

  constructor(private readonly client: LogctlClient, private readonly o: BenchOptions, private readonly io: BenchIO) {
    const startUs = nowUs()
    this.names = logNames(o)
    this.follow = o.mode === 'tail' || o.mode === 'e2e'
    this.hlog = o.histogramFile === undefined ? undefined : new HistogramLogFile(o.histogramFile, startUs,
      `logctl bench ${o.mode}: size ${sizeLabel(o.size)}, rate ${o.rate || 'max'}, ${o.producers} producer(s), ${o.consumers} consumer(s), E=${o.ensemble} Qw=${o.writeQuorum} Qa=${o.ackQuorum}, values in us`)
    this.rec = new Recorder(o.mode === 'read' ? 'read' : 'e2e', this.hlog, startUs)
    this.progress = new Progress(io.tty, t => io.line(t))
  }

  async run(): Promise<BenchSummary> {
    process.once('SIGINT', this.onSigint)
    this.progress.start(() => this.status())
    try {
      await this.setup()
      this.rec.start()
      if (this.o.mode === 'read') await this.writeThenRead()
      else await this.produce()
      this.printTail(this.rec.seal())
    } finally {
      await this.cleanup()
    }
    return buildSummary(this.o, this.rec, {interrupted: this.interrupted, logs: this.created, histogramFile: this.o.histogramFile ?? null})
  }

  private readonly hardExit = (): never => process.exit(130)

  private readonly onSigint = (): void => {
    this.interrupted = true
    this.progress.line('Interrupted: stopping (Ctrl-C again to quit at once) ...')
    this.phase.stop()
    if (this.o.mode === 'read') for (const s of this.subs) s.stop()
    process.once('SIGINT', this.hardExit)
  }

  /** Create the logs and take each one's writer role. */
  private async setup(): Promise<void> {
    const {o, client, rec} = this
    for (const name of this.names) {
      await client.createLog(name, {ensembleSize: o.ensemble, writeQuorum: o.writeQuorum, ackQuorum: o.ackQuorum, compression: o.compression})
      this.created.push(name)
    }
    this.producers = this.names.map((name, i) => new Producer(
      {index: i, rate: o.rate / o.producers, outstanding: o.outstanding, maxEntries: share(o.entries, o.producers, i), offsetUs: o.rate > 0 ? (i * 1e6) / o.rate : 0},
      // LogWriter.open is what a Log handle's first append does; called here it happens before the clock.
      () => LogWriter.open(client, client.logs, name), new PayloadFactory(o.payload, o.size, 0x9e3779b9 ^ (i + 1)), rec, this.phase))
    await Promise.all(this.producers.map(p => p.init()))
  }

  /** append, tail, e2e: producers (and followers) until the duration or the entries are done. */
  private async produce(): Promise<void> {
    const {rec} = this
    this.subs = this.follow ? this.subscribe('follow') : []
    const reading = this.subs.map(s => s.run())
    this.beginAfterWarmup(this.follow ? [rec.produced, rec.consumed] : [rec.produced], this.o.durationSec)
    await Promise.all(this.producers.map(p => p.run()))
    this.phase.stop()
    rec.produced.stopUs = rec.consumed.stopUs = nowUs()
    await this.settle()
    if (!this.follow) return
    const until = Date.now() + (this.interrupted ? INTERRUPTED_DRAIN_MS : DRAIN_MS)
    while (Date.now() < until && this.subs.some(s => this.behind(s) > 0n)) await sleep(10)
    for (const s of this.subs) {
      rec.error(NOT_RECEIVED, Number(this.behind(s)))
      s.stop()
    }
    await withTimeout(Promise.all(reading), STOP_MS)
  }

  /** read: write `entries` (measured from the start; the warm-up is the read phase's), seal, read back. */
  private async writeThenRead(): Promise<void> {
    const {rec, o} = this
    this.begin([rec.produced], undefined)
    await Promise.all(this.producers.map(p => p.run()))
    this.phase.stop()
    rec.produced.stopUs = nowUs()
    await this.settle()
    rec.produced.finished = true
    await this.closeWriters(true)
    if (this.interrupted) return
    this.printTail(rec.roll())
    this.progress.line(`wrote ${rec.produced.entries} entries in ${rec.produced.seconds().toFixed(1)} s; reading them back with ${o.consumers} consumer(s)`)
    this.subs = this.subscribe('read')
    const reading = this.subs.map(s => s.run())
    this.beginAfterWarmup([rec.consumed], undefined, () => {
      if (o.durationSec !== undefined) this.timers.push(setTimeout(() => { for (const s of this.subs) s.stop() }, o.durationSec * 1000))
    })
    await Promise.all(reading)
    rec.consumed.stopUs = nowUs()
    // A reader stopped by --duration or Ctrl-C has not missed anything; one that reached the end has.
    for (const s of this.subs) if (s.completed) rec.error(NOT_RECEIVED, Number(this.behind(s)))
  }

  private subscribe(mode: 'follow' | 'read'): Subscription[] {
    return subscribedLogs(this.o.consumers, this.names.length).map(l => new Subscription(this.names[l]!, l, mode, () => this.client.openLog(this.names[l]!), this.rec))
  }

  /** Entries its log's producer had acknowledged that a subscription has not received. */
  private behind(s: Subscription): bigint {
    const d = (this.producers[s.producerIndex]?.lastOffset ?? -1n) - s.lastOffset
    return d > 0n ? d : 0n
  }

  /** Wait for the appends in flight (bounded); those unanswered are errors. */
  private async settle(): Promise<void> {
    const left = await Promise.all(this.producers.map(p => p.settle(this.interrupted ? INTERRUPTED_SETTLE_MS : SETTLE_MS)))
    this.rec.error(UNFINISHED, left.reduce((a, b) => a + b, 0))
  }

  /** Start measuring `streams` now; with `endAfterSec`, the producers stop issuing that long after. */
  private begin(streams: Stream[], endAfterSec: number | undefined): void {
    const warm = this.rec.begin(streams)
    if (warm) this.progress.line(windowLine(this.o.mode, warm))
    this.startTicker()
    if (endAfterSec !== undefined) this.phase.endUs = streams[0]!.startUs + endAfterSec * 1e6
  }

  /** begin() once the warm-up is over (now, if there is none), then `then`. */
  private beginAfterWarmup(streams: Stream[], endAfterSec: number | undefined, then?: () => void): void {
    const go = (): void => {
      if (this.interrupted) return
      this.begin(streams, endAfterSec)
      then?.()
    }
    if (this.o.warmupSec <= 0) return go()
    this.startTicker()
    this.timers.push(setTimeout(go, this.o.warmupSec * 1000))
  }

  private startTicker(): void {
    clearInterval(this.ticker)
    this.ticker = setInterval(() => this.progress.line(windowLine(this.o.mode, this.rec.roll())), this.o.reportIntervalSec * 1000)
  }

  /** A window cut short by a phase's end: printed only if it is long enough for its rates to mean something. */
  private printTail(w: Window): void {
    if (w.errors > 0 || (w.seconds >= Math.min(1, this.o.reportIntervalSec / 2) && w.streams.some(s => s.entries > 0))) this.progress.line(windowLine(this.o.mode, w))
  }

  private status(): string {
    const {o, rec} = this
    const total = o.durationSec === undefined ? '' : `/${(o.durationSec + o.warmupSec).toFixed(0)}`
    const got = this.follow || o.mode === 'read' ? `, ${rec.consumed.entries} ${o.mode === 'read' ? 'read' : 'received'}` : ''
    return `${o.mode} ${rec.elapsed().toFixed(0)}${total} s: ${rec.produced.entries} sent${got}, ${rec.errorCount} errors`
  }

  /** Seal each producer's segment (so the log reads to its end), bounded; failures counted if `count`. */
  private async closeWriters(count: boolean): Promise<void> {
    await Promise.all(this.producers.map(async p => {
      const h = p.handle
      if (!h) return
      p.forget()
      try {
        if ((await withTimeout(h.close(), CLEANUP_MS)) === 'timeout' && count) this.rec.error(CLOSE_TIMEOUT)
      } catch (err) {
        if (count) this.rec.errorOf(err)
      }
    }))
  }

  private async cleanup(): Promise<void> {
    clearInterval(this.ticker)
    for (const t of this.timers) clearTimeout(t)
    this.progress.stop()
    this.phase.stop()
    for (const s of this.subs) s.stop()
    await this.closeWriters(false)
    if (!this.o.keep) {
      for (const name of this.created) {
        const how = `delete it with: logctl log delete ${name}`
        try {
          if ((await withTimeout(this.client.deleteLog(name), CLEANUP_MS)) === 'timeout') this.io.line(`warning: deleting log ${name} timed out; ${how}`)
        } catch (err) {
          this.io.line(`warning: could not delete log ${name} (${isLogError(err) ? err.code : String(err)}); ${how}`)
        }
      }
    }
    this.hlog?.close()
    process.removeListener('SIGINT', this.onSigint)
    process.removeListener('SIGINT', this.hardExit)
  }
}
