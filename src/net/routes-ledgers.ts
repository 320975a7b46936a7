/**
 * Per-ledger control: LAC long poll, fence, delete, and the bookie's view of one ledger.
 */
import {ErrorCode, isLogError} from '../errors.js'
import * as ids from '../ids.js'
import {flag, intIn, jsonReply, param, type Reply, type Route, type RouteRequest, type ServerContext} from './route.js'

export function ledgerRoutes(ctx: ServerContext): Route[] {
  const path = (suffix: string): RegExp => new RegExp(`^/v1/ledgers/([^/]+)${suffix}$`)
  return [
    {name: 'lac', method: 'GET', pattern: path('/lac'), handle: req => readLac(ctx, req)},
    {name: 'lac-write', method: 'POST', pattern: path('/lac'), handle: req => writeLac(ctx, req)},
    {name: 'fence', method: 'POST', pattern: path('/fence'), handle: req => fence(ctx, req)},
    {name: 'ledger', method: 'GET', pattern: path(''), handle: req => ledgerInfo(ctx, req)},
    {name: 'delete', method: 'DELETE', pattern: path(''), handle: req => deleteLedger(ctx, req)},
  ]
}

/**
 * Wait until the bookie's LAC for the ledger exceeds `after`, at most waitMs; a shutting-down server or a
 * client that goes away (its stream closes) ends the wait at once.
 */
export async function waitForLac(ctx: ServerContext, req: RouteRequest, ledgerId: bigint, after: bigint, waitMs: number): Promise<void> {
  if (waitMs <= 0 || ctx.closing.aborted) return
  let onAbort: (() => void) | undefined
  const gone = new AbortController()
  const aborted = new Promise<void>(resolve => {
    onAbort = () => {
      gone.abort()
      resolve()
    }
    ctx.closing.addEventListener('abort', onAbort, {once: true})
    req.stream.once('close', onAbort)
  })
  try {
    await Promise.race([ctx.engine.waitForLac(ledgerId, after, waitMs, gone.signal), aborted])
  } finally {
    ctx.closing.removeEventListener('abort', onAbort!)
    req.stream.off('close', onAbort!)
  }
}

/** LAC and last entry id as this bookie knows them; -1/-1 for a ledger it holds nothing of. */
export function positions(ctx: ServerContext, ledgerId: bigint): {lac: bigint; lastEntryId: bigint} {
  try {
    const l = ctx.engine.ledger(ledgerId)
    return {lac: l.lac, lastEntryId: l.lastEntryId}
  } catch (err) {
    if (isLogError(err) && err.code === ErrorCode.NO_SUCH_LEDGER) return {lac: -1n, lastEntryId: -1n}
    throw err
  }
}

/**
 * Long poll: answers as soon as the LAC exceeds `after`, else after waitMs (at most limits.maxWaitMs) with
 * the current value. A shutting-down server answers at once with what it has (the client polls again,
 * elsewhere). A client that gives up early (its stream closes) ends the engine's wait too.
 */
async function readLac(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const ledgerId = ids.ledgerId(req.params[0])
  const after = param(req.query, 'after', ids.lac, -1n)
  const waitMs = param(req.query, 'waitMs', intIn('waitMs', 0, ctx.limits.maxWaitMs), 0)
  await waitForLac(ctx, req, ledgerId, after, waitMs)
  const p = positions(ctx, ledgerId)
  return jsonReply({ledgerId, lac: p.lac, lastEntryId: p.lastEntryId})
}

/**
 * Explicit LAC from an idle writer (no later add carries it piggybacked). Only raises the bookie's LAC; kept
 * in memory (engine.updateLac), so it wakes long polls without a journal write. With closed=1 the LAC is the
 * last entry of a ledger its writer has just closed (engine.noteClosed): long polls and tail streams at its
 * end answer at once, and a tail stream ends with a CLOSED message.
 */
async function writeLac(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const ledgerId = ids.ledgerId(req.params[0])
  const at = param(req.query, 'lac', ids.lac)
  const closed = param(req.query, 'closed', flag('closed'), false)
  const lac = closed ? ctx.engine.noteClosed(ledgerId, at) : ctx.engine.updateLac(ledgerId, at)
  return jsonReply({ledgerId, lac})
}

async function fence(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const info = await ctx.engine.fence(ids.ledgerId(req.params[0]))
  return jsonReply({ledgerId: info.ledgerId, fenced: info.fenced, lac: info.lac, lastEntryId: info.lastEntryId})
}

async function ledgerInfo(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  return jsonReply(ctx.engine.ledger(ids.ledgerId(req.params[0])))
}

async function deleteLedger(ctx: ServerContext, req: RouteRequest): Promise<Reply> {
  const ledgerId = ids.ledgerId(req.params[0])
  await ctx.engine.deleteLedger(ledgerId)
  return jsonReply({ledgerId, deleted: true})
}
