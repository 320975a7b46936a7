/**
 * Recent entries kept in memory so that tailing readers (the common case: a consumer a few entries behind
 * the writer) never touch the disk. FIFO by insertion with a byte budget; a hit is only trusted after the
 * caller checked the index still holds the entry (a deleted ledger's entries just age out).
 */
export interface CachedEntry {
  lac: bigint
  digest: number
  payload: Buffer
}

export class WriteCache {
  private readonly map = new Map<string, CachedEntry>()
  private bytes = 0
  hits = 0
  misses = 0

  constructor(private readonly maxBytes: number) {}

  static key(ledgerId: bigint, entryId: bigint): string {
    return `${ledgerId}:${entryId}`
  }

  put(key: string, e: CachedEntry): void {
    if (this.maxBytes <= 0 || e.payload.length > this.maxBytes) return
    const old = this.map.get(key)
    if (old) {
      this.bytes -= old.payload.length
      this.map.delete(key)
    }
    this.map.set(key, e)
    this.bytes += e.payload.length
    while (this.bytes > this.maxBytes) {
      const first = this.map.entries().next().value as [string, CachedEntry]
      this.map.delete(first[0])
      this.bytes -= first[1].payload.length
    }
  }

  get(key: string): CachedEntry | undefined {
    const e = this.map.get(key)
    if (e) this.hits++
    else this.misses++
    return e
  }

  get size(): {entries: number; bytes: number} {
    return {entries: this.map.size, bytes: this.bytes}
  }
}
