/**
 * The client side of the bookie protocol (docs/PROTOCOL.md): one BookieClient per bookie address, one
 * HTTP/2 connection, many concurrent streams. The client library (src/client) is written against the
 * interface below and nothing else.
 *
 * Errors: what the bookie answers comes back as a LogError with the bookie's code (errors.fromJSON);
 * a refused, reset or GOAWAY'd connection is BOOKIE_UNAVAILABLE (retriable); a request that takes longer
 * than timeoutMs is TIMEOUT and its stream is cancelled. After a timeout with nothing heard from the bookie
 * (a stopped or partitioned process) the connection is dropped; every failure is followed by a lazy
 * reconnect on the next request.
 *
 * Two transports sit behind it (transport-http2.ts, transport-undici.ts; `transport` option). node:http2
 * is the default: on this workload it was faster and it can lift nghttp2's session memory cap (figures in
 * docs/PROTOCOL.md, "Transport choice"; benchmarks/transport.ts measures both).
 */
import {ErrorCode, LogError} from '../errors.js'
import * as ids from '../ids.js'
import {ByteBudget} from './byte-budget.js'
import {AddStream, type SharedBatch} from './add-stream.js'
import {TailStream} from './tail-stream.js'
import {DEFAULT_MAX_MESSAGE_BYTES, LAC_HEADER, NEXT_HEADER, decodeAddResults, decodeEntries, encodeAddBatch, type AddItem, type AddOutcome, type EntryItem} from './frames.js'
import {Http2Transport} from './transport-http2.js'
import {UndiciTransport} from './transport-undici.js'
import {httpError, type Transport, type TransportName, type TransportRequest, type TransportResponse} from './transport.js'

export type AddFrame = AddItem
export type ReadEntry = EntryItem
export type AddResult = { ok: true } | { ok: false; error: LogError }

export interface BookieClientOptions {
  /** Per request, default 10000 ms (a LAC long poll gets waitMs on top). */
  timeoutMs?: number
  /** Default 'http2' (node:http2); 'undici' uses undici's H2CClient. */
  transport?: TransportName
  /** Request-body bytes in flight to this bookie; default 64 MiB over node:http2, 6 MiB over undici (its session memory cap is 10 MB). */
  maxInflightBytes?: number
  /** Largest answer accepted (default 64 MiB). */
  maxResponseBytes?: number
}

export interface BookieClient {
  readonly address: string
  /**
   * One request; rejects (BOOKIE_UNAVAILABLE / TIMEOUT) only when the whole request failed. With `shared`, a
   * batch also going to other bookies is encoded once for all of them (add-stream.ts SharedBatch; http2 only).
   */
  addEntries(frames: AddFrame[], shared?: SharedBatch): Promise<AddResult[]>
  /**
   * Entries held in [from, to], ascending; does NOT verify digests (the caller does). Without maxBytes,
   * every entry the bookie holds in the range (fetched in pages if needed). With maxBytes, one answer of at
   * most maxBytes of payload (at least one entry): a prefix; continue from the last id + 1.
   */
  readEntries(ledgerId: bigint, from: bigint, to: bigint, opts?: {maxBytes?: number}): Promise<ReadEntry[]>
  /**
   * A follower's long poll: once the bookie's LAC reaches `from` (or after waitMs), the entries it holds in
   * [from, its LAC] (up to maxBytes; none when the LAC stayed below `from`) and that LAC. Does NOT verify
   * digests (the caller does).
   */
  readTail(ledgerId: bigint, from: bigint, waitMs: number, opts?: {maxBytes?: number; timeoutMs?: number}): Promise<{entries: ReadEntry[]; lac: bigint}>
  /**
   * A tail stream from `from` on (tail-stream.ts): the bookie pushes what readTail would answer each time its
   * LAC moves, and a heartbeat after waitMs without news. Undefined when the transport has no long-lived
   * streams (undici): use readTail. Does NOT verify digests (the caller does).
   */
  tailStream(ledgerId: bigint, from: bigint, opts: {waitMs: number; maxBytes?: number}): TailStream | undefined
  /**
   * Long poll: as soon as the bookie's LAC exceeds `after`, or after waitMs with the current values. Gives up
   * (TIMEOUT) after opts.timeoutMs, by default the client's timeout plus waitMs.
   */
  readLac(ledgerId: bigint, after: bigint, waitMs: number, opts?: {timeoutMs?: number}): Promise<{lac: bigint; lastEntryId: bigint}>
  /**
   * Explicit LAC (an idle writer's; adds carry it otherwise): raises the bookie's LAC, wakes its long polls;
   * with `closed`, the last entry id of a ledger its writer just closed. Returns the bookie's LAC.
   */
  writeLac(ledgerId: bigint, lac: bigint, opts?: {closed?: boolean}): Promise<bigint>
  /**
   * A LAC hint (docs/PROTOCOL.md "LAC hints") on the add stream, behind the batches already sent there: one
   * way, unanswered. False when there is no open add stream to send it on (undici, or no batch sent yet).
   */
  hintLac(ledgerId: bigint, lac: bigint): boolean
  fence(ledgerId: bigint): Promise<{lac: bigint; lastEntryId: bigint}>
  /** NO_SUCH_LEDGER when the bookie holds nothing of it. */
  deleteLedger(ledgerId: bigint): Promise<void>
  status(): Promise<Record<string, unknown>>
  /** Cancels what is in flight (CLOSED) and closes the connection. */
  close(): Promise<void>
}

const DEFAULT_TIMEOUT_MS = 10_000
const OK: AddResult = Object.freeze({ok: true})

function badAnswer(address: string, why: string): LogError {
  return new LogError(ErrorCode.BAD_FRAME, `bookie ${address} sent a malformed answer: ${why}`, {detail: {bookie: address}})
}

function checkOption(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw new LogError(ErrorCode.BAD_INPUT, `bookie client option ${name} must be an integer >= ${min}, got ${String(v)}`)
}

export function connectBookie(address: string, opts: BookieClientOptions = {}): BookieClient {
  return new HttpBookieClient(address, opts)
}

class HttpBookieClient implements BookieClient {
  private readonly transport: Transport
  private readonly timeoutMs: number
  private readonly maxResponseBytes: number
  private readonly budget: ByteBudget
  private readonly inflight = new Set<AbortController>()
  private closed = false
  /** Adds over one long-lived stream (node:http2 only; undici sends each batch as its own request). */
  private readonly adds: AddStream | undefined

  constructor(readonly address: string, opts: BookieClientOptions) {
    checkOption('timeoutMs', opts.timeoutMs, 1)
    checkOption('maxInflightBytes', opts.maxInflightBytes, 1)
    checkOption('maxResponseBytes', opts.maxResponseBytes, 1024)
    const name = opts.transport ?? 'http2'
    if (name !== 'http2' && name !== 'undici') throw new LogError(ErrorCode.BAD_INPUT, `unknown bookie transport ${JSON.stringify(name)} (http2 or undici)`)
    this.transport = name === 'http2' ? new Http2Transport(address) : new UndiciTransport(address)
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.budget = new ByteBudget(opts.maxInflightBytes ?? (name === 'http2' ? 64 * 1024 * 1024 : 6 * 1024 * 1024))
    const t = this.transport
    if (t instanceof Http2Transport) {
      this.adds = new AddStream(address, {
        timeoutMs: this.timeoutMs,
        maxResponseBytes: this.maxResponseBytes,
        open: (path, type) => t.openStream(path, type),
        timedOut: since => t.timedOut(since),
      })
    }
  }

  async addEntries(frames: AddFrame[], shared?: SharedBatch): Promise<AddResult[]> {
    if (frames.length === 0) return []
    if (this.closed) throw new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} is closed`)
    let outcomes: AddOutcome[]
    if (this.adds !== undefined) {
      outcomes = await this.adds.send(frames, shared)
    } else {
      const res = await this.call('POST', '/v1/entries', encodeAddBatch(frames))
      outcomes = decodeAddResults(res.chunks, this.maxResponseBytes)
      if (outcomes.length !== frames.length) throw badAnswer(this.address, `${outcomes.length} add results for ${frames.length} adds`)
    }
    return outcomes.map(e => (e === undefined ? OK : {ok: false, error: e}))
  }

  async readEntries(ledgerIdIn: bigint, fromIn: bigint, toIn: bigint, opts: {maxBytes?: number} = {}): Promise<ReadEntry[]> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    let from = ids.entryId(fromIn)
    const to = ids.entryId(toIn)
    if (to < from) throw new LogError(ErrorCode.OUT_OF_RANGE, `range ${from}..${to} is empty`)
    checkOption('maxBytes', opts.maxBytes, 1)
    const out: ReadEntry[] = []
    for (;;) {
      const q = `from=${from}&to=${to}${opts.maxBytes === undefined ? '' : `&maxBytes=${opts.maxBytes}`}`
      const res = await this.call('GET', `/v1/ledgers/${ledgerId}/entries?${q}`)
      const page = decodeEntries(res.chunks, this.maxResponseBytes)
      from = this.checkAscending(page, ledgerId, from, to)
      out.push(...page)
      const next = res.headers[NEXT_HEADER]
      if (opts.maxBytes !== undefined || page.length === 0 || typeof next !== 'string') return out
      if (!/^\d{1,16}$/.test(next) || BigInt(next) !== from || from > to) throw badAnswer(this.address, `bad ${NEXT_HEADER} ${JSON.stringify(next)}`)
    }
  }

  async readTail(ledgerIdIn: bigint, fromIn: bigint, waitMs: number, opts: {maxBytes?: number; timeoutMs?: number} = {}): Promise<{entries: ReadEntry[]; lac: bigint}> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    const from = ids.entryId(fromIn)
    checkOption('waitMs', waitMs, 0)
    checkOption('maxBytes', opts.maxBytes, 1)
    const q = `from=${from}&waitMs=${waitMs}${opts.maxBytes === undefined ? '' : `&maxBytes=${opts.maxBytes}`}`
    checkOption('timeoutMs', opts.timeoutMs, 1)
    const res = await this.call('GET', `/v1/ledgers/${ledgerId}/tail?${q}`, undefined, opts.timeoutMs ?? this.timeoutMs + waitMs)
    const header = res.headers[LAC_HEADER]
    let lac: bigint
    try {
      lac = ids.lac(header)
    } catch {
      throw badAnswer(this.address, `bad ${LAC_HEADER} ${JSON.stringify(header)}`)
    }
    const entries = decodeEntries(res.chunks, this.maxResponseBytes)
    this.checkAscending(entries, ledgerId, from, lac)
    return {entries, lac}
  }

  tailStream(ledgerIdIn: bigint, fromIn: bigint, opts: {waitMs: number; maxBytes?: number}): TailStream | undefined {
    const t = this.transport
    if (!(t instanceof Http2Transport)) return undefined
    if (this.closed) throw new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} is closed`)
    checkOption('waitMs', opts.waitMs, 1)
    checkOption('maxBytes', opts.maxBytes, 1)
    return new TailStream(this.address, {
      ledgerId: ids.ledgerId(ledgerIdIn), from: ids.entryId(fromIn), waitMs: opts.waitMs, maxResponseBytes: this.maxResponseBytes,
      ...(opts.maxBytes === undefined ? {} : {maxBytes: opts.maxBytes}),
      open: path => t.openStream(path),
      timedOut: since => t.timedOut(since),
    })
  }

  /** An answer's entries must be of the ledger, strictly ascending, within [from, to]; returns the id after the last. */
  private checkAscending(entries: ReadEntry[], ledgerId: bigint, from: bigint, to: bigint): bigint {
    let next = from
    for (const e of entries) {
      if (e.ledgerId !== ledgerId || e.entryId < next || e.entryId > to) throw badAnswer(this.address, `entry ${e.ledgerId}/${e.entryId} is outside ${ledgerId}/${next}..${to}`)
      next = e.entryId + 1n
    }
    return next
  }

  async readLac(ledgerIdIn: bigint, after: bigint, waitMs: number, opts: {timeoutMs?: number} = {}): Promise<{lac: bigint; lastEntryId: bigint}> {
    const ledgerId = ids.ledgerId(ledgerIdIn)
    checkOption('waitMs', waitMs, 0)
    checkOption('timeoutMs', opts.timeoutMs, 1)
    const res = await this.call('GET', `/v1/ledgers/${ledgerId}/lac?after=${ids.lac(after)}&waitMs=${waitMs}`, undefined, opts.timeoutMs ?? this.timeoutMs + waitMs)
    return this.positions(res)
  }

  async writeLac(ledgerIdIn: bigint, lac: bigint, opts: {closed?: boolean} = {}): Promise<bigint> {
    const v = this.json(await this.call('POST', `/v1/ledgers/${ids.ledgerId(ledgerIdIn)}/lac?lac=${ids.lac(lac)}${opts.closed === true ? '&closed=1' : ''}`))
    try {
      return ids.lac(v['lac'])
    } catch {
      throw badAnswer(this.address, `bad lac ${JSON.stringify(v['lac'])}`)
    }
  }

  hintLac(ledgerId: bigint, lac: bigint): boolean {
    return !this.closed && this.adds !== undefined && this.adds.hint(ids.ledgerId(ledgerId), ids.lac(lac))
  }

  async fence(ledgerIdIn: bigint): Promise<{lac: bigint; lastEntryId: bigint}> {
    return this.positions(await this.call('POST', `/v1/ledgers/${ids.ledgerId(ledgerIdIn)}/fence`))
  }

  async deleteLedger(ledgerIdIn: bigint): Promise<void> {
    await this.call('DELETE', `/v1/ledgers/${ids.ledgerId(ledgerIdIn)}`)
  }

  async status(): Promise<Record<string, unknown>> {
    return this.json(await this.call('GET', '/v1/status'))
  }

  async close(): Promise<void> {
    this.closed = true
    this.adds?.close()
    for (const ac of this.inflight) ac.abort(new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} was closed`))
    await this.transport.close()
  }

  private json(res: TransportResponse): Record<string, unknown> {
    try {
      const v: unknown = JSON.parse(res.body.toString('utf8'))
      if (typeof v === 'object' && v !== null) return v as Record<string, unknown>
    } catch {
      // reported below
    }
    throw badAnswer(this.address, 'the body is not a JSON object')
  }

  private positions(res: TransportResponse): {lac: bigint; lastEntryId: bigint} {
    const v = this.json(res)
    try {
      return {lac: ids.lac(v['lac']), lastEntryId: ids.lac(v['lastEntryId'])}
    } catch {
      throw badAnswer(this.address, `bad lac/lastEntryId ${JSON.stringify(v['lac'])}/${JSON.stringify(v['lastEntryId'])}`)
    }
  }

  /** One request under the timeout and the in-flight byte budget; a non-200 answer becomes its LogError. */
  private async call(method: TransportRequest['method'], path: string, body?: Buffer, timeoutMs = this.timeoutMs): Promise<TransportResponse> {
    if (this.closed) throw new LogError(ErrorCode.CLOSED, `the client of bookie ${this.address} is closed`)
    const ac = new AbortController()
    const since = performance.now()
    const timer = setTimeout(() => {
      ac.abort(new LogError(ErrorCode.TIMEOUT, `bookie ${this.address}: ${method} ${path.replace(/\?.*/, '')} got no answer within ${timeoutMs} ms`, {detail: {bookie: this.address, timeoutMs}}))
    }, timeoutMs)
    this.inflight.add(ac)
    const bytes = body?.length ?? 0
    let res: TransportResponse
    try {
      await this.budget.acquire(bytes, ac.signal)
      try {
        res = await this.transport.request({method, path, signal: ac.signal, maxResponseBytes: this.maxResponseBytes, ...(body === undefined ? {} : {body})})
      } finally {
        this.budget.release(bytes)
      }
    } catch (err) {
      if (ac.signal.aborted && (ac.signal.reason as LogError).code === ErrorCode.TIMEOUT) this.transport.timedOut(since)
      throw err
    } finally {
      clearTimeout(timer)
      this.inflight.delete(ac)
    }
    if (res.status !== 200) throw httpError(this.address, res.status, res.body)
    return res
  }
}
