/**
 * Transport over undici 7's H2CClient (h2c with prior knowledge). Every request says `idempotent: true`:
 * without it undici sends POSTs one at a time per session (../shared/reference/limits.md §4). That also lets
 * undici retry a request by itself after an indirect failure, which is safe because every bookie route is
 * idempotent (an add of the same ledger, entry and digest gets the same answer). undici cannot raise
 * nghttp2's maxSessionMemory (10 MB), so the client caps in-flight body bytes per bookie below that
 * (bookie-client.ts, maxInflightBytes).
 */
import {H2CClient} from 'undici'
import {CLIENT_SESSION_WINDOW_BYTES, CLIENT_STREAM_WINDOW_BYTES, responseTooLarge, transportResponse, unavailable, type Transport, type TransportRequest, type TransportResponse} from './transport.js'

export class UndiciTransport implements Transport {
  readonly name = 'undici'
  private client: H2CClient | undefined
  private lastHeard = 0

  constructor(private readonly address: string) {}

  private dispatcher(): H2CClient {
    if (this.client === undefined || this.client.closed || this.client.destroyed) {
      // initialWindowSize / connectionWindowSize are Client options that H2CClient passes on (its typings omit them).
      const opts = {
        maxConcurrentStreams: 256, pipelining: 256, headersTimeout: 0, bodyTimeout: 0,
        initialWindowSize: CLIENT_STREAM_WINDOW_BYTES, connectionWindowSize: CLIENT_SESSION_WINDOW_BYTES,
      } as H2CClient.Options
      this.client = new H2CClient(`http://${this.address}`, opts)
    }
    return this.client
  }

  async request(req: TransportRequest): Promise<TransportResponse> {
    if (req.signal.aborted) throw req.signal.reason
    try {
      const res = await this.dispatcher().request({
        path: req.path, method: req.method, signal: req.signal, idempotent: true,
        ...(req.body === undefined ? {} : {body: req.body}),
      })
      this.lastHeard = performance.now()
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        this.lastHeard = performance.now()
        size += chunk.length
        if (size > req.maxResponseBytes) {
          res.body.destroy()
          throw responseTooLarge(this.address, req.maxResponseBytes)
        }
        chunks.push(chunk)
      }
      return transportResponse(res.statusCode, res.headers, chunks, size)
    } catch (err) {
      throw req.signal.aborted ? req.signal.reason : unavailable(this.address, err)
    }
  }

  timedOut(since: number): void {
    if (this.lastHeard < since && this.client !== undefined) {
      this.client.destroy().catch(() => undefined)
      this.client = undefined
    }
  }

  async close(): Promise<void> {
    const c = this.client
    this.client = undefined
    await c?.destroy().catch(() => undefined)
  }
}
