/** The conformance suite's shared pieces: its options, stores that close themselves, and sample records. */
import type {Test} from 'tap'
import type {BookieInfo, LedgerMetadata, MetadataStore, NewLedger} from '../../src/meta/store.js'

export interface ConformanceOptions {
  /** A URL of this driver's kind where nothing answers: opening it must fail with METADATA_UNAVAILABLE, fast. */
  unreachableUrl: string
  /** A short bookie ttl for the expiry cases, above the driver's floor (etcd leases: about 2 s). */
  bookieTtlMs: number
  /** How long after a bookie stops it may still be listed alive: ttl plus the driver's expiry granularity. */
  expiryBoundMs: number
}

/** Returns a NEW connection to the SAME backing store on every call. */
export type Open = () => Promise<MetadataStore>

/** Open a store that is closed when the test ends. */
export async function opened(t: Test, open: Open): Promise<MetadataStore> {
  const store = await open()
  t.teardown(() => store.close())
  return store
}

/** Sample records are valid unless a test spoils them on purpose. */
export function newLedger(over: Partial<NewLedger> = {}): NewLedger {
  return {
    ensembleSize: 3, writeQuorum: 2, ackQuorum: 2, state: 'OPEN', lastEntryId: -1n, length: 0n,
    ensembles: [{firstEntryId: 0n, bookies: ['bookie-1', 'bookie-2', 'bookie-3']}],
    compression: 'none', customMetadata: {owner: 'conformance'}, createdAt: 1_764_100_000_000,
    ...over,
  }
}

export function closedLedger(meta: LedgerMetadata, lastEntryId: bigint): LedgerMetadata {
  return {...meta, state: 'CLOSED', lastEntryId, length: (lastEntryId + 1n) * 100n}
}

/** A bookie id no other test (or earlier run against a shared etcd) uses. */
export function uniqueBookieId(tag: string): string {
  return `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
}

export function bookie(id: string, over: Partial<BookieInfo> = {}): BookieInfo {
  return {id, address: '127.0.0.1:3181', state: 'writable', freeBytes: 2 ** 30, totalBytes: 2 ** 31, ledgers: 0, ...over}
}

export async function statusOf(store: MetadataStore, id: string): Promise<{alive: boolean; lastSeen: number; state: string} | undefined> {
  return (await store.listBookies()).find(b => b.id === id)
}
