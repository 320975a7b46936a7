/**
 * In-process bookies for the route tests: a real StorageEngine on a temp dir behind a real BookieServer on
 * 127.0.0.1:0, and a raw HTTP/2 request helper for what a well-behaved client never sends.
 */
import http2, {type ClientHttp2Session, type OutgoingHttpHeaders} from 'node:http2'
import {StorageEngine, type EngineOptions} from '../../src/engine/engine.js'
import {BookieServer, type BookieServerOptions} from '../../src/net/server.js'
import {entry, tempDir} from '../helpers/entries.js'
import {connectBookie, type AddFrame} from '../../src/net/bookie-client.js'
import type {Test} from 'tap'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface LocalBookie {
  engine: StorageEngine
  server: BookieServer
  address: string
}

export async function localBookie(t: Teardown, opts: {engine?: Omit<EngineOptions, 'dir'>; server?: Omit<BookieServerOptions, 'engine'>} = {}): Promise<LocalBookie> {
  const dir = tempDir(t, 'logctl-net-')
  const engine = await StorageEngine.open({preallocBytes: 64 * 1024, compactIntervalMs: 0, ...opts.engine, dir})
  const server = await BookieServer.listen({...opts.server, engine})
  // Registered after tempDir's teardown, so it runs before it (tap runs teardowns in reverse order).
  t.teardown(async () => {
    await server.close()
    await engine.close()
  })
  return {engine, server, address: server.address}
}

/** A valid add (digest computed), as the client library would send it. */
export function frame(ledgerId: bigint, entryId: bigint, size = 100): AddFrame {
  return entry(ledgerId, entryId, {size})
}

export interface RawAnswer {
  status: number
  headers: http2.IncomingHttpHeaders
  body: Buffer
  /** The body as JSON (error answers: {code, message, retriable, detail}). */
  json: Record<string, unknown>
}

export function rawSession(t: Teardown, address: string): ClientHttp2Session {
  const s = http2.connect(`http://${address}`)
  s.on('error', () => undefined)
  t.teardown(() => s.destroy())
  return s
}

/**
 * One request. `body` chunks are written in order; `end: false` leaves the request body open (a stalled
 * peer). Resolves with the answer as soon as it is complete, whether or not the body was all sent.
 */
export function raw(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body: Buffer[] = [], opts: {end?: boolean} = {}): Promise<RawAnswer> {
  const hasBody = body.length > 0 || opts.end === false
  const stream = session.request(headers, {endStream: !hasBody})
  return new Promise((resolve, reject) => {
    let status = 0
    let got: http2.IncomingHttpHeaders = {}
    const chunks: Buffer[] = []
    stream.on('response', h => {
      got = h
      status = Number(h[':status'])
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      const b = Buffer.concat(chunks)
      let json: Record<string, unknown> = {}
      try {
        json = JSON.parse(b.toString('utf8')) as Record<string, unknown>
      } catch {
        // a frames answer
      }
      resolve({status, headers: got, body: b, json})
    })
    stream.on('error', reject)
    for (const c of body) stream.write(c)
    if (opts.end !== false && hasBody) stream.end()
  })
}

const nextGood = new Map<bigint, bigint>()

/** After a bad request, a good client (a fresh connection) still adds and reads on the same bookie. */
export async function stillServes(t: Test, b: LocalBookie, ledgerId = 500n): Promise<void> {
  const c = connectBookie(b.address)
  try {
    const id = nextGood.get(ledgerId) ?? 0n
    nextGood.set(ledgerId, id + 1n)
    const [r] = await c.addEntries([frame(ledgerId, id)])
    t.ok(r?.ok, 'a good add right after is stored')
    t.equal((await c.readEntries(ledgerId, id, id))[0]?.entryId, id, 'and read back')
  } finally {
    await c.close()
  }
}
