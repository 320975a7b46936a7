/**
 * Ledger recovery (BookKeeper's protocol, ../shared/reference/anchors.md §1.4, with BP-46's quorums):
 *   1. CAS the metadata OPEN -> IN_RECOVERY (another recoverer may already have; that is fine).
 *   2. Fence every bookie of the last ensemble; at least E - Qa + 1 must answer, so that no write set can
 *      still gather Qa acks for the old writer.
 *   3. From the highest LAC they report + 1, read forward: an entry found (digest verified) on any bookie of
 *      its write set is re-replicated to that write set with recovery adds (Qa must ack); an entry that
 *      Qw - Qa + 1 bookies explicitly don't have was never acknowledged, and recovery stops there. Anything
 *      less certain (bookies down) fails with a retriable error rather than guess.
 *   4. CAS the metadata to CLOSED with that last entry id. If another recoverer closed it first, its answer
 *      stands (every reader then sees the same last entry).
 */
import {ErrorCode, LogError, asLogError, isLogError} from '../errors.js'
import type {LedgerMetadata, MetadataStore, Versioned} from '../meta/store.js'
import type {ReadEntry} from '../net/bookie-client.js'
import type {BookiePool} from './bookies.js'
import {digestOf} from '../checksum.js'
import {bookiesFor, ensembleCoverage, quorumCoverage} from './quorum.js'

async function casLoop(store: MetadataStore, id: bigint, change: (m: Versioned<LedgerMetadata>) => LedgerMetadata | undefined): Promise<Versioned<LedgerMetadata>> {
  for (let attempt = 0; ; attempt++) {
    const m = await store.getLedger(id)
    const next = change(m)
    if (!next) return m
    try {
      return await store.updateLedger(next, m.version)
    } catch (err) {
      if (!isLogError(err) || err.code !== ErrorCode.BAD_VERSION || attempt >= 10) throw err
    }
  }
}

type Probe = {found: ReadEntry} | {absent: true} | {unknown: LogError}

async function probeEntry(pool: BookiePool, meta: LedgerMetadata, bookie: string, entryId: bigint): Promise<Probe> {
  try {
    const got = await (await pool.client(bookie)).readEntries(meta.ledgerId, entryId, entryId)
    const e = got.find(x => x.entryId === entryId)
    if (!e) return {absent: true}
    if (e.ledgerId !== meta.ledgerId || digestOf(e) !== e.digest) {
      return {unknown: new LogError(ErrorCode.BAD_CHECKSUM, `bookie ${bookie} holds a corrupt copy of entry ${entryId}`)}
    }
    return {found: e}
  } catch (err) {
    const e = asLogError(err)
    if (e.code === ErrorCode.NO_SUCH_ENTRY || e.code === ErrorCode.NO_SUCH_LEDGER) return {absent: true}
    return {unknown: e}
  }
}

export async function recoverLedger(store: MetadataStore, pool: BookiePool, ledgerId: bigint): Promise<Versioned<LedgerMetadata>> {
  let m = await casLoop(store, ledgerId, cur => (cur.value.state === 'OPEN' ? {...cur.value, state: 'IN_RECOVERY'} : undefined))
  if (m.value.state === 'CLOSED') return m
  const meta = m.value

  const last = meta.ensembles.at(-1)!
  const fenced = await Promise.allSettled(last.bookies.map(async b => (await pool.client(b)).fence(ledgerId)))
  const ok = fenced.flatMap(r => (r.status === 'fulfilled' ? [r.value] : []))
  const need = ensembleCoverage(meta)
  if (ok.length < need) {
    const why = fenced.flatMap(r => (r.status === 'rejected' ? [asLogError(r.reason).message] : []))
    throw new LogError(ErrorCode.NOT_ENOUGH_BOOKIES, `recovery of ledger ${ledgerId}: fenced ${ok.length} of ${last.bookies.length} bookies, ${need} needed (${why.join('; ')})`)
  }
  let entryId = ok.reduce((max, r) => (r.lac > max ? r.lac : max), -1n) + 1n

  // Read forward from the highest known LAC, re-replicating what exists.
  for (;;) {
    const bookies = bookiesFor(meta, entryId)
    const probes = await Promise.all(bookies.map(b => probeEntry(pool, meta, b, entryId)))
    const found = probes.find((p): p is {found: ReadEntry} => 'found' in p)
    if (!found) {
      const absent = probes.filter(p => 'absent' in p).length
      if (absent >= quorumCoverage(meta)) break
      const why = probes.flatMap(p => ('unknown' in p ? [p.unknown.message] : []))
      throw new LogError(ErrorCode.NOT_ENOUGH_BOOKIES, `recovery of ledger ${ledgerId}: cannot tell whether entry ${entryId} exists (${why.join('; ')})`)
    }
    const e = found.found
    const frame = {ledgerId, entryId, lac: e.lac, payload: e.payload, digest: e.digest, recovery: true}
    const acks = await Promise.allSettled(bookies.map(async b => {
      const [r] = await (await pool.client(b)).addEntries([frame])
      if (!r?.ok) throw r?.error ?? new LogError(ErrorCode.INTERNAL, 'no result')
    }))
    if (acks.filter(a => a.status === 'fulfilled').length < meta.ackQuorum) {
      throw new LogError(ErrorCode.NOT_ENOUGH_BOOKIES, `recovery of ledger ${ledgerId}: entry ${entryId} could not be re-replicated to ${meta.ackQuorum} bookies`)
    }
    entryId++
  }
  const lastEntryId = entryId - 1n
  m = await casLoop(store, ledgerId, cur => (cur.value.state === 'CLOSED' ? undefined : {...cur.value, state: 'CLOSED', lastEntryId}))
  pool.announceClosed(m.value) // followers of the dead writer's ledger look at the metadata now
  return m
}
