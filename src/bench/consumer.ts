/**
 * A consumer's subscription to one log: it reads every entry from offset 0, in order.
 *
 *   follow (tail, e2e): tails the log while the producers write; each entry's latency is its receive time
 *     minus the intended send time in its header (producer and consumer share this process's clock), so
 *     it includes the append, the LAC reaching the bookies, and the long poll.
 *   read (read): reads the log, already written and sealed, to its end as fast as it can; each entry's
 *     latency is how long the consumer waited for it after asking for the next one (entries arrive in
 *     batches, so most waits are ~0 and the tail is the fetch of a batch).
 *
 * Every entry's header is checked: the producer must be this log's, and sequence numbers must go up (gaps
 * are fine: an append that failed leaves one). A read that fails is counted by its code and the
 * subscription resumes after the last entry it got.
 */
import type {LogEntry} from '../client/log.js'
import {readHeader} from './payloads.js'
import {nowUs, type Recorder} from './recorder.js'

export interface EntrySource {
  read(o: {from: bigint; signal: AbortSignal}): AsyncGenerator<LogEntry>
  follow(o: {from: bigint; signal: AbortSignal; pollMs: number}): AsyncGenerator<LogEntry>
}

export const OUT_OF_ORDER = 'BENCH_OUT_OF_ORDER'
export const FOREIGN_ENTRY = 'BENCH_FOREIGN_ENTRY'

const RETRY_MS = 200
/** Long-poll wait of a follower: also how long a stop may take to be noticed while it waits. */
const POLL_MS = 200

export class Subscription {
  received = 0
  /** Offset of the last entry received (-1n: none). */
  lastOffset = -1n
  /** A read subscription reached the end of its log. */
  completed = false
  private lastSeq = -1
  private readonly ac = new AbortController()

  constructor(readonly logName: string, readonly producerIndex: number, private readonly mode: 'follow' | 'read', private readonly open: () => Promise<EntrySource>, private readonly rec: Recorder) {}

  get stopped(): boolean {
    return this.ac.signal.aborted
  }

  stop(): void {
    this.ac.abort()
  }

  async run(): Promise<void> {
    const signal = this.ac.signal
    while (!signal.aborted) {
      try {
        const src = await this.open()
        const from = this.lastOffset + 1n
        const entries = this.mode === 'follow' ? src.follow({from, signal, pollMs: POLL_MS}) : src.read({from, signal})
        let asked = nowUs()
        for await (const e of entries) {
          this.take(e, asked)
          if (signal.aborted) break
          asked = nowUs()
        }
        if (this.mode === 'read' && !signal.aborted) {
          this.completed = true
          return
        }
      } catch (err) {
        if (signal.aborted) return
        this.rec.errorOf(err)
        await new Promise(resolve => setTimeout(resolve, RETRY_MS))
      }
    }
  }

  private take(e: LogEntry, asked: number): void {
    const at = nowUs()
    this.received++
    this.lastOffset = e.offset
    const h = readHeader(e.payload)
    if (h !== undefined) {
      if (h.producer !== this.producerIndex) this.rec.error(FOREIGN_ENTRY)
      else if (h.seq <= this.lastSeq && !(this.lastSeq > 0xf0000000 && h.seq < 0x10000000)) this.rec.error(OUT_OF_ORDER)
      this.lastSeq = h.seq
    }
    const s = this.rec.consumed
    if (this.mode === 'follow') {
      const sendUs = h?.sendUs ?? at
      this.rec.record(s, sendUs, e.payload.length, at - sendUs, at)
    } else {
      this.rec.record(s, at, e.payload.length, at - asked, at)
    }
  }
}
