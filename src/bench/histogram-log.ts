/**
 * `--histogram FILE`: the measured intervals in the HdrHistogram log format (version 1.3, as Java's
 * HistogramLogWriter and hdr-histogram-js's write it), one line per report interval and latency, tagged
 * `append`, `e2e` or `read`. Values are µs; the Interval_Max column is in ms. HistogramLogAnalyzer, hdr-plot
 * or HistogramLogReader read it back. Lines are written as each interval closes, so an interrupted run
 * keeps what it measured.
 */
import {closeSync, openSync, writeSync} from 'node:fs'
import hdr, {type Histogram} from 'hdr-histogram-js'
import {fromSystemError} from '../errors.js'
import type {IntervalSink} from './recorder.js'

export class HistogramLogFile implements IntervalSink {
  private fd: number | undefined
  private readonly writer: InstanceType<typeof hdr.HistogramLogWriter>

  /** Opens (truncates) the file now, so a bad path fails before the run starts. */
  constructor(readonly path: string, private readonly baseUs: number, comment: string) {
    try {
      this.fd = openSync(path, 'w')
    } catch (err) {
      throw fromSystemError(err, `--histogram ${path}`)
    }
    this.writer = new hdr.HistogramLogWriter(text => this.write(text))
    this.writer.outputLogFormatVersion()
    this.writer.outputComment(comment)
    this.writer.outputStartTime(baseUs / 1000)
    this.writer.outputLegend()
  }

  interval(h: Histogram, startUs: number, endUs: number): void {
    this.writer.outputIntervalHistogram(h, (startUs - this.baseUs) / 1e6, (endUs - this.baseUs) / 1e6, 1000)
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
  }

  private write(text: string): void {
    if (this.fd === undefined) return
    try {
      writeSync(this.fd, text)
    } catch (err) {
      throw fromSystemError(err, `--histogram ${this.path}`)
    }
  }
}
