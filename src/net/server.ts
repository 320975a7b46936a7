/**
 * The bookie's HTTP/2 server: cleartext h2 (prior knowledge) over a StorageEngine, routes in routes-*.ts.
 *
 * Flow control is what bulk throughput hangs on (../shared/reference/limits.md §4: Node's 64 KiB defaults
 * cut 1 MiB batches 4-5x), so every stream advertises an 8 MiB window and every session a 64 MiB one;
 * maxSessionMemory is raised so that many large batches in flight do not trip NGHTTP2_ENHANCE_YOUR_CALM.
 *
 * Every request gets a typed answer: WIRE_STATUS[code] and a JSON body {code, message, retriable, detail}
 * for failures, frames or JSON for successes. A failing request (malformed frames, a lying length, a body
 * over the cap, a stalled upload, an unknown route) fails alone; the session and the server go on.
 * close() is graceful: GOAWAY to every session, long polls answer at once, in-flight requests finish
 * (bounded by drainTimeoutMs), then the remaining sessions are destroyed. The engine is the caller's.
 */
import {statfs} from 'node:fs/promises'
import http2, {type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream} from 'node:http2'
import type {AddressInfo} from 'node:net'
import {ErrorCode, LogError, asLogError} from '../errors.js'
import {formatHostPort} from './address.js'
import {BookieMetrics} from './metrics.js'
import {errorReply, stopUploadAfterAnswer, type BookieEngine, type NetLogger, type Reply, type Route, type ServerContext, type ServerLimits} from './route.js'
import {adminRoutes} from './routes-admin.js'
import {entryRoutes} from './routes-entries.js'
import {ledgerRoutes} from './routes-ledgers.js'

export const STREAM_WINDOW_BYTES = 8 * 1024 * 1024
export const SESSION_WINDOW_BYTES = 64 * 1024 * 1024

export interface BookieServerOptions {
  engine: BookieEngine
  /** Interface to listen on (default 127.0.0.1). */
  host?: string
  /** Port (default 0: a free one; see .port). */
  port?: number
  /** host:port clients should use (default: the bound address). */
  advertise?: string
  /** Default: the advertised address. */
  bookieId?: string
  /** Largest request body (default 64 MiB). */
  maxBodyBytes?: number
  /** A request body that sends nothing for this long is refused with TIMEOUT (default 30 s). */
  bodyTimeoutMs?: number
  /** Largest range-read answer, in payload bytes (default 16 MiB; at least one entry is always sent). */
  maxReadBytes?: number
  /** Most entries in one range-read answer (default 10000). */
  maxReadEntries?: number
  /** Longest LAC long poll (default 60 s). */
  maxWaitMs?: number
  /** Concurrent streams per session (default 256). */
  maxConcurrentStreams?: number
  /** close(): how long in-flight requests may take before sessions are destroyed (default 10 s). */
  drainTimeoutMs?: number
  /** Add Node's process metrics (CPU, heap, event loop lag) to /metrics (default false; the daemon sets it). */
  processMetrics?: boolean
  logger?: NetLogger
}

/** GET /v1/status; also what the daemon publishes in its registration. */
export interface BookieStatusReport extends Record<string, unknown> {
  bookieId: string
  address: string
  state: 'writable' | 'read-only'
  freeBytes: number
  totalBytes: number
  ledgers: number
  entries: number
}

const silent: NetLogger = {debug() {}, info() {}, warn() {}, error() {}}

function int(name: string, v: number | undefined, fallback: number, min: number, max: number): number {
  const n = v ?? fallback
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new LogError(ErrorCode.BAD_INPUT, `server option ${name} must be an integer in ${min}..${max}, got ${String(v)}`)
  return n
}

export class BookieServer {
  readonly metrics: BookieMetrics
  private readonly h2: Http2Server
  private readonly engine: BookieEngine
  private readonly logger: NetLogger
  private readonly routes: Route[]
  private readonly sessions = new Set<ServerHttp2Session>()
  private readonly closingCtl = new AbortController()
  private readonly drainTimeoutMs: number
  private readonly started = Date.now()
  private inflight = 0
  private drained: (() => void) | undefined
  private bound: {host: string; port: number} | undefined
  private ids: {advertise: string; bookieId: string} | undefined
  private closing: Promise<void> | undefined

  private constructor(opts: BookieServerOptions) {
    this.engine = opts.engine
    this.logger = opts.logger ?? silent
    const limits: ServerLimits = {
      maxBodyBytes: int('maxBodyBytes', opts.maxBodyBytes, 64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      bodyTimeoutMs: int('bodyTimeoutMs', opts.bodyTimeoutMs, 30_000, 1, 3_600_000),
      maxReadBytes: int('maxReadBytes', opts.maxReadBytes, 16 * 1024 * 1024, 1, 256 * 1024 * 1024),
      maxReadEntries: int('maxReadEntries', opts.maxReadEntries, 10_000, 1, 1_000_000),
      maxWaitMs: int('maxWaitMs', opts.maxWaitMs, 60_000, 0, 3_600_000),
    }
    this.drainTimeoutMs = int('drainTimeoutMs', opts.drainTimeoutMs, 10_000, 0, 3_600_000)
    const maxConcurrentStreams = int('maxConcurrentStreams', opts.maxConcurrentStreams, 256, 1, 10_000)
    this.metrics = new BookieMetrics(this.engine, opts.processMetrics === undefined ? {} : {processMetrics: opts.processMetrics})
    const ctx: ServerContext = {engine: this.engine, metrics: this.metrics, limits, logger: this.logger, closing: this.closingCtl.signal, status: () => this.status()}
    this.routes = [...entryRoutes(ctx), ...ledgerRoutes(ctx), ...adminRoutes(ctx)]
    this.h2 = http2.createServer({
      settings: {initialWindowSize: STREAM_WINDOW_BYTES, maxConcurrentStreams},
      // nghttp2's per-session memory cap, in MB: large batches in flight must not trip ENHANCE_YOUR_CALM.
      maxSessionMemory: 512,
    })
    this.h2.on('session', s => this.onSession(s))
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers))
    this.h2.on('sessionError', err => this.logger.debug({err}, 'http2 session error'))
  }

  /** Start serving; resolves once listening. */
  static async listen(opts: BookieServerOptions): Promise<BookieServer> {
    const s = new BookieServer(opts)
    await new Promise<void>((resolve, reject) => {
      s.h2.once('error', reject)
      s.h2.listen(int('port', opts.port, 0, 0, 65535), opts.host ?? '127.0.0.1', () => {
        s.h2.off('error', reject)
        resolve()
      })
    }).catch(err => {
      s.metrics.close()
      const e = err as NodeJS.ErrnoException
      throw new LogError(e.code === 'EADDRINUSE' ? ErrorCode.BAD_INPUT : ErrorCode.IO, `cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}: ${e.message}`, {cause: err, detail: {errno: e.code}})
    })
    const a = s.h2.address() as AddressInfo
    s.bound = {host: a.address, port: a.port}
    const advertise = opts.advertise ?? formatHostPort(s.bound)
    s.ids = {advertise, bookieId: opts.bookieId ?? advertise}
    return s
  }

  /** The bound port. */
  get port(): number {
    return this.bound!.port
  }

  /** host:port clients should use. */
  get address(): string {
    return this.ids!.advertise
  }

  get bookieId(): string {
    return this.ids!.bookieId
  }

  async status(): Promise<BookieStatusReport> {
    const s = this.engine.status()
    let freeBytes = 0
    let totalBytes = 0
    try {
      const fs = await statfs(this.engine.dir)
      freeBytes = fs.bavail * fs.bsize
      totalBytes = fs.blocks * fs.bsize
    } catch (err) {
      this.logger.warn({err}, 'statfs of the data directory failed')
    }
    return {
      bookieId: this.bookieId, address: this.address, state: s.readOnly ? 'read-only' : 'writable', freeBytes, totalBytes,
      ledgers: s.ledgers, entries: s.entries, segments: s.segments, diskBytes: s.diskBytes, liveBytes: s.liveBytes,
      problems: s.problems, journal: s.journal, writeCache: s.writeCache, codecOffloads: s.codecOffloads,
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000), pid: process.pid,
    }
  }

  private onSession(session: ServerHttp2Session): void {
    this.sessions.add(session)
    session.on('close', () => this.sessions.delete(session))
    session.on('error', err => this.logger.debug({err}, 'http2 session error'))
    try {
      session.setLocalWindowSize(SESSION_WINDOW_BYTES)
    } catch (err) {
      this.logger.debug({err}, 'could not raise the session window')
    }
    if (this.closing) session.close()
  }

  private match(method: string, path: string): {route: Route; params: string[]} {
    let pathKnown = false
    for (const route of this.routes) {
      const m = route.pattern.exec(path)
      if (m === null) continue
      pathKnown = true
      if (route.method === method) return {route, params: m.slice(1)}
    }
    throw new LogError(ErrorCode.BAD_INPUT, pathKnown ? `method ${method} is not allowed on ${path}` : `no route ${method} ${path}`, {detail: {method, path}})
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', err => this.logger.debug({err}, 'http2 stream error'))
    const t0 = performance.now()
    const method = String(headers[':method'] ?? '')
    const raw = String(headers[':path'] ?? '')
    const q = raw.indexOf('?')
    const path = q < 0 ? raw : raw.slice(0, q)
    let name = 'unknown'
    this.inflight++
    const handled = (async (): Promise<Reply | undefined> => {
      const {route, params} = this.match(method, path)
      name = route.name
      if (route.body !== true) stream.resume() // discard a body nobody asked for
      return route.handle({method, params, query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)), headers, stream})
    })()
    handled
      .catch((err: unknown) => {
        const e = asLogError(err)
        if (e.code === ErrorCode.INTERNAL) this.logger.error({err, method, path}, 'request failed')
        else this.logger.debug({code: e.code, message: e.message, method, path}, 'request refused')
        if (name === 'unknown') stream.resume()
        return errorReply(e)
      })
      .then(reply => { if (reply !== undefined) this.send(stream, reply, name, t0) })
      .catch((err: unknown) => this.logger.error({err, method, path}, 'could not answer'))
      .finally(() => {
        this.inflight--
        if (this.inflight === 0) this.drained?.()
      })
  }

  private send(stream: ServerHttp2Stream, reply: Reply, route: string, t0: number): void {
    this.metrics.request(route, reply.status, (performance.now() - t0) / 1000)
    if (stream.destroyed || stream.closed || stream.headersSent) return // the client went away
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body
    try {
      stream.respond({':status': reply.status, 'content-type': reply.type, 'content-length': body.length, ...reply.headers})
      stream.end(body)
    } catch (err) {
      this.logger.debug({err}, 'could not answer (stream closed meanwhile)')
      return
    }
    stopUploadAfterAnswer(stream)
  }

  /** Graceful stop; see the file comment. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closingCtl.abort()
      const closed = new Promise<void>(resolve => this.h2.close(() => resolve()))
      for (const s of this.sessions) s.close()
      const idle = this.inflight === 0 ? Promise.resolve() : new Promise<void>(resolve => { this.drained = resolve })
      let timer: NodeJS.Timeout | undefined
      const late = await Promise.race([
        idle.then(() => false),
        new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(true), this.drainTimeoutMs) }),
      ])
      clearTimeout(timer)
      if (late) this.logger.warn({inflight: this.inflight}, 'requests still running at the drain timeout; closing their sessions')
      // A session closes by itself once its streams are done; what is left after a moment (streams past
      // the drain timeout, a peer that keeps a finished stream half-open) is cut.
      const rest = setTimeout(() => { for (const s of this.sessions) s.destroy() }, late ? 0 : 1000)
      await closed
      clearTimeout(rest)
      this.metrics.close()
    })()
    return this.closing
  }
}
