/**
 * The data path: batched adds (POST /v1/entries) and range reads (GET /v1/ledgers/{id}/entries).
 */
import type {AddRequest} from '../engine/engine.js'
import * as ids from '../ids.js'
import {readBody} from './body.js'
import {NEXT_HEADER, addBatchDecoder, encodeAddResults, encodeEntries, type AddOutcome} from './frames.js'
import {forWire, framesReply, intIn, param, type Reply, type Route, type RouteRequest, type ServerContext} from './route.js'

export function entryRoutes(ctx: ServerContext): Route[] {
  return [
    {name: 'add', method: 'POST', pattern: /^\/v1\/entries$/, body: true, handle: req => addEntries(ctx, req)},
    {name: 'read', method: 'GET', pattern: /^\/v1\/ledgers\/([^/]+)\/entries$/, handle: req => readEntries(ctx, req)},
  ]
}

function contentLength(req: RouteRequest): number | undefined {
  const v = req.headers['content-length']
  return typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : undefined
}

/**
 * One request's adds go to engine.addBatch together: each gets its own outcome, in request order. A body
 * the decoder had to concatenate owns its ArrayBuffer and is handed over as `transfer`, so a large batch
 * verifies its CRCs on the engine's codec pool without a copy. Adds are idempotent (same ledger, entry and
 * digest = the same answer), which is what makes client retries (undici's `idempotent: true`) safe.
 */
async function addEntries(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const recoveryAll = req.query.get('recovery') === '1'
  const expected = contentLength(req)
  const decoder = addBatchDecoder(expected === undefined ? {maxBytes: ctx.limits.maxBodyBytes} : {maxBytes: ctx.limits.maxBodyBytes, expectedBytes: expected})
  const {items, body, owned} = await readBody(req.stream, decoder, ctx.limits.bodyTimeoutMs)
  const reqs: AddRequest[] = recoveryAll ? items.map(it => ({...it, recovery: true})) : items
  const sizes = reqs.map(r => r.payload.length) // read before the body is transferred (and detached)
  const results: AddOutcome[] = await ctx.engine.addBatch(reqs, owned ? {transfer: body.buffer as ArrayBuffer} : {})
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
  return framesReply(encodeAddResults(results))
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
  const entries = await ctx.engine.readRange(ledgerId, from, to, {maxBytes, maxEntries})
  let bytes = 0
  for (const e of entries) bytes += e.payload.length
  ctx.metrics.read(entries.length, bytes)
  const last = entries.at(-1)?.entryId
  // Without a cut, nothing held lies in (last, to]; the ledger's last entry id tells whether there may be.
  const more = last !== undefined && last < to && last < ctx.engine.ledger(ledgerId).lastEntryId
  return framesReply(encodeEntries(entries), more ? {[NEXT_HEADER]: String(last + 1n)} : undefined)
}
