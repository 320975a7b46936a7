/**
 * Striping and quorum arithmetic (BookKeeper's, DESIGN.md §1): entry e goes to the Qw bookies starting at
 * ensemble position e mod E; it is durable once Qa of them acknowledged it.
 */
import type {Ensemble, LedgerMetadata} from '../meta/store.js'

/** The first ensemble position of entry e's write set; the others follow it, wrapping (entry ids are < 2^53). */
export function writeSetStart(entryId: bigint, ensembleSize: number): number {
  return Number(entryId) % ensembleSize
}

/** Ensemble positions that store entry e. */
export function writeSet(entryId: bigint, ensembleSize: number, writeQuorum: number): number[] {
  const first = writeSetStart(entryId, ensembleSize)
  return Array.from({length: writeQuorum}, (_, i) => (first + i) % ensembleSize)
}

/** The fragment (ensemble) that holds entry e: the last one whose firstEntryId <= e. */
export function ensembleFor(meta: Pick<LedgerMetadata, 'ensembles'>, entryId: bigint): Ensemble {
  let found = meta.ensembles[0]!
  for (const ens of meta.ensembles) {
    if (ens.firstEntryId <= entryId) found = ens
    else break
  }
  return found
}

/** The bookie addresses/ids that store entry e, in write-set order. */
export function bookiesFor(meta: Pick<LedgerMetadata, 'ensembles' | 'ensembleSize' | 'writeQuorum'>, entryId: bigint): string[] {
  const ens = ensembleFor(meta, entryId)
  return writeSet(entryId, meta.ensembleSize, meta.writeQuorum).map(p => ens.bookies[p]!)
}

/**
 * Fencing must reach enough bookies that no write set can still gather Qa acks from unfenced ones:
 * BP-46's ensemble coverage, E - Qa + 1 positive answers.
 */
export function ensembleCoverage(meta: Pick<LedgerMetadata, 'ensembleSize' | 'ackQuorum'>): number {
  return meta.ensembleSize - meta.ackQuorum + 1
}

/** An entry is known absent once Qw - Qa + 1 bookies of its write set said so (BP-46 quorum coverage). */
export function quorumCoverage(meta: Pick<LedgerMetadata, 'writeQuorum' | 'ackQuorum'>): number {
  return meta.writeQuorum - meta.ackQuorum + 1
}
