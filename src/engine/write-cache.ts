/**
 * Recent entries kept in memory so that tailing readers (the common case: a consumer a few entries behind
 * the writer) never touch the disk. FIFO by insertion with a byte budget; a hit is only trusted after the
 * caller checked the index still holds the entry with the same digest (a deleted ledger's entries just
 * age out).
 *
 * Eviction order lives in an array with a moving head, not in the Map's iteration order: V8 leaves deleted
 * Map entries as holes that every new iterator walks over, which made each eviction cost 12-39 µs once
 * the cache was full (docs/BENCHMARKS.md); the queue makes it O(1).
 */
export interface CachedEntry {
  lac: bigint
  digest: number
  payload: Buffer
}

interface Slot {
  ledgerId: bigint
  entryId: number
  entry: CachedEntry
}

export class WriteCache {
  private readonly ledgers = new Map<bigint, Map<number, CachedEntry>>()
  private order: Slot[] = []
  private head = 0
  private bytes = 0
  private count = 0
  hits = 0
  misses = 0

  constructor(private readonly maxBytes: number) {}

  put(ledgerId: bigint, entryId: number, e: CachedEntry): void {
    if (this.maxBytes <= 0 || e.payload.length > this.maxBytes) return
    let m = this.ledgers.get(ledgerId)
    if (!m) this.ledgers.set(ledgerId, (m = new Map()))
    const old = m.get(entryId)
    if (old) {
      this.bytes -= old.payload.length
      this.count--
    }
    m.set(entryId, e)
    this.order.push({ledgerId, entryId, entry: e})
    this.bytes += e.payload.length
    this.count++
    while (this.bytes > this.maxBytes && this.head < this.order.length) this.evictOne()
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }

  private evictOne(): void {
    const s = this.order[this.head]!
    this.order[this.head++] = undefined as unknown as Slot
    const m = this.ledgers.get(s.ledgerId)
    // A slot left behind by a re-put of the same entry no longer owns the map's value: skip it.
    if (!m || m.get(s.entryId) !== s.entry) return
    m.delete(s.entryId)
    if (m.size === 0) this.ledgers.delete(s.ledgerId)
    this.bytes -= s.entry.payload.length
    this.count--
  }

  get(ledgerId: bigint, entryId: number): CachedEntry | undefined {
    const e = this.ledgers.get(ledgerId)?.get(entryId)
    if (e) this.hits++
    else this.misses++
    return e
  }

  get size(): {entries: number; bytes: number} {
    return {entries: this.count, bytes: this.bytes}
  }
}
