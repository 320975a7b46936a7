/**
 * Recent entries kept in memory so that tailing readers (the common case: a consumer a few entries behind
 * the writer) never touch the disk. A hit is only trusted after the caller checked the index still holds
 * the entry with the same digest (a deleted ledger's entries, or an entry written again, just age out).
 *
 * Entries come in runs: one durable group's entries of one ledger, ids ascending (what one add request
 * carries). A run is the unit of insertion and of eviction (FIFO by insertion, within a byte budget), so
 * the add path pays a few array pushes per run instead of map operations per entry, which had become ~10 %
 * of a busy bookie's main thread (docs/BENCHMARKS.md). A lookup scans the ledger's runs newest first (the
 * newest copy of an entry written twice wins) and binary-searches the run that covers the id.
 *
 * Eviction order lives in an array with a moving head (an O(1) queue): V8 leaves deleted Map entries as
 * holes that every new iterator walks over, which made each eviction cost 12-39 µs once the cache was full.
 */
export interface CachedEntry {
  lac: bigint
  digest: number
  payload: Buffer
}

interface Run {
  ledgerId: bigint
  /** Ascending. */
  ids: number[]
  entries: CachedEntry[]
  bytes: number
}

export class WriteCache {
  /** Per ledger, its runs in insertion order. */
  private readonly ledgers = new Map<bigint, Run[]>()
  private order: Array<Run | undefined> = []
  private head = 0
  private bytes = 0
  private count = 0
  hits = 0
  misses = 0

  constructor(private readonly maxBytes: number) {}

  put(ledgerId: bigint, entryId: number, e: CachedEntry): void {
    this.putRun(ledgerId, [entryId], [e])
  }

  /** Entries of one ledger whose ids ascend strictly (the caller checks); `ids` and `entries` are kept. */
  putRun(ledgerId: bigint, ids: number[], entries: CachedEntry[]): void {
    if (this.maxBytes <= 0 || ids.length === 0) return
    let bytes = 0
    for (const e of entries) bytes += e.payload.length
    if (bytes > this.maxBytes) {
      // Larger than the whole budget: keep what fits of its newest entries, one by one.
      if (ids.length > 1) for (let i = 0; i < ids.length; i++) this.putRun(ledgerId, [ids[i]!], [entries[i]!])
      return
    }
    const run: Run = {ledgerId, ids, entries, bytes}
    let runs = this.ledgers.get(ledgerId)
    if (!runs) this.ledgers.set(ledgerId, (runs = []))
    runs.push(run)
    this.order.push(run)
    this.bytes += bytes
    this.count += ids.length
    while (this.bytes > this.maxBytes && this.head < this.order.length) this.evictOne()
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }

  private evictOne(): void {
    const run = this.order[this.head]!
    this.order[this.head++] = undefined
    const runs = this.ledgers.get(run.ledgerId)!
    runs.splice(runs.indexOf(run), 1) // the oldest run of its ledger: index 0 unless ledgers interleave
    if (runs.length === 0) this.ledgers.delete(run.ledgerId)
    this.bytes -= run.bytes
    this.count -= run.ids.length
  }

  get(ledgerId: bigint, entryId: number): CachedEntry | undefined {
    const runs = this.ledgers.get(ledgerId)
    if (runs) {
      for (let k = runs.length - 1; k >= 0; k--) {
        const run = runs[k]!
        const ids = run.ids
        if (entryId < ids[0]! || entryId > ids[ids.length - 1]!) continue
        let lo = 0
        let hi = ids.length - 1
        while (lo <= hi) {
          const mid = (lo + hi) >>> 1
          const v = ids[mid]!
          if (v < entryId) lo = mid + 1
          else if (v > entryId) hi = mid - 1
          else {
            this.hits++
            return run.entries[mid]
          }
        }
      }
    }
    this.misses++
    return undefined
  }

  get size(): {entries: number; bytes: number} {
    return {entries: this.count, bytes: this.bytes}
  }
}
