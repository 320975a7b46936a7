import {Args, Flags} from '@oclif/core'
import {BENCH_MODES, parseNumber, parseSize, resolveOptions, type BenchMode} from '../bench/options.js'
import {PAYLOAD_KINDS, type PayloadKind} from '../bench/payloads.js'
import {summaryLines} from '../bench/reporter.js'
import {clientOptionsFor, runBench} from '../bench/runner.js'
import type {BenchSummary} from '../bench/summary.js'
import {BaseCommand} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'

const seconds = (min: number, exclusiveMin: boolean) => Flags.custom<number>({helpValue: '<s>', parse: async s => parseNumber(s, {min, exclusiveMin, what: 'a number of seconds'})})

export default class Bench extends BaseCommand {
  static override summary = 'Load-test a cluster: append, read back, tail, or end to end, with latency percentiles'
  static override description = `Creates its own logs (deleted at the end unless --keep), runs the load, prints a line every
--report-interval seconds (stderr) and a summary (stdout; --json: the summary as JSON). At a fixed --rate,
latency is measured from each entry's intended send time, so a stall counts in full (no coordinated
omission). MB = 2^20 bytes. Ctrl-C prints the summary so far. See docs/BENCH.md.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> append --size 1KiB --duration 30',
    '<%= config.bin %> <%= command.id %> append --rate 5000 --producers 4 --size 100-2000 --payload text --histogram append.hlog',
    '<%= config.bin %> <%= command.id %> e2e --rate 1000 --consumers 2 --json',
    '<%= config.bin %> <%= command.id %> read --entries 200000 --size 16KiB',
  ]

  static override args = {mode: Args.string({description: 'append | read (write, then read back) | tail (followers) | e2e (both latencies)', required: true, options: [...BENCH_MODES]})}
  static override flags = {
    ...clusterFlags,
    size: Flags.custom({helpValue: '<bytes|min-max>', parse: async s => parseSize(s)})({description: 'payload bytes per entry (100, 16KiB) or a range (100-2000)', default: {min: 1024, max: 1024}, defaultHelp: async () => '1024'}),
    rate: Flags.custom<number>({helpValue: '<n>', parse: async s => parseNumber(s, {min: 0, what: 'entries per second (0 = as fast as possible)'})})({description: 'entries/s over all producers (0 = as fast as possible)', default: 0}),
    producers: Flags.integer({char: 'p', description: 'producers (one log each)', default: 1, min: 1, max: 1000}),
    consumers: Flags.integer({char: 'c', description: 'consumers (read, tail, e2e; default 1)', min: 0, max: 1000}),
    outstanding: Flags.integer({description: 'appends in flight per producer at most', default: 1000, min: 1, max: 1_000_000}),
    duration: seconds(0, true)({description: 'measured seconds (append/tail/e2e default 10 unless --entries; read: caps the read-back)'}),
    entries: Flags.integer({char: 'n', description: 'measured entries over all producers (read: entries written, default 50000)', min: 1}),
    warmup: seconds(0, false)({description: 'seconds of load before measuring starts', default: 0}),
    ensemble: Flags.integer({char: 'e', description: 'ensemble size E of the logs', default: 3, min: 1}),
    'write-quorum': Flags.integer({char: 'w', description: 'write quorum Qw', default: 3, min: 1}),
    'ack-quorum': Flags.integer({char: 'a', description: 'ack quorum Qa', default: 2, min: 1}),
    compression: Flags.string({options: ['none', 'lz4'], default: 'none', description: 'store entries compressed'}),
    payload: Flags.string({options: [...PAYLOAD_KINDS], default: 'random', description: 'random bytes, or text: compressible log-like lines'}),
    log: Flags.string({description: 'name of the log (several producers: NAME-0, NAME-1, ...) [default: bench-<mode>-<id>]'}),
    keep: Flags.boolean({description: 'keep the logs at the end (default: delete them)'}),
    'report-interval': seconds(0, true)({description: 'seconds between report lines', default: 5}),
    histogram: Flags.string({description: 'write the latency histograms of each interval to FILE (HdrHistogram log, µs)', helpValue: '<file>'}),
  }

  async run(): Promise<BenchSummary> {
    const {args, flags} = await this.parse(Bench)
    const o = resolveOptions({
      mode: args.mode as BenchMode, size: flags.size, rate: flags.rate, producers: flags.producers, consumers: flags.consumers, outstanding: flags.outstanding,
      durationSec: flags.duration, entries: flags.entries, warmupSec: flags.warmup, ensemble: flags.ensemble, writeQuorum: flags['write-quorum'], ackQuorum: flags['ack-quorum'],
      compression: flags.compression as 'none' | 'lz4', payload: flags.payload as PayloadKind, logName: flags.log, keep: flags.keep === true,
      reportIntervalSec: flags['report-interval'], histogramFile: flags.histogram,
    })
    // Report lines go to stderr with --json too (oclif's logToStderr is silent then): stdout keeps the JSON.
    const io = {line: (t: string) => process.stderr.write(`${t}\n`), tty: process.stderr.isTTY ? process.stderr : undefined}
    const summary = await withClient(flags, c => runBench(c, o, io), clientOptionsFor(o, undefined))
    if (!this.jsonEnabled()) for (const line of summaryLines(summary)) this.log(line)
    if (summary.interrupted) process.exitCode = 130
    return summary
  }
}
