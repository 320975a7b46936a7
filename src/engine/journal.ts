/**
 * The main-thread half of the journal: the group-commit policy. Records queue here while the journal
 * worker writes and syncs the previous batch; when that sync returns, everything queued since goes out
 * as the next batch (one write, one fdatasync). Batching therefore adapts to load with no timer.
 *
 * Named triggers (BookKeeper's journal has the same three), each with a counter in `stats`:
 *   - idle:  nothing in flight, so a record is flushed at once (lowest latency at low load);
 *   - synced: a sync completed and records were waiting;
 *   - full:  a batch reached maxBatchBytes; the rest waits for the next round (bounds write size and the
 *            window during which a batch can be torn by a crash).
 * An optional maxWaitMicros holds every idle flush back briefly to let more records join; off by default.
 *
 * Adaptive wait (adaptiveWaitMicros, default 1 ms; Node's timers count whole milliseconds, so a shorter wait
 * is 1 ms anyway): when records keep arriving from several sources at
 * once, many small syncs each cost a bookie's journal thread and the disk as much as a large one, so an idle
 * flush that is still small (under ADAPTIVE_FLUSH_BYTES) waits up to that long for more to join. The sign
 * of such load is records arriving while a sync is in flight: when that happened during at least BUSY_SYNCS
 * of the last 32 syncs, idle flushes wait. A lone
 * writer with one add in flight never waits: its next record only comes once the previous one is durable, so
 * nothing ever queues behind its syncs. Measured with benchmarks/log.ts's tail step (three bookies, a writer
 * at 40,000 entries/s, a follower; paired runs with a fixed wait, --bookie-engine '{"maxWaitMicros":500}',
 * which this rule engages under that load): bookies' CPU ~10 points lower, follower ack -> received p99
 * 15.4 / 23.6 / 19.2 ms -> 9.7 / 9.7 / 14.4 ms; at 1 and 1024 in flight nothing measurable (docs/BENCHMARKS.md).
 */
import {Worker} from 'node:worker_threads'
import {ErrorCode, LogError, fromSystemError} from '../errors.js'
import {SEGMENT_HEADER_BYTES, recordBytes, writeRecord, type RecordType} from './format.js'
import type {FromJournal, JournalInit, ToJournal} from './messages.js'

/** Of the last 32 syncs, how many must have had records queued behind them for idle flushes to wait. */
export const BUSY_SYNCS = 8
/**
 * An adaptive wait ends as soon as this much is queued, and a flush that already has it does not wait: a
 * sync this large is worth its fixed cost, and holding a large batch back only delays a pipelining writer
 * (1024 appends in flight arrive as two 512 KiB requests).
 */
export const ADAPTIVE_FLUSH_BYTES = 64 * 1024

export interface JournalRecord {
  type: RecordType
  flags: number
  digest: number
  ledgerId: bigint
  entryId: bigint
  lac: bigint
  payloadLen: number
  /** What is stored after the header: the payload, possibly LZ4-compressed; empty for FENCE/DELETE. */
  stored: Uint8Array
  /** Where the record went, set by the journal when its batch is cut (final once the batch is durable). */
  segmentId?: number
  offset?: number
  /** Record bytes on disk, header and padding included. */
  length?: number
}

export interface Location {
  segmentId: number
  offset: number
  /** Record bytes on disk, header and padding included. */
  length: number
}

/** A record whose batch was cut: where it went is set on it. */
export type Placed<R extends JournalRecord = JournalRecord> = R & Location

export interface JournalOptions {
  dir: string
  preallocBytes: number
  maxSegmentBytes: number
  maxBatchBytes: number
  maxWaitMicros: number
  /** Wait of an idle flush under concurrent load (see above); 0 = never. */
  adaptiveWaitMicros: number
  /** Write batches with O_DIRECT where the file system allows it (journal-worker.ts explains). */
  directIo: boolean
}

export interface JournalStats {
  batches: number
  records: number
  bytes: number
  flushIdle: number
  flushSynced: number
  flushFull: number
  /** Idle flushes that waited (maxWaitMicros, or adaptiveWaitMicros under load). */
  flushWaited: number
  lastSyncMicros: number
  syncMicrosTotal: number
  preallocMicrosTotal: number
  queueDepth: number
  /** Batches are written with O_DIRECT (false: through the page cache, by option or because the file system refused it). */
  directIo: boolean
}

export interface JournalEvents {
  /** A batch became durable (for metrics and the diagnostics channel). */
  onBatch?: (info: {records: number; bytes: number; syncMicros: number; writeMicros: number}) => void
  /** The active segment was sealed at `end` and a new one started. */
  onSealed?: (segmentId: number, end: number) => void
  /** A batch failed (ENOSPC -> READ_ONLY, anything else -> IO). */
  onFailure?: (err: LogError) => void
}

/** One submission: records that travel in the same batch and settle together. */
interface Pending {
  recs: JournalRecord[]
  bytes: number
  /**
   * Called synchronously when the batch is durable, before any promise settles, so that the engine's index
   * always matches the journal head at every turn of the event loop (what a checkpoint snapshots).
   */
  onDurable: (() => void) | undefined
  resolve: () => void
  reject: (err: Error) => void
}

interface InFlight {
  seq: number
  segmentId: number
  position: number
  items: Pending[]
  bytes: number
  records: number
}

export class Journal {
  readonly stats: JournalStats = {
    batches: 0, records: 0, bytes: 0, flushIdle: 0, flushSynced: 0, flushFull: 0, flushWaited: 0,
    lastSyncMicros: 0, syncMicrosTotal: 0, preallocMicrosTotal: 0, queueDepth: 0, directIo: false,
  }

  private readonly worker: Worker
  private readonly opts: JournalOptions
  private readonly events: JournalEvents
  private queue: Pending[] = []
  private queuedBytes = 0
  private queuedRecords = 0
  private inFlight: InFlight | undefined
  private spare: ArrayBuffer | undefined
  private segmentId: number
  private position: number
  private seq: number
  private waitTimer: NodeJS.Timeout | undefined
  /** One bit per recent sync, newest lowest: 1 when records were queued by the time it completed. */
  private queuedBehind = 0
  private closing: Promise<void> | undefined
  private closed = false
  private fatal: Error | undefined

  private constructor(worker: Worker, opts: JournalOptions, events: JournalEvents, segmentId: number, position: number, nextSeq: number) {
    this.worker = worker
    this.opts = opts
    this.events = events
    this.segmentId = segmentId
    this.position = position
    this.seq = nextSeq
    worker.on('message', (m: FromJournal) => this.onMessage(m))
    worker.on('error', err => this.fail(new LogError(ErrorCode.INTERNAL, `journal worker crashed: ${err.message}`, {cause: err})))
  }

  /** Start the worker on segment `segmentId` (created when `create`), writing next at `position`. */
  static async start(opts: JournalOptions, events: JournalEvents, at: {segmentId: number; position: number; nextSeq: number; create: boolean}): Promise<Journal> {
    const init: JournalInit = {dir: opts.dir, preallocBytes: opts.preallocBytes, directIo: opts.directIo}
    const worker = new Worker(new URL('./journal-worker.js', import.meta.url), {workerData: init})
    let directIo = false
    const opened = new Promise<void>((resolve, reject) => {
      const onMsg = (m: FromJournal): void => {
        worker.off('error', reject)
        worker.off('message', onMsg)
        if (m.type === 'opened') {
          directIo = m.directIo
          resolve()
        }
        else if (m.type === 'open-failed') reject(fromSystemError(Object.assign(new Error(m.message), {code: m.errno}), `opening segment ${at.segmentId}`))
      }
      worker.on('message', onMsg)
      worker.once('error', reject)
    })
    worker.postMessage({type: 'open', segmentId: at.segmentId, create: at.create} satisfies ToJournal)
    try {
      await opened
    } catch (err) {
      await worker.terminate()
      throw err
    }
    const journal = new Journal(worker, opts, events, at.segmentId, at.create ? SEGMENT_HEADER_BYTES : at.position, at.nextSeq)
    journal.stats.directIo = directIo
    return journal
  }

  /** The position the next batch will be written at (everything before it is durable or in flight). */
  get head(): {segmentId: number; offset: number; nextSeq: number} {
    return {segmentId: this.segmentId, offset: this.position, nextSeq: this.seq}
  }

  get idle(): boolean {
    return this.inFlight === undefined && this.queue.length === 0
  }

  /** Append one record; `onDurable` (as for appendGroup) gets it with its location. */
  append<R extends JournalRecord>(rec: R, onDurable?: (rec: Placed<R>) => void): Promise<void> {
    return this.appendGroup([rec], onDurable && (recs => onDurable(recs[0]!)))
  }

  /**
   * Append records that go to disk in the same batch (a network request's worth): one promise for all of
   * them, settled once they are durable; each record's location is set on it (segmentId, offset, length).
   * A group larger than maxBatchBytes is written alone.
   */
  appendGroup<R extends JournalRecord>(recs: R[], onDurable?: (placed: Array<Placed<R>>) => void): Promise<void> {
    if (this.closed || this.closing) return Promise.reject(new LogError(ErrorCode.CLOSED, 'the journal is closed'))
    if (this.fatal) return Promise.reject(this.fatal)
    return new Promise<void>((resolve, reject) => {
      let bytes = 0
      for (const r of recs) bytes += recordBytes(r.stored.length)
      // flush() places every record before the batch is written, so by the time this runs they are Placed.
      this.queue.push({recs, bytes, onDurable: onDurable && (() => onDurable(recs as Array<Placed<R>>)), resolve, reject})
      this.queuedBytes += bytes
      this.queuedRecords += recs.length
      this.stats.queueDepth = this.queuedRecords
      if (this.inFlight === undefined) {
        // A fixed wait (maxWaitMicros) holds back up to a full batch; the adaptive one, under load, a small one.
        const fixed = this.opts.maxWaitMicros > 0
        const wait = fixed ? this.opts.maxWaitMicros : this.loaded() ? this.opts.adaptiveWaitMicros : 0
        if (wait > 0 && this.queuedBytes < (fixed ? this.opts.maxBatchBytes : ADAPTIVE_FLUSH_BYTES)) {
          if (!this.waitTimer) {
            this.stats.flushWaited++
            this.waitTimer = setTimeout(() => this.flush('idle'), wait / 1000)
          }
        } else {
          this.flush('idle')
        }
      }
    })
  }

  /** Concurrent load: records were queued behind at least BUSY_SYNCS of the last 32 syncs. */
  private loaded(): boolean {
    let bits = this.queuedBehind
    let n = 0
    while (bits !== 0) {
      bits &= bits - 1
      n++
    }
    return n >= BUSY_SYNCS
  }

  private flush(trigger: 'idle' | 'synced'): void {
    if (this.waitTimer) {
      clearTimeout(this.waitTimer)
      this.waitTimer = undefined
    }
    if (this.inFlight !== undefined || this.queue.length === 0) return
    // Take groups up to maxBatchBytes and, unless the batch starts a segment, up to the segment's end
    // (always at least one group): a segment grows past maxSegmentBytes by one group at most.
    const room = this.position > SEGMENT_HEADER_BYTES ? Math.max(0, this.opts.maxSegmentBytes - this.position) : Infinity
    let take = 0
    let bytes = 0
    while (take < this.queue.length) {
      const b = this.queue[take]!.bytes
      if (take > 0 && (bytes + b > this.opts.maxBatchBytes || bytes + b > room)) break
      bytes += b
      take++
    }
    const items = take === this.queue.length ? this.queue : this.queue.slice(0, take)
    this.queue = take === this.queue.length ? [] : this.queue.slice(take)
    this.queuedBytes -= bytes
    let records = 0
    for (const p of items) records += p.recs.length
    this.queuedRecords -= records
    this.stats.queueDepth = this.queuedRecords
    if (this.queue.length > 0) this.stats.flushFull++
    else if (trigger === 'idle') this.stats.flushIdle++
    else this.stats.flushSynced++

    let segmentId = this.segmentId
    let position = this.position
    if (position + bytes > this.opts.maxSegmentBytes && position > SEGMENT_HEADER_BYTES) {
      segmentId += 1 // roll: the worker seals the current file and creates the next one
      position = SEGMENT_HEADER_BYTES
    }
    const seq = this.seq++
    const ab = this.spare && this.spare.byteLength >= bytes ? this.spare : new ArrayBuffer(Math.max(bytes, 64 * 1024))
    this.spare = undefined
    const buf = Buffer.from(ab, 0, bytes)
    let off = 0
    for (const p of items) {
      for (const r of p.recs) {
        const len = writeRecord(buf, off, r, seq)
        r.segmentId = segmentId
        r.offset = position + off
        r.length = len
        off += len
      }
    }
    this.inFlight = {seq, segmentId, position, items, bytes, records}
    this.worker.postMessage({type: 'write', seq, segmentId, position, buf: ab, length: bytes} satisfies ToJournal, [ab])
  }

  private onMessage(m: FromJournal): void {
    if (m.type === 'closed' || m.type === 'opened' || m.type === 'open-failed') return
    const batch = this.inFlight
    if (!batch || batch.seq !== m.seq) return
    this.inFlight = undefined
    this.spare = m.buf
    if (m.type === 'written') {
      if (batch.segmentId !== this.segmentId) {
        this.events.onSealed?.(this.segmentId, this.position)
        this.segmentId = batch.segmentId
      }
      for (const p of batch.items) p.onDurable?.()
      this.position = batch.position + batch.bytes
      for (const p of batch.items) p.resolve()
      const s = this.stats
      s.batches++
      s.records += batch.records
      s.bytes += batch.bytes
      s.lastSyncMicros = m.syncMicros
      s.syncMicrosTotal += m.syncMicros
      s.preallocMicrosTotal += m.preallocMicros
      s.directIo = m.directIo
      this.events.onBatch?.({records: batch.records, bytes: batch.bytes, syncMicros: m.syncMicros, writeMicros: m.writeMicros})
    } else {
      const err = fromSystemError(Object.assign(new Error(m.message), {code: m.errno}), `journal write of ${batch.records} records`)
      // If the worker already rolled to the new segment before failing, follow it there (the old one was
      // synced and sealed by the roll); the failed batch's position is simply reused.
      if (m.segmentId === batch.segmentId && batch.segmentId !== this.segmentId) {
        this.events.onSealed?.(this.segmentId, this.position)
        this.segmentId = batch.segmentId
        this.position = batch.position
      }
      for (const p of batch.items) p.reject(err)
      this.events.onFailure?.(err)
    }
    this.queuedBehind = ((this.queuedBehind << 1) | (this.queue.length > 0 ? 1 : 0)) >>> 0
    if (this.queue.length > 0) this.flush('synced')
    else this.onDrained?.()
  }

  private onDrained: (() => void) | undefined

  /** Reject everything queued (not in flight) with `err`, e.g. when the engine turns read-only. */
  rejectQueued(err: LogError): void {
    const q = this.queue
    this.queue = []
    this.queuedBytes = 0
    this.queuedRecords = 0
    this.stats.queueDepth = 0
    for (const p of q) p.reject(err)
  }

  private fail(err: LogError): void {
    this.fatal = err
    const batch = this.inFlight
    this.inFlight = undefined
    if (batch) for (const p of batch.items) p.reject(err)
    this.rejectQueued(err)
    this.events.onFailure?.(err)
  }

  /** Wait for everything queued to become durable, then stop the worker. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.waitTimer) this.flush('idle')
      if (!this.idle && !this.fatal) await new Promise<void>(resolve => { this.onDrained = resolve })
      this.onDrained = undefined
      if (!this.fatal) {
        const closed = new Promise<void>(resolve => {
          this.worker.on('message', (m: FromJournal) => { if (m.type === 'closed') resolve() })
          this.worker.once('exit', () => resolve())
        })
        this.worker.postMessage({type: 'close'} satisfies ToJournal)
        await closed
      }
      await this.worker.terminate()
      this.closed = true
    })()
    return this.closing
  }
}
