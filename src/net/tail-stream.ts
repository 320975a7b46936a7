/**
 * Tail streams (GET /v1/ledgers/{id}/tail/stream, docs/PROTOCOL.md "Tail streams"): a follower caught up
 * with an open ledger keeps one long-lived HTTP/2 stream to one bookie, and the bookie pushes the entries
 * as its LAC moves, where a long poll (GET .../tail) cost a request per update on both sides (stream,
 * headers, timer; ~0.2-0.3 ms of CPU each, as add streams measured) and a round trip before the next
 * update could leave. Messages are envelopes (envelope.ts), requestId counting up from 0:
 *
 *   status 0 (OK):      lac:i64 ENTRIES-message     ; the bookie's LAC, and the entries it holds from the
 *                                                  ; follower's position on (none: a heartbeat, after waitMs)
 *   requestId FATAL, status 1: UTF-8 JSON {code, message, detail}, then the stream ends
 *
 * TailStream (the client end) checks every message (entries of the ledger, consecutive from the position,
 * none beyond the LAC), queues them until next() takes them (pausing the stream while a lot is queued, so
 * HTTP/2 flow control holds the bookie back), and fails with BOOKIE_UNAVAILABLE when the stream breaks or
 * ends, BAD_FRAME for a malformed message, TIMEOUT when the bookie stays silent past waitMs + slackMs (and
 * drops a connection that said nothing since). It does NOT verify digests (the reader does).
 */
import http2, {type ClientHttp2Stream} from 'node:http2'
import {ErrorCode, LogError} from '../errors.js'
import * as ids from '../ids.js'
import {ENVELOPE_HEAD, EnvelopeReader, FATAL_REQUEST_ID, RequestStatus, joined, writeEnvelopeHead, type Envelope} from './envelope.js'
import {HEADER_BYTES, decodeEntries, encodeEntries, entriesEncodingLength, type EntryItem} from './frames.js'
import {errorFromBody, unavailable} from './transport.js'

const LAC_BYTES = 8

/**
 * One tail-stream message, envelope and all, in one buffer: status OK (or CLOSED, the last one), the LAC,
 * then an ENTRIES message encoded in place (a catch-up message can be megabytes: no second copy).
 */
export function tailMessage(seq: number, lac: bigint, entries: readonly EntryItem[], status: number = RequestStatus.OK): Buffer {
  const at = ENVELOPE_HEAD + 1 + LAC_BYTES
  const out = Buffer.allocUnsafe(at + entriesEncodingLength(entries))
  writeEnvelopeHead(out, seq, out.length - ENVELOPE_HEAD)
  out[ENVELOPE_HEAD] = status
  out.writeBigInt64BE(lac, ENVELOPE_HEAD + 1)
  encodeEntries(entries, out.subarray(at))
  return out
}

export interface TailUpdate {
  /** Consecutive from the position the stream was at, all <= lac. */
  entries: EntryItem[]
  /** The bookie's LAC when it sent them. */
  lac: bigint
  /**
   * The last update: the ledger's writer announced it closed at `lac` and the stream has brought everything
   * up to it (the metadata says so too by then; it stays the truth).
   */
  closed?: true
}

export interface TailStreamOptions {
  ledgerId: bigint
  from: bigint
  /** The bookie sends a heartbeat after this long without news. */
  waitMs: number
  /** Payload bytes per message at most (the bookie's own limit applies too). */
  maxBytes?: number
  maxResponseBytes: number
  /** Silence beyond waitMs after which the bookie counts as gone (default 2000 ms). */
  slackMs?: number
  /** Opens the GET stream; throws BOOKIE_UNAVAILABLE when it cannot. */
  open(path: string): ClientHttp2Stream
  /** Nothing came for too long since `since` (the transport drops a connection that said nothing since). */
  timedOut(since: number): void
}

/** Queued payload bytes above which the stream is paused until next() takes some. */
const PAUSE_BYTES = 8 * 1024 * 1024

export class TailStream {
  private readonly stream: ClientHttp2Stream
  private readonly reader: EnvelopeReader
  private readonly queue: TailUpdate[] = []
  private queuedBytes = 0
  private failure: LogError | undefined
  private waiter: {resolve: (u: TailUpdate | undefined) => void; reject: (e: LogError) => void; timer: NodeJS.Timeout} | undefined
  private watchdog: NodeJS.Timeout | undefined
  private lastHeard = performance.now()
  private status = 0
  private readonly errorChunks: Buffer[] = []
  /** The entry id the next message must start at. */
  private expected: bigint
  /** The highest LAC the bookie sent (updates still queued included). */
  private heardLac = -1n

  constructor(private readonly address: string, private readonly o: TailStreamOptions) {
    this.expected = o.from
    this.reader = new EnvelopeReader(1 + LAC_BYTES + HEADER_BYTES, o.maxResponseBytes)
    const q = `from=${ids.entryId(o.from)}&waitMs=${o.waitMs}${o.maxBytes === undefined ? '' : `&maxBytes=${o.maxBytes}`}`
    const s = o.open(`/v1/ledgers/${ids.ledgerId(o.ledgerId)}/tail/stream?${q}`)
    this.stream = s
    s.on('response', h => { this.status = Number(h[':status']) })
    s.on('data', (chunk: Buffer) => this.onData(chunk))
    s.on('end', () => {
      if (this.status !== 200) this.fail(errorFromBody(Buffer.concat(this.errorChunks)) ?? unavailable(address, new Error(`the tail stream was answered with HTTP ${this.status}`)))
      else this.fail(unavailable(address, new Error('the bookie ended the tail stream')))
    })
    s.on('error', err => this.fail(unavailable(address, err)))
    s.on('close', () => this.fail(unavailable(address, new Error(`the tail stream closed (RST_STREAM code ${s.rstCode ?? 'none'})`))))
    this.arm()
  }

  /** Where the next update starts: `from` plus every entry delivered or queued so far. */
  get position(): bigint {
    return this.expected
  }

  /** The highest LAC the bookie has sent so far, taken or not: how far this bookie is known to be. */
  get lac(): bigint {
    return this.heardLac
  }

  get failed(): boolean {
    return this.failure !== undefined
  }

  /**
   * The next update: at once when one is queued, else the first to arrive within `ms` (undefined if none
   * did, or if `signal` aborts first). Rejects once the stream failed or ended (what was queued before is
   * still delivered first).
   */
  next(ms: number, signal?: AbortSignal): Promise<TailUpdate | undefined> {
    const u = this.queue.shift()
    if (u !== undefined) {
      this.took(u)
      return Promise.resolve(u)
    }
    if (this.failure) return Promise.reject(this.failure)
    if (this.waiter) return Promise.reject(new LogError(ErrorCode.INTERNAL, 'TailStream.next() called while another next() waits'))
    if (signal?.aborted) return Promise.resolve(undefined)
    return new Promise<TailUpdate | undefined>((resolve, reject) => {
      // Time's up or the caller gave up: nothing (an update or a failure settles it through the waiter).
      const expire = (): void => {
        const w = this.waiter
        this.waiter = undefined
        clearTimeout(w?.timer)
        w?.resolve(undefined)
      }
      const done = <T>(settle: (v: T) => void) => (v: T): void => {
        signal?.removeEventListener('abort', expire)
        settle(v)
      }
      this.waiter = {resolve: done(resolve), reject: done(reject), timer: setTimeout(expire, ms)}
      signal?.addEventListener('abort', expire, {once: true})
    })
  }

  close(): void {
    this.fail(new LogError(ErrorCode.CLOSED, `the tail stream to bookie ${this.address} was closed`))
  }

  private took(u: TailUpdate): void {
    for (const e of u.entries) this.queuedBytes -= e.payload.length
    if (this.queuedBytes < PAUSE_BYTES / 2 && this.stream.isPaused()) {
      // The silence while we did not read was ours: the watchdog counts from here.
      this.lastHeard = performance.now()
      this.stream.resume()
    }
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return
    this.lastHeard = performance.now()
    if (this.status !== 200) {
      this.errorChunks.push(chunk)
      return
    }
    try {
      this.reader.push(chunk, e => this.onMessage(e))
    } catch (err) {
      this.fail(this.malformed((err as Error).message))
    }
  }

  private onMessage(e: Envelope): void {
    if (this.failure) return
    const body = joined(e)
    const status = body[0]
    if (e.requestId === FATAL_REQUEST_ID || (status !== RequestStatus.OK && status !== RequestStatus.CLOSED)) {
      this.fail(status === RequestStatus.REFUSED ? errorFromBody(body.subarray(1)) ?? this.malformed('a refusal without a readable error') : this.malformed(`unknown status ${status}`))
      return
    }
    let update: TailUpdate
    try {
      if (body.length < 1 + LAC_BYTES + HEADER_BYTES) throw new Error('a message too short for its LAC')
      const lac = ids.lac(body.readBigInt64BE(1))
      const entries = decodeEntries(body.subarray(1 + LAC_BYTES), this.o.maxResponseBytes)
      let next = this.expected
      for (const x of entries) {
        // A bookie that lacks the entry due sends what it has and ends: the gap is the reader's to fill.
        if (x.ledgerId !== this.o.ledgerId || x.entryId < next || x.entryId > lac) throw new Error(`entry ${x.ledgerId}/${x.entryId} is outside ${this.o.ledgerId}/${next}..${lac}`)
        next = x.entryId + 1n
      }
      this.expected = next
      if (lac > this.heardLac) this.heardLac = lac
      update = status === RequestStatus.CLOSED ? {entries, lac, closed: true} : {entries, lac}
    } catch (err) {
      this.fail(this.malformed((err as Error).message))
      return
    }
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      clearTimeout(w.timer)
      w.resolve(update)
    } else {
      this.queue.push(update)
      for (const x of update.entries) this.queuedBytes += x.payload.length
      if (this.queuedBytes >= PAUSE_BYTES) this.stream.pause()
    }
    // The bookie ends the stream after it; next() hands out what was queued, then says the stream is over.
    if (update.closed) this.fail(new LogError(ErrorCode.LEDGER_CLOSED, `ledger ${this.o.ledgerId} was closed by its writer at entry ${update.lac}`, {detail: {bookie: this.address}}))
  }

  private malformed(why: string): LogError {
    return new LogError(ErrorCode.BAD_FRAME, `bookie ${this.address} sent a malformed tail-stream message: ${why}`, {detail: {bookie: this.address}})
  }

  /** One timer: the bookie must say something (a heartbeat at least) within waitMs + slackMs. */
  private arm(): void {
    const limit = this.o.waitMs + (this.o.slackMs ?? 2000)
    this.watchdog = setTimeout(() => {
      if (this.failure) return
      const silent = performance.now() - this.lastHeard
      // A paused stream is silent because we stopped reading, not because the bookie did.
      if (silent >= limit && !this.stream.isPaused()) {
        this.fail(new LogError(ErrorCode.TIMEOUT, `bookie ${this.address}: nothing on the tail stream for ${Math.round(silent)} ms`, {detail: {bookie: this.address, timeoutMs: limit}}))
        this.o.timedOut(this.lastHeard)
        return
      }
      this.arm()
    }, this.stream.isPaused() ? limit : Math.max(1, limit - (performance.now() - this.lastHeard)))
    this.watchdog.unref()
  }

  private fail(err: LogError): void {
    if (this.failure) return
    this.failure = err
    clearTimeout(this.watchdog)
    const s = this.stream
    if (!s.closed && !s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL)
    const w = this.waiter
    this.waiter = undefined
    if (w !== undefined) {
      clearTimeout(w.timer)
      w.reject(err)
    }
  }
}
