/**
 * Named logs: the unbounded, ordered streams applications use (event sourcing, log aggregation, CDC,
 * pub/sub), built on ledgers as DistributedLog and Pulsar's managed ledger do.
 *
 * Writing: one writer at a time. Opening for write takes the writer role with a CAS'd epoch, recovers
 * (fences and closes) the previous writer's open segment, and starts a new segment after it; the previous
 * writer then gets FENCED from the bookies on its next append, and every metadata change it tries fails
 * the epoch check. A segment rolls (by bytes, entries or age) by draining and closing its ledger (the next
 * segment's ledger is created meanwhile), then recording the close and publishing the next segment at
 * exactly the following offset in one metadata update, so offsets stay dense.
 *
 * Each entry's payload is prefixed with a 16-byte header: its append time (u64 ms, big-endian), so readers
 * can show it, and the segment's bytes up to and including it (u64), so that a writer taking over can
 * learn a recovered segment's size from its last entry alone.
 */
import {channel} from 'node:diagnostics_channel'
import {hostname} from 'node:os'
import {writeSafe64BE} from '../bytes.js'
import {ErrorCode, LogError, isLogError} from '../errors.js'
import type {LedgerMetadata} from '../meta/store.js'
import type {ReadEntry} from '../net/bookie-client.js'
import type {LedgerReader} from './ledger-reader.js'
import type {LedgerWriter} from './ledger-writer.js'
import {closedEnd, type LogMeta, type LogStore, type Segment} from './log-meta.js'

export interface LogEntry {
  offset: bigint
  /** Append time, ms since the epoch (the writer's clock). */
  timestamp: number
  payload: Buffer
}

export const ENTRY_HEADER_BYTES = 16

/** Diagnostics channels: `roll` gets {log, ledgerId, ms} after each segment roll (appends waited `ms` for it). */
export const logChannels = {
  roll: channel('logctl:log:roll'),
}

/**
 * The 16-byte header that goes in front of an entry of `payloadBytes` (sent as the entry's first part, see
 * LedgerWriter.appendParts: the payload itself is not copied).
 */
export function entryHeader(payloadBytes: number, segmentBytes: number, now = Date.now()): Buffer {
  const b = Buffer.allocUnsafe(ENTRY_HEADER_BYTES)
  writeSafe64BE(b, now, 0)
  writeSafe64BE(b, segmentBytes + ENTRY_HEADER_BYTES + payloadBytes, 8)
  return b
}

/** The segment's stored bytes up to and including this entry (from its header). */
export function segmentBytesThrough(data: Buffer): bigint {
  return data.length >= ENTRY_HEADER_BYTES ? data.readBigUInt64BE(8) : 0n
}

export function unwrapEntry(offset: bigint, data: Buffer): LogEntry {
  if (data.length < ENTRY_HEADER_BYTES) throw new LogError(ErrorCode.CORRUPT, `log entry at offset ${offset} is shorter than its header`)
  return {offset, timestamp: Number(data.readBigUInt64BE(0)), payload: data.subarray(ENTRY_HEADER_BYTES)}
}

/** What the log layer needs of the client (LogctlClient provides it; kept narrow so imports point one way). */
export interface LedgerOps {
  createLedger(o: {ensembleSize: number; writeQuorum: number; ackQuorum: number; compression: LedgerMetadata['compression']; customMetadata: Record<string, string>}): Promise<LedgerWriter>
  recoverLedger(id: bigint): Promise<LedgerMetadata>
  openLedger(id: bigint): Promise<LedgerReader>
  deleteLedger(id: bigint): Promise<{unreached: string[]}>
}

function fenced(name: string, why: string): LogError {
  return new LogError(ErrorCode.FENCED, `log ${name}: another writer took over (${why})`, {detail: {log: name}})
}

export class LogWriter {
  private ledger: LedgerWriter
  private segment: Segment
  private segmentBytes = 0
  /** Stored bytes appended to the current segment, headers included (what each entry's header carries). */
  private storedBytes = 0
  private segmentEntries = 0
  private rolling: Promise<void> | undefined
  private failed: LogError | undefined
  private closing: Promise<void> | undefined

  /** Called after each roll (the log handle applies retention there, as DistributedLog's writer does). */
  onRoll: (() => void) | undefined

  private constructor(private readonly client: LedgerOps, private readonly store: LogStore, readonly name: string, private readonly epoch: number, private config: LogMeta['config'], ledger: LedgerWriter, segment: Segment) {
    this.ledger = ledger
    this.segment = segment
  }

  /** Take the writer role: bump the epoch, recover the previous writer's open segment, start a new one. */
  static async open(client: LedgerOps, store: LogStore, name: string): Promise<LogWriter> {
    const mine = await store.update(name, m => ({...m, epoch: m.epoch + 1, writer: {epoch: m.epoch + 1, since: Date.now(), pid: process.pid, host: hostname()}}))
    const epoch = mine.epoch
    const open = mine.segments.at(-1)
    if (open && open.state === 'OPEN') {
      const rec = await client.recoverLedger(open.ledgerId)
      // A recovered ledger's length is unknown to its metadata; its last entry's header says it.
      let bytes = rec.length
      if (rec.lastEntryId >= 0n) {
        const [last] = await (await client.openLedger(open.ledgerId)).read(rec.lastEntryId, rec.lastEntryId)
        if (last) bytes = segmentBytesThrough(last.payload)
      }
      await store.update(name, m => {
        if (m.epoch !== epoch) throw fenced(name, `epoch ${m.epoch} is newer than ours, ${epoch}`)
        const last = m.segments.at(-1)
        if (!last || last.ledgerId !== open.ledgerId || last.state === 'CLOSED') return undefined
        const closedSeg: Segment = {...last, state: 'CLOSED', lastOffset: last.firstOffset + rec.lastEntryId, bytes, closedAt: Date.now()}
        return {...m, segments: [...m.segments.slice(0, -1), closedSeg]}
      })
    }
    const {ledger, segment} = await LogWriter.startSegment(client, store, name, epoch, mine.config)
    return new LogWriter(client, store, name, epoch, mine.config, ledger, segment)
  }

  /** Create a ledger and publish it as the next segment, at the offset right after the last closed one. */
  private static async startSegment(client: LedgerOps, store: LogStore, name: string, epoch: number, config: LogMeta['config']): Promise<{ledger: LedgerWriter; segment: Segment}> {
    const ledger = await LogWriter.segmentLedger(client, name, config)
    return {ledger, segment: await LogWriter.publish(client, store, name, epoch, ledger)}
  }

  private static segmentLedger(client: LedgerOps, name: string, config: LogMeta['config']): Promise<LedgerWriter> {
    return client.createLedger({ensembleSize: config.ensembleSize, writeQuorum: config.writeQuorum, ackQuorum: config.ackQuorum, compression: config.compression, customMetadata: {log: name}})
  }

  /**
   * Publish `ledger` as the next segment, at the offset right after the last closed one; `before` changes
   * the segments first, in the same update (a roll closes the current segment there). A ledger that could
   * not be published is deleted (never published: don't leak it).
   */
  private static async publish(client: LedgerOps, store: LogStore, name: string, epoch: number, ledger: LedgerWriter, before?: (segments: Segment[]) => Segment[]): Promise<Segment> {
    let segment: Segment | undefined
    try {
      await store.update(name, m => {
        if (m.epoch !== epoch) throw fenced(name, `epoch ${m.epoch} is newer than ours, ${epoch}`)
        const prior = {...m, segments: before ? before(m.segments) : m.segments}
        segment = {ledgerId: ledger.ledgerId, firstOffset: closedEnd(prior), lastOffset: closedEnd(prior) - 1n, state: 'OPEN', bytes: 0n, createdAt: Date.now(), closedAt: 0}
        return {...prior, segments: [...prior.segments, segment]}
      })
    } catch (err) {
      await client.deleteLedger(ledger.ledgerId).catch(() => undefined)
      throw err
    }
    return segment!
  }

  get currentSegment(): Segment {
    return this.segment
  }

  /** Append one entry; resolves with its offset once it is durable on Qa bookies (in offset order). */
  append(input: Buffer | string): Promise<bigint> {
    const payload = typeof input === 'string' ? Buffer.from(input) : input
    // The usual case, without an extra async frame: no roll due, nothing failed or closing.
    if (Buffer.isBuffer(payload) && !this.rolling && !this.failed && !this.closing && !this.shouldRoll(payload.length)) return this.appendNow(payload)
    return this.appendSlow(payload)
  }

  private async appendSlow(payload: Buffer): Promise<bigint> {
    if (!Buffer.isBuffer(payload)) throw new LogError(ErrorCode.BAD_INPUT, 'a log entry must be a Buffer or a string')
    while (this.rolling) await this.rolling
    if (this.failed) throw this.failed
    if (this.closing) throw new LogError(ErrorCode.CLOSED, `the writer of log ${this.name} is closed`)
    if (this.shouldRoll(payload.length)) {
      this.rolling = this.roll().finally(() => { this.rolling = undefined })
      await this.rolling
      if (this.failed) throw this.failed
    }
    return this.appendNow(payload)
  }

  private appendNow(payload: Buffer): Promise<bigint> {
    const first = this.segment.firstOffset
    this.segmentBytes += payload.length
    this.segmentEntries++
    const header = entryHeader(payload.length, this.storedBytes)
    this.storedBytes += ENTRY_HEADER_BYTES + payload.length
    return this.ledger.appendParts(header, payload).then(id => first + id, err => { throw this.fail(err) })
  }

  private shouldRoll(next: number): boolean {
    const c = this.config
    if (this.segmentEntries === 0) return false
    return this.segmentBytes + next > c.segmentBytes ||
      (c.segmentEntries > 0 && this.segmentEntries >= c.segmentEntries) ||
      (c.segmentAgeMs > 0 && Date.now() - this.segment.createdAt >= c.segmentAgeMs)
  }

  private fail(err: unknown): LogError {
    const e = isLogError(err) ? err : new LogError(ErrorCode.INTERNAL, String(err), {cause: err})
    this.failed ??= e.code === ErrorCode.FENCED || e.code === ErrorCode.LEDGER_CLOSED ? fenced(this.name, e.message) : e
    return this.failed
  }

  /** The segments with `seg` recorded closed: its ledger ended at `lastEntryId`, `length` bytes. */
  private static closing(seg: Segment, closed: {lastEntryId: bigint; length: bigint}): (segments: Segment[]) => Segment[] {
    return segments => segments.map(s => (s.ledgerId === seg.ledgerId ? {...s, state: 'CLOSED' as const, lastOffset: s.firstOffset + closed.lastEntryId, bytes: closed.length, closedAt: Date.now()} : s))
  }

  /**
   * Close the current segment (waiting for its appends) and record it closed. Its ledger's close is
   * announced to the bookies (followers at its end then look at once) by the caller, once the log's
   * metadata shows what comes next.
   */
  private async sealCurrent(): Promise<void> {
    const close = LogWriter.closing(this.segment, await this.ledger.close({announce: false}))
    await this.store.update(this.name, m => {
      if (m.epoch !== this.epoch) throw fenced(this.name, `epoch ${m.epoch} is newer than ours, ${this.epoch}`)
      return {...m, segments: close(m.segments)}
    })
  }

  /**
   * Close the current segment and publish the next one. The next segment's ledger is created (with the
   * log's settings as they are now) while the current one drains and closes, and the log's metadata records
   * both in one update: appends wait for the drain, the close and that update only (they waited for two
   * more metadata updates, a read and the ledger's creation one after the other).
   */
  private async roll(): Promise<void> {
    const started = performance.now()
    const next = this.store.get(this.name).then(m => {
      this.config = m.value.config
      return LogWriter.segmentLedger(this.client, this.name, this.config)
    })
    next.catch(() => undefined) // awaited below, after the close: not an unhandled rejection meanwhile
    try {
      let closed: {lastEntryId: bigint; length: bigint}
      try {
        closed = await this.ledger.close({announce: false})
      } catch (err) {
        next.then(l => this.client.deleteLedger(l.ledgerId)).catch(() => undefined) // never published
        throw err
      }
      const ledger = await next
      const segment = await LogWriter.publish(this.client, this.store, this.name, this.epoch, ledger, LogWriter.closing(this.segment, closed))
      this.ledger.announceClosed() // the next segment is published: a follower finds it when it looks
      this.ledger = ledger
      this.segment = segment
      this.segmentBytes = 0
      this.storedBytes = 0
      this.segmentEntries = 0
      if (logChannels.roll.hasSubscribers) logChannels.roll.publish({log: this.name, ledgerId: ledger.ledgerId, ms: performance.now() - started})
      this.onRoll?.()
    } catch (err) {
      this.fail(err)
    }
  }

  /** Wait for every append, close the segment, give up the writer role. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.rolling) await this.rolling
      if (this.failed) return
      await this.sealCurrent()
      this.ledger.announceClosed()
      await this.store.update(this.name, m => (m.epoch === this.epoch ? {...m, writer: null} : undefined))
    })()
    return this.closing
  }
}

export interface LogReadOptions {
  from?: bigint
  /** Stop after this offset. */
  to?: bigint
  /** At most this many entries. */
  limit?: number
  /** Keep waiting for new entries at the end of the log. */
  follow?: boolean
  /** Long-poll wait (default 1000 ms). */
  pollMs?: number
  signal?: AbortSignal
}

function segmentFor(m: LogMeta, offset: bigint): Segment | undefined {
  return m.segments.find(s => s.firstOffset <= offset && (s.state === 'OPEN' || s.lastOffset >= offset))
}

/** Read a log from `from` on, across segments, optionally following the tail. */
export async function* readLog(client: LedgerOps, store: LogStore, name: string, o: LogReadOptions = {}): AsyncGenerator<LogEntry> {
  let m = (await store.get(name)).value
  let offset = o.from ?? m.firstOffset
  if (offset < 0n) throw new LogError(ErrorCode.OUT_OF_RANGE, `offset ${offset} is negative`)
  if (offset < m.firstOffset) {
    throw new LogError(ErrorCode.OUT_OF_RANGE, `offset ${offset} of log ${name} was removed by retention or truncation; the log starts at ${m.firstOffset}`, {detail: {firstOffset: String(m.firstOffset)}})
  }
  let left = o.limit ?? Number.POSITIVE_INFINITY
  const pollMs = o.pollMs ?? 1000
  let finished: bigint | undefined // the ledger we just read to its end
  while (left > 0 && !o.signal?.aborted) {
    if (o.to !== undefined && offset > o.to) return
    const seg = segmentFor(m, offset)
    if (seg && seg.ledgerId === finished) {
      // Its ledger is closed but the log's metadata doesn't say what comes next yet (the writer is
      // between closing one segment and publishing the next): look again shortly.
      if (!o.follow) return
      await new Promise(resolve => setTimeout(resolve, Math.min(pollMs, 50)))
      m = (await store.get(name)).value
      continue
    }
    if (!seg) {
      const end = closedEnd(m)
      if (offset > end && !o.follow) throw new LogError(ErrorCode.OUT_OF_RANGE, `offset ${offset} is beyond the end of log ${name} (${end})`, {detail: {end: String(end)}})
      if (!o.follow) return
      await new Promise(resolve => setTimeout(resolve, Math.min(pollMs, 200)))
      m = (await store.get(name)).value
      continue
    }
    const reader = await client.openLedger(seg.ledgerId)
    let entry = offset - seg.firstOffset
    /**
     * The segment's entries (ascending from `entry`) that the limit and `to` allow go to `out`; true when
     * that is the end. A plain loop, not a nested generator: every level of per-entry yields costs a few
     * promises per entry (a follower at 35 k entries/s spent half its heap allocation on them).
     */
    const take = (entries: ReadEntry[], out: LogEntry[]): boolean => {
      for (const e of entries) {
        offset = seg.firstOffset + e.entryId
        if (o.to !== undefined && offset > o.to) return true
        out.push(unwrapEntry(offset, e.payload))
        left--
        entry = e.entryId + 1n
        offset++
        if (left <= 0 || (o.to !== undefined && offset > o.to)) return true
      }
      return false
    }
    try {
      for (;;) {
        const last = reader.lastConfirmed
        const out: LogEntry[] = []
        // Range reads, unless a follow's tail stream (only poll() opens one) will bring these entries anyway.
        if (entry <= last && !reader.streaming(entry)) {
          let end = last
          if (o.to !== undefined && seg.firstOffset + end > o.to) end = o.to - seg.firstOffset
          const room = BigInt(Math.min(left, 1024))
          if (end - entry + 1n > room) end = entry + room - 1n
          const done = take(await reader.read(entry, end), out)
          for (const x of out) yield x
          if (done) return
          continue
        }
        if (reader.closed) {
          finished = seg.ledgerId // this segment is done: on to the next one
          break
        }
        if (!o.follow) {
          if (entry > last + 1n) {
            const end = seg.firstOffset + last + 1n
            throw new LogError(ErrorCode.OUT_OF_RANGE, `offset ${offset} is beyond the end of log ${name} (${end})`, {detail: {end: String(end)}})
          }
          return
        }
        const done = take(await reader.poll(entry, pollMs, o.signal), out)
        for (const x of out) yield x
        if (done) return
        if (o.signal?.aborted) return
      }
    } finally {
      reader.close() // its tail stream, if a follow opened one
    }
    m = (await store.get(name)).value
    if (!segmentFor(m, offset) && !o.follow && offset >= closedEnd(m)) return
  }
}
