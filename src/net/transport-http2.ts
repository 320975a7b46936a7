/**
 * Transport over node:http2: one cleartext session per bookie, many concurrent streams. Unlike undici it can
 * raise nghttp2's maxSessionMemory (the 10 MB default RSTs its own streams with ENHANCE_YOUR_CALM once about
 * 10 MB of bodies are in flight) and it opens large flow-control windows for read answers.
 */
import http2, {type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders} from 'node:http2'
import {CLIENT_SESSION_WINDOW_BYTES, CLIENT_STREAM_WINDOW_BYTES, responseTooLarge, transportResponse, unavailable, type Transport, type TransportRequest, type TransportResponse} from './transport.js'

const {NGHTTP2_CANCEL} = http2.constants

export class Http2Transport implements Transport {
  readonly name = 'http2'
  private session: ClientHttp2Session | undefined
  /** performance.now() of the last byte heard from the bookie. */
  private lastHeard = 0

  constructor(private readonly address: string) {}

  private connect(): ClientHttp2Session {
    const current = this.session
    if (current !== undefined && !current.closed && !current.destroyed) return current
    const s = http2.connect(`http://${this.address}`, {
      settings: {initialWindowSize: CLIENT_STREAM_WINDOW_BYTES, enablePush: false},
      maxSessionMemory: 512,
    })
    const drop = (): void => {
      if (this.session === s) this.session = undefined
    }
    // Session errors (refused, reset) reach every stream of the session as stream errors: they are answered there.
    s.on('error', drop)
    s.once('goaway', drop) // the streams it accepted finish; new requests go to a new session
    s.once('close', drop)
    // The peer's SETTINGS, not the TCP connect, prove it is alive: a stopped process's kernel still accepts.
    s.on('remoteSettings', () => { this.lastHeard = performance.now() })
    s.once('connect', () => {
      try {
        s.setLocalWindowSize(CLIENT_SESSION_WINDOW_BYTES)
      } catch {
        // Only a throughput matter: the session works with the default window.
      }
    })
    // An idle connection must not keep a process alive; a request in flight has its timeout timer for that.
    s.unref()
    this.session = s
    return s
  }

  request(req: TransportRequest): Promise<TransportResponse> {
    return new Promise((resolve, reject) => {
      if (req.signal.aborted) {
        reject(req.signal.reason)
        return
      }
      let stream: ClientHttp2Stream
      try {
        const headers: http2.OutgoingHttpHeaders = {':method': req.method, ':path': req.path}
        if (req.body !== undefined) headers['content-length'] = req.body.length
        stream = this.connect().request(headers, {endStream: req.body === undefined})
      } catch (err) {
        this.session?.destroy()
        reject(unavailable(this.address, err))
        return
      }
      let settled = false
      let status = 0
      let headers: IncomingHttpHeaders = {}
      const chunks: Buffer[] = []
      let size = 0
      const finish = (err: unknown, res?: TransportResponse): void => {
        if (settled) return
        settled = true
        req.signal.removeEventListener('abort', onAbort)
        if (err !== undefined) {
          if (!stream.closed) stream.close(NGHTTP2_CANCEL)
          reject(req.signal.aborted ? req.signal.reason : unavailable(this.address, err))
        } else {
          resolve(res!)
        }
      }
      const onAbort = (): void => finish(req.signal.reason)
      req.signal.addEventListener('abort', onAbort, {once: true})
      stream.on('response', h => {
        this.lastHeard = performance.now()
        headers = h
        status = Number(h[':status'])
      })
      stream.on('data', (chunk: Buffer) => {
        this.lastHeard = performance.now()
        size += chunk.length
        if (size > req.maxResponseBytes) finish(responseTooLarge(this.address, req.maxResponseBytes))
        else chunks.push(chunk)
      })
      stream.on('end', () => {
        if (status === 0) finish(new Error('the stream ended without an answer'))
        else finish(undefined, transportResponse(status, headers, chunks, size))
      })
      stream.on('error', err => finish(err))
      stream.on('close', () => finish(new Error(`the stream closed before its answer ended (RST_STREAM code ${stream.rstCode ?? 'none'})`)))
      if (req.body !== undefined) stream.end(req.body)
    })
  }

  /**
   * A long-lived stream: a POST whose body stays open (add-stream.ts: `contentType` given), or a GET whose
   * answer goes on (tail-stream.ts: no `contentType`). Bytes coming back count as signs of life for
   * timedOut(). Throws BOOKIE_UNAVAILABLE when no session can be made.
   */
  openStream(path: string, contentType?: string): ClientHttp2Stream {
    let stream: ClientHttp2Stream
    try {
      stream = contentType === undefined
        ? this.connect().request({':method': 'GET', ':path': path}, {endStream: true})
        : this.connect().request({':method': 'POST', ':path': path, 'content-type': contentType}, {endStream: false})
    } catch (err) {
      this.session?.destroy()
      throw unavailable(this.address, err)
    }
    const heard = (): void => { this.lastHeard = performance.now() }
    stream.on('response', heard)
    stream.on('data', heard)
    return stream
  }

  timedOut(since: number): void {
    if (this.lastHeard < since) {
      this.session?.destroy()
      this.session = undefined
    }
  }

  async close(): Promise<void> {
    const s = this.session
    this.session = undefined
    if (s === undefined || s.destroyed) return
    await new Promise<void>(resolve => {
      s.once('close', () => resolve())
      s.destroy()
    })
  }
}
