/**
 * The data path: batched adds (POST /v1/entries) and range reads (GET /v1/ledgers/{id}/entries).
 */
import type {AddRequest, StoredEntry} from '../engine/engine.js'
import {ErrorCode, LogError} from '../errors.js'
import * as ids from '../ids.js'
import {readBody} from './body.js'
import {EnvelopeReader, FATAL_REQUEST_ID, RequestStatus, STREAM_TYPE, envelope, type Envelope} from './envelope.js'
import {FrameKind, HEADER_BYTES, LAC_HEADER, NEXT_HEADER, addBatchDecoder, decodeLacHints, encodeAddResults, encodeEntries, messageKind, type AddOutcome} from './frames.js'
import {tailMessage} from './tail-stream.js'
import {errorReply, forWire, framesReply, intIn, param, stopUploadAfterAnswer, type Reply, type Route, type RouteRequest, type ServerContext} from './route.js'
import {positions, waitForLac} from './routes-ledgers.js'

export function entryRoutes(ctx: ServerContext): Route[] {
  return [
    {name: 'add', method: 'POST', pattern: /^\/v1\/entries$/, body: true, handle: req => addEntries(ctx, req)},
    {name: 'add-stream', method: 'POST', pattern: /^\/v1\/entries\/stream$/, body: true, handle: req => addStream(ctx, req)},
    {name: 'read', method: 'GET', pattern: /^\/v1\/ledgers\/([^/]+)\/entries$/, handle: req => readEntries(ctx, req)},
    {name: 'tail', method: 'GET', pattern: /^\/v1\/ledgers\/([^/]+)\/tail$/, handle: req => readTail(ctx, req)},
    {name: 'tail-stream', method: 'GET', pattern: /^\/v1\/ledgers\/([^/]+)\/tail\/stream$/, handle: req => tailStream(ctx, req)},
  ]
}

function contentLength(req: RouteRequest): number | undefined {
  const v = req.headers['content-length']
  return typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : undefined
}

/**
 * One request's adds go to engine.addBatch together: each gets its own outcome, in request order. A body
 * large enough for the engine's codec pool (verifyOffloadBytes) is joined into one buffer that owns its
 * ArrayBuffer and is handed over as `transfer`, so its CRCs are verified there without a copy; a smaller
 * one is decoded as views of the chunks it came in (add streams do the same per message). Adds are idempotent (same ledger, entry and
 * digest = the same answer), which is what makes client retries (undici's `idempotent: true`) safe.
 */
async function addEntries(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const recoveryAll = req.query.get('recovery') === '1'
  const expected = contentLength(req)
  const decoder = addBatchDecoder({maxBytes: ctx.limits.maxBodyBytes, joinFrom: ctx.engine.verifyOffloadBytes, ...(expected === undefined ? {} : {expectedBytes: expected})})
  const {items, body, owned} = await readBody(req.stream, decoder, ctx.limits.bodyTimeoutMs)
  const reqs: AddRequest[] = recoveryAll ? items.map(it => ({...it, recovery: true})) : items
  return framesReply(await storeBatch(ctx, reqs, body, owned))
}

/** The engine stores one decoded batch; returns the encoded ADD_RESULTS (per-add outcomes, in order). */
async function storeBatch(ctx: ServerContext, reqs: AddRequest[], body: Buffer | undefined, owned: boolean): Promise<Buffer> {
  const sizes = reqs.map(r => r.payload.length) // read before the body is transferred (and detached)
  const results: AddOutcome[] = await ctx.engine.addBatch(reqs, owned && body ? {transfer: body.buffer as ArrayBuffer} : {})
  let failed = 0
  let bytes = 0
  for (let i = 0; i < results.length; i++) {
    const r = results[i]
    if (r === undefined) {
      bytes += sizes[i]!
    } else {
      failed++
      results[i] = forWire(r)
    }
  }
  ctx.metrics.added(results.length - failed, failed, bytes)
  return encodeAddResults(results)
}

/**
 * A LAC_HINTS message on an add stream (docs/PROTOCOL.md "LAC hints"): applied at once, in stream order (after
 * the batches before it), and never answered; one that does not decode is dropped, and counted as the
 * route 'lac-hint' with its error's status like every hint.
 */
function applyLacHints(ctx: ServerContext, m: Envelope): void {
  const t0 = performance.now()
  try {
    for (const h of decodeLacHints(m.parts, ctx.limits.maxBodyBytes)) ctx.engine.hintLac(h.ledgerId, h.lac)
    ctx.metrics.request('lac-hint', 200, (performance.now() - t0) / 1000)
  } catch (err) {
    ctx.metrics.request('lac-hint', errorReply(err).status, 0)
  }
}

/**
 * A long-lived add stream (envelope.ts): each message is one ADD_BATCH, stored like a POST /v1/entries body
 * and answered by requestId as soon as it is durable, in completion order, or a LAC_HINTS (applyLacHints).
 * A message that does not decode is refused alone (status 1); a broken envelope or a message stalled mid-way
 * for bodyTimeoutMs ends the stream with a FATAL message (the session and every other stream go on). When
 * the server shuts down, new messages are refused with BOOKIE_UNAVAILABLE and the stream ends once the
 * batches in flight are answered. Resolves when the stream is over.
 */
function addStream(ctx: ServerContext, req: RouteRequest): Promise<undefined> {
  const stream = req.stream
  const limits = ctx.limits
  stream.respond({':status': 200, 'content-type': STREAM_TYPE})
  const reader = new EnvelopeReader(HEADER_BYTES, limits.maxBodyBytes)
  let inflight = 0
  let ended = false
  let over = false
  return new Promise<undefined>(resolve => {
    const write = (requestId: number, status: number, body: Buffer): void => {
      if (!over && !stream.destroyed && !stream.writableEnded) stream.write(envelope(requestId, body, status))
    }
    const refuse = (requestId: number, err: unknown): void => {
      const r = errorReply(err) // what a request of its own would have been answered
      ctx.metrics.request('add', r.status, 0)
      write(requestId, RequestStatus.REFUSED, Buffer.from(r.body))
    }
    const finish = (): void => {
      if (over) return
      over = true
      stream.off('data', onData)
      ctx.closing.removeEventListener('abort', onClosing)
      if (!stream.destroyed && !stream.writableEnded) {
        stream.end()
        stopUploadAfterAnswer(stream)
      }
      if (!stream.readableEnded) stream.resume() // read and drop whatever the client still sends
      resolve(undefined)
    }
    const endIfDone = (): void => {
      if ((ended || ctx.closing.aborted) && inflight === 0) finish()
    }
    const fatal = (err: unknown): void => {
      refuse(FATAL_REQUEST_ID, err)
      finish()
    }
    const onMessage = (m: Envelope): void => {
      if (messageKind(m.parts) === FrameKind.LAC_HINTS) {
        applyLacHints(ctx, m)
        return
      }
      if (ctx.closing.aborted) {
        refuse(m.requestId, new LogError(ErrorCode.BOOKIE_UNAVAILABLE, 'the bookie is shutting down'))
        return
      }
      const t0 = performance.now()
      inflight++
      void (async () => {
        try {
          const decoder = addBatchDecoder({maxBytes: limits.maxBodyBytes, expectedBytes: m.length, joinFrom: ctx.engine.verifyOffloadBytes})
          for (const part of m.parts) decoder.push(part)
          const {items, body, owned} = decoder.end()
          const results = await storeBatch(ctx, items, body, owned)
          ctx.metrics.request('add', 200, (performance.now() - t0) / 1000)
          write(m.requestId, RequestStatus.OK, results)
        } catch (err) {
          refuse(m.requestId, err)
        } finally {
          inflight--
          endIfDone()
        }
      })()
    }
    const onData = (chunk: Buffer): void => {
      try {
        reader.push(chunk, onMessage)
      } catch (err) {
        fatal(err)
      }
    }
    const onClosing = (): void => endIfDone()
    stream.on('data', onData)
    stream.once('end', () => {
      ended = true
      if (reader.partial) fatal(new LogError(ErrorCode.BAD_FRAME, 'the add stream ended in the middle of a message'))
      else endIfDone()
    })
    stream.once('close', () => {
      over = true
      resolve(undefined)
    })
    ctx.closing.addEventListener('abort', onClosing, {once: true})
    // Idle between messages is normal on a long-lived stream; idle in the middle of one is a stalled peer.
    stream.setTimeout(limits.bodyTimeoutMs, () => {
      if (reader.partial) fatal(new LogError(ErrorCode.TIMEOUT, `no bytes for ${limits.bodyTimeoutMs} ms in the middle of an add-stream message`, {detail: {idleTimeoutMs: limits.bodyTimeoutMs}}))
    })
  })
}

/**
 * Entries this bookie holds in [from, to], ascending, up to maxBytes (at least one entry). When a limit cut
 * the answer short, the NEXT_HEADER header names the id to continue from.
 */
async function readEntries(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const ledgerId = ids.ledgerId(req.params[0])
  const from = param(req.query, 'from', ids.entryId)
  const to = param(req.query, 'to', ids.entryId)
  const maxBytes = param(req.query, 'maxBytes', intIn('maxBytes', 1, ctx.limits.maxReadBytes), ctx.limits.maxReadBytes)
  const maxEntries = param(req.query, 'maxEntries', intIn('maxEntries', 1, ctx.limits.maxReadEntries), ctx.limits.maxReadEntries)
  const {body, last} = await ctx.engine.readRangeWith(ledgerId, from, to, {maxBytes, maxEntries}, entries => {
    countRead(ctx, entries)
    return {body: encodeEntries(entries), last: entries.at(-1)?.entryId}
  })
  // Without a cut, nothing held lies in (last, to]; the ledger's last entry id tells whether there may be.
  const more = last !== undefined && last < to && last < ctx.engine.ledger(ledgerId).lastEntryId
  return framesReply(body, more ? {[NEXT_HEADER]: String(last + 1n)} : undefined)
}

/**
 * A follower's long poll that brings the entries along (BookKeeper's long-poll read with a piggybacked
 * entry): waits until this bookie's LAC reaches `from` (at most waitMs), then answers the entries it holds
 * in [from, its LAC], up to maxBytes, with its LAC in LAC_HEADER. Only confirmed entries (up to the LAC) go
 * out. One request where a LAC poll and a read were two.
 */
async function readTail(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const ledgerId = ids.ledgerId(req.params[0])
  const from = param(req.query, 'from', ids.entryId)
  const waitMs = param(req.query, 'waitMs', intIn('waitMs', 0, ctx.limits.maxWaitMs), 0)
  const maxBytes = param(req.query, 'maxBytes', intIn('maxBytes', 1, ctx.limits.maxReadBytes), ctx.limits.maxReadBytes)
  await waitForLac(ctx, req, ledgerId, from - 1n, waitMs)
  const {lac, out} = await tailUpdate(ctx, ledgerId, from, maxBytes, entries => encodeEntries(entries))
  return framesReply(out, {[LAC_HEADER]: String(lac)})
}

/**
 * What a follower at `from` gets now: this bookie's LAC and the entries it holds in [from, LAC], up to
 * maxBytes, handed to `encode` (synchronously: see readRangeWith) and counted as read.
 */
async function tailUpdate<T>(ctx: ServerContext, ledgerId: bigint, from: bigint, maxBytes: number, encode: (entries: StoredEntry[], lac: bigint) => T): Promise<{lac: bigint; out: T; first: bigint | undefined; last: bigint | undefined}> {
  const lac = positions(ctx, ledgerId).lac
  const use = (entries: StoredEntry[]): {lac: bigint; out: T; first: bigint | undefined; last: bigint | undefined} => {
    countRead(ctx, entries)
    return {lac, out: encode(entries, lac), first: entries[0]?.entryId, last: entries.at(-1)?.entryId}
  }
  return lac >= from ? ctx.engine.readRangeWith(ledgerId, from, lac, {maxBytes, maxEntries: ctx.limits.maxReadEntries}, use) : use([])
}

/**
 * A follower's tail stream (docs/PROTOCOL.md "Tail streams"): what readTail answers, pushed as the LAC
 * moves, over one long-lived stream instead of one long poll per update. Each message (envelope.ts, requestId
 * counting up from 0, status OK) carries this bookie's LAC and the entries it holds from the follower's
 * position up to that LAC (up to maxBytes); when the LAC stays put for waitMs, a message with none (a
 * heartbeat: the follower re-reads the metadata to notice a close). Flow control is HTTP/2's: while the
 * follower does not read, writes wait for 'drain'. The stream ends when the follower closes it, when the
 * server shuts down, after a message whose first entry is not the one due (this bookie lacks it: the
 * follower reads it elsewhere), or with a FATAL message carrying the error (e.g. the ledger was deleted).
 * Resolves when the stream is over.
 */
async function tailStream(ctx: ServerContext, req: RouteRequest): Promise<undefined> {
  const ledgerId = ids.ledgerId(req.params[0])
  let next = param(req.query, 'from', ids.entryId)
  const waitMs = param(req.query, 'waitMs', intIn('waitMs', 1, ctx.limits.maxWaitMs), 1000)
  const maxBytes = param(req.query, 'maxBytes', intIn('maxBytes', 1, ctx.limits.maxReadBytes), ctx.limits.maxReadBytes)
  const stream = req.stream
  const gone = new AbortController()
  const stop = (): void => gone.abort()
  ctx.closing.addEventListener('abort', stop, {once: true})
  stream.once('close', stop)
  stream.respond({':status': 200, 'content-type': STREAM_TYPE})
  let seq = 0
  try {
    while (!gone.signal.aborted) {
      const t0 = performance.now()
      await ctx.engine.waitForLac(ledgerId, next - 1n, waitMs, gone.signal)
      if (gone.signal.aborted) break
      // The writer closed the ledger (lac-write closed=1): once the follower has it all, the message saying so is the last.
      const closedAt = ctx.engine.closeNotice(ledgerId)
      let ended = false
      const {lac, out: message, first, last} = await tailUpdate(ctx, ledgerId, next, maxBytes, (entries, lac) => {
        ended = closedAt !== undefined && (entries.at(-1)?.entryId ?? next - 1n) >= closedAt
        return tailMessage(seq, lac, entries, ended ? RequestStatus.CLOSED : RequestStatus.OK)
      })
      const gap = lac >= next && first !== next
      if (last !== undefined) next = last + 1n
      if (gone.signal.aborted || stream.destroyed) break
      seq++
      // Each message counts as the long poll (route 'tail') it replaces, as add-stream messages count as adds.
      ctx.metrics.request('tail', 200, (performance.now() - t0) / 1000)
      if (!stream.write(message)) {
        await new Promise<void>(resolve => {
          const done = (): void => {
            stream.off('drain', done)
            gone.signal.removeEventListener('abort', done)
            resolve()
          }
          stream.once('drain', done)
          gone.signal.addEventListener('abort', done, {once: true})
        })
      }
      if (gap || ended) break
    }
  } catch (err) {
    if (!stream.destroyed && !stream.writableEnded) stream.write(envelope(FATAL_REQUEST_ID, Buffer.from(errorReply(err).body), RequestStatus.REFUSED))
  } finally {
    ctx.closing.removeEventListener('abort', stop)
    stream.off('close', stop)
    if (!stream.destroyed && !stream.writableEnded) stream.end()
  }
  return undefined
}

/** Read metrics: entries and payload bytes answered. */
function countRead(ctx: ServerContext, entries: readonly StoredEntry[]): void {
  let bytes = 0
  for (const e of entries) bytes += e.payload.length
  ctx.metrics.read(entries.length, bytes)
}
