/**
 * The client end of an add stream (envelope.ts, POST /v1/entries/stream): one long-lived HTTP/2 stream per
 * bookie carries every add batch as an envelope, and the answers come back by requestId. Per batch this costs
 * an encode and a stream write, where a request of its own cost ~0.2-0.3 ms of CPU on each side (stream,
 * headers, abort signal, timer); that overhead is what held small batches, and with them pipelining, back.
 *
 * A writer sends the same entries to every bookie of their write set, with E = Qw usually as the same batch
 * to each: such a batch is encoded once (every payload copied once) and the same message is written to the
 * streams of all the bookies it goes to (SharedBatch).
 *
 * Failures keep BookieClient.addEntries' contract: a batch the bookie refused as a whole rejects with the
 * bookie's code; a stream that breaks (reset, ended, GOAWAY'd, a malformed answer) rejects every batch in
 * flight with BOOKIE_UNAVAILABLE (or BAD_FRAME), and the next batch opens a new stream; a batch unanswered
 * after timeoutMs fails the stream with TIMEOUT (one timer for the whole stream, armed for the oldest batch),
 * and if nothing at all was heard from the bookie meanwhile the connection is dropped too.
 */
import http2, {type ClientHttp2Stream} from 'node:http2'
import {ErrorCode, LogError} from '../errors.js'
import {ENVELOPE_HEAD, EnvelopeReader, FATAL_REQUEST_ID, ONE_WAY_REQUEST_ID, RequestStatus, STREAM_TYPE, envelope, joined, writeEnvelopeHead, type Envelope} from './envelope.js'
import {addBatchEncodingLength, decodeAddResults, encodeAddBatch, encodeLacHints, type AddItem, type AddOutcome} from './frames.js'
import {errorFromBody, httpError, unavailable} from './transport.js'

export const ADD_STREAM_PATH = '/v1/entries/stream'
/** Size of the reused body buffers: a writer's default batch (1 MiB of payload) plus its framing. */
const BUFFER_BYTES = 1024 * 1024 + 64 * 1024
/** Reused buffers kept at most (one per batch in flight is what a writer needs). */
const MAX_SPARE_BUFFERS = 16
/** An encoded add message, possibly sent on several streams. */
interface Body {
  /** The request id in its envelope head: ids are per process, so the head is the same on every stream. */
  requestId: number
  /** The whole message, envelope head included. */
  bytes: Buffer
  /** The reused buffer `bytes` is a view of (undefined for a batch larger than BUFFER_BYTES). */
  buffer: Buffer | undefined
  /** Streams it is sent on, and how many of them are done with it (answered, or failed). */
  senders: number
  done: number
  /** A stream that sent it failed: its bytes may still be queued there, so the buffer is never reused. */
  lost: boolean
}

/**
 * One encoding of an add batch for every bookie it goes to. A writer sends the same entries to each bookie
 * of their write set, with E = Qw usually as the same batch to each: it passes one SharedBatch, counting
 * its senders, to each of those sends; the first encodes (every payload copied once), the others send the
 * same bytes. The buffer goes back to the spares once every sender is done with it.
 */
export class SharedBatch {
  body: Body | undefined
  senders = 0
}

/** Encodes add messages into reused buffers (per process: the streams of all bookies share them). */
class Bodies {
  private readonly spare: Buffer[] = []
  private nextId = 0

  encode(items: readonly AddItem[], senders: number): Body {
    const size = ENVELOPE_HEAD + addBatchEncodingLength(items)
    const buffer = size <= BUFFER_BYTES ? this.spare.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES) : undefined
    const bytes = buffer === undefined ? Buffer.allocUnsafe(size) : buffer.subarray(0, size)
    try {
      encodeAddBatch(items, bytes.subarray(ENVELOPE_HEAD)) // bad input throws here, before anything is sent
    } catch (err) {
      if (buffer !== undefined) this.giveBack(buffer)
      throw err
    }
    const requestId = this.nextId
    this.nextId = (this.nextId + 1) % ONE_WAY_REQUEST_ID
    writeEnvelopeHead(bytes, requestId, size - ENVELOPE_HEAD)
    return {requestId, bytes, buffer, senders, done: 0, lost: false}
  }

  /** A stream is done with `b`: answered (the bookie read the whole message), or `lost` with its stream. */
  release(b: Body, lost: boolean): void {
    b.done++
    if (lost) b.lost = true
    if (b.done === b.senders && !b.lost && b.buffer !== undefined) this.giveBack(b.buffer)
  }

  private giveBack(buffer: Buffer): void {
    if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(buffer)
  }
}

const bodies = new Bodies()

export interface AddStreamOptions {
  timeoutMs: number
  maxResponseBytes: number
  /** Opens the stream (headers sent, body open); throws BOOKIE_UNAVAILABLE when it cannot. */
  open(path: string, contentType: string): ClientHttp2Stream
  /** A batch sent at `since` timed out (the transport drops a connection that said nothing since). */
  timedOut(since: number): void
}

interface InFlight {
  count: number
  since: number
  /** The message's shared body, released once the bookie answered (or the stream failed). */
  body: Body
  resolve: (outcomes: AddOutcome[]) => void
  reject: (err: LogError) => void
}

export class AddStream {
  private stream: ClientHttp2Stream | undefined
  private reader: EnvelopeReader
  private readonly inflight = new Map<number, InFlight>()
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(private readonly address: string, private readonly o: AddStreamOptions) {
    this.reader = this.newReader()
  }

  /**
   * Send one batch; resolves with one outcome per add (undefined = stored durably). With `shared`, the batch
   * is encoded once for all the streams it is sent on (unless its request id is in flight here already).
   */
  send(items: readonly AddItem[], shared?: SharedBatch): Promise<AddOutcome[]> {
    if (this.closed) return Promise.reject(new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} is closed`))
    let stream: ClientHttp2Stream
    let body: Body | undefined
    try {
      const reuse = shared?.body !== undefined && !this.inflight.has(shared.body.requestId)
      body = reuse ? shared!.body! : bodies.encode(items, shared?.body === undefined ? Math.max(1, shared?.senders ?? 1) : 1)
      if (shared !== undefined && shared.body === undefined) shared.body = body
      stream = this.stream ?? this.start()
    } catch (err) {
      if (body !== undefined) bodies.release(body, false)
      return Promise.reject(err)
    }
    const b = body
    return new Promise<AddOutcome[]>((resolve, reject) => {
      this.inflight.set(b.requestId, {count: items.length, since: performance.now(), body: b, resolve, reject})
      this.arm()
      stream.write(b.bytes)
    })
  }

  /**
   * A LAC hint (docs/PROTOCOL.md "LAC hints"), written behind the batches already sent on the open stream;
   * one way (never answered). Never opens a stream: false when none is open.
   */
  hint(ledgerId: bigint, lac: bigint): boolean {
    const s = this.stream
    if (this.closed || s === undefined || s.destroyed || s.writableEnded) return false
    s.write(envelope(ONE_WAY_REQUEST_ID, encodeLacHints([{ledgerId, lac}])))
    return true
  }

  /** Reject what is in flight with CLOSED and close the stream. */
  close(): void {
    this.closed = true
    this.fail(new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} was closed`))
  }

  private newReader(): EnvelopeReader {
    return new EnvelopeReader(1, this.o.maxResponseBytes)
  }

  private start(): ClientHttp2Stream {
    const s = this.o.open(ADD_STREAM_PATH, STREAM_TYPE)
    this.stream = s
    const errorChunks: Buffer[] = []
    let status = 0
    s.on('response', h => { status = Number(h[':status']) })
    s.on('data', (chunk: Buffer) => {
      if (this.stream !== s) return
      if (status !== 200) {
        errorChunks.push(chunk)
        return
      }
      try {
        this.reader.push(chunk, e => this.onMessage(e))
      } catch (err) {
        this.fail(new LogError(ErrorCode.BAD_FRAME, `bookie ${this.address} sent a malformed add-stream answer: ${(err as LogError).message}`, {detail: {bookie: this.address}}))
      }
    })
    s.on('end', () => {
      if (this.stream !== s) return
      if (status !== 200 && status !== 0) this.fail(httpError(this.address, status, Buffer.concat(errorChunks)))
      else this.fail(unavailable(this.address, new Error('the bookie ended the add stream')))
    })
    s.on('error', err => { if (this.stream === s) this.fail(unavailable(this.address, err)) })
    s.on('close', () => {
      if (this.stream === s) this.fail(unavailable(this.address, new Error(`the add stream closed (RST_STREAM code ${s.rstCode ?? 'none'})`)))
    })
    return s
  }

  private onMessage(e: Envelope): void {
    const body = joined(e)
    const status = body[0]
    const rest = body.subarray(1)
    if (e.requestId === FATAL_REQUEST_ID) {
      this.fail(this.error(rest))
      return
    }
    const f = this.inflight.get(e.requestId)
    if (f === undefined) return // answered after it timed out: nobody is waiting
    this.inflight.delete(e.requestId)
    if (this.inflight.size === 0) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
    bodies.release(f.body, false) // an answer means the bookie read the whole message
    if (status === RequestStatus.REFUSED) {
      f.reject(this.error(rest))
      return
    }
    let outcomes: AddOutcome[]
    try {
      if (status !== RequestStatus.OK) throw new Error(`unknown status ${status}`)
      outcomes = decodeAddResults(rest, this.o.maxResponseBytes)
      if (outcomes.length !== f.count) throw new Error(`${outcomes.length} add results for ${f.count} adds`)
    } catch (err) {
      const e = new LogError(ErrorCode.BAD_FRAME, `bookie ${this.address} sent a malformed answer: ${(err as Error).message}`, {detail: {bookie: this.address}})
      f.reject(e)
      this.fail(e)
      return
    }
    f.resolve(outcomes)
  }

  /** A refusal's JSON error (status 1); anything else is the bookie's fault. */
  private error(json: Buffer): LogError {
    return errorFromBody(json) ?? new LogError(ErrorCode.BAD_FRAME, `bookie ${this.address} refused an add batch without a readable error`, {detail: {bookie: this.address}})
  }

  /** One timer for the stream, due when the oldest batch in flight times out. */
  private arm(): void {
    if (this.timer !== undefined || this.inflight.size === 0) return
    const oldest = this.inflight.values().next().value!
    const due = Math.max(0, oldest.since + this.o.timeoutMs - performance.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      const first = this.inflight.values().next().value
      if (first === undefined) return
      if (performance.now() - first.since >= this.o.timeoutMs) {
        this.fail(new LogError(ErrorCode.TIMEOUT, `bookie ${this.address}: an add batch got no answer within ${this.o.timeoutMs} ms`, {detail: {bookie: this.address, timeoutMs: this.o.timeoutMs}}))
        this.o.timedOut(first.since)
      } else {
        this.arm()
      }
    }, due)
    // Not unref'd: the connection is (an idle one must not keep a process alive), so this timer is what
    // keeps the process alive while batches are in flight.
  }

  /** Everything in flight fails with `err`; the stream is dropped (the next batch opens a new one). */
  private fail(err: LogError): void {
    const s = this.stream
    this.stream = undefined
    this.reader = this.newReader()
    clearTimeout(this.timer)
    this.timer = undefined
    const all = [...this.inflight.values()]
    this.inflight.clear()
    if (s !== undefined && !s.closed && !s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL)
    for (const f of all) {
      bodies.release(f.body, true)
      f.reject(err)
    }
  }
}
