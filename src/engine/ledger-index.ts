/**
 * The in-memory index of one ledger on one bookie: entryId -> (segment, offset, record length), kept in
 * parallel typed arrays sorted by entry id (24 bytes an entry, no per-entry objects, so millions of entries
 * cost tens of MB and a checkpoint is a handful of memcpys). Entries almost always arrive in increasing
 * order (appends go to the end); re-replication and striping gaps are handled by binary search + insert.
 */
export interface EntryLocation {
  segmentId: number
  offset: number
  length: number
  /** The entry's end-to-end digest, kept so that a repeated add can be answered without a disk read. */
  digest: number
}

export interface IndexColumns {
  ids: Float64Array
  seg: Uint32Array
  off: Uint32Array
  len: Uint32Array
  dig: Uint32Array
}

export class LedgerIndex {
  fenced = false
  /** Highest LAC seen on any entry of this ledger (-1 = none). */
  lac = -1
  /** Payload bytes (uncompressed) of the entries held. */
  payloadBytes = 0
  private ids: Float64Array
  private seg: Uint32Array
  private off: Uint32Array
  private len: Uint32Array
  private dig: Uint32Array
  private n = 0
  /**
   * A checkpoint is writing views of [0, n) of the current arrays (snapshot()): until release(), a change
   * inside that range (a replaced location, an insert before the end) first copies the arrays, so the views
   * keep the state of the snapshot's moment. Appends write past it and need no copy.
   */
  private shared = false

  constructor(capacity = 16) {
    this.ids = new Float64Array(capacity)
    this.seg = new Uint32Array(capacity)
    this.off = new Uint32Array(capacity)
    this.len = new Uint32Array(capacity)
    this.dig = new Uint32Array(capacity)
  }

  get size(): number {
    return this.n
  }

  get lastEntryId(): number {
    return this.n === 0 ? -1 : this.ids[this.n - 1]!
  }

  get firstEntryId(): number {
    return this.n === 0 ? -1 : this.ids[0]!
  }

  /** Index of entryId, or -(insertion point) - 1 when absent. */
  private find(entryId: number): number {
    const n = this.n
    if (n > 0 && this.ids[n - 1] === entryId) return n - 1
    if (n === 0 || this.ids[n - 1]! < entryId) return -n - 1
    let lo = 0
    let hi = n - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = this.ids[mid]!
      if (v < entryId) lo = mid + 1
      else if (v > entryId) hi = mid - 1
      else return mid
    }
    return -lo - 1
  }

  get(entryId: number): EntryLocation | undefined {
    const i = this.find(entryId)
    return i < 0 ? undefined : this.at(i)
  }

  private at(i: number): EntryLocation {
    return {segmentId: this.seg[i]!, offset: this.off[i]!, length: this.len[i]!, digest: this.dig[i]!}
  }

  has(entryId: number): boolean {
    return this.find(entryId) >= 0
  }

  /** The digest of entryId when held (no allocation: the add path asks this for every entry). */
  digestOf(entryId: number): number | undefined {
    const i = this.find(entryId)
    return i < 0 ? undefined : this.dig[i]
  }

  /** Set the location of entryId (no location object: one call per durable entry); returns the previous location when it replaced one. */
  put(entryId: number, segmentId: number, offset: number, length: number, digest: number): EntryLocation | undefined {
    let i = this.find(entryId)
    if (i >= 0) {
      const prev = this.at(i)
      if (this.shared) this.copy(this.ids.length)
      this.set(i, entryId, segmentId, offset, length, digest)
      return prev
    }
    i = -i - 1
    if (this.n === this.ids.length) this.copy(this.ids.length * 2)
    else if (this.shared && i < this.n) this.copy(this.ids.length)
    if (i < this.n) {
      this.ids.copyWithin(i + 1, i, this.n)
      this.seg.copyWithin(i + 1, i, this.n)
      this.off.copyWithin(i + 1, i, this.n)
      this.len.copyWithin(i + 1, i, this.n)
      this.dig.copyWithin(i + 1, i, this.n)
    }
    this.set(i, entryId, segmentId, offset, length, digest)
    this.n++
    return undefined
  }

  private set(i: number, entryId: number, segmentId: number, offset: number, length: number, digest: number): void {
    this.ids[i] = entryId
    this.seg[i] = segmentId
    this.off[i] = offset
    this.len[i] = length
    this.dig[i] = digest
  }

  /** Move to fresh arrays of `cap` slots (to grow, or to leave a snapshot's arrays alone). */
  private copy(cap: number): void {
    this.shared = false
    const grown = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap)
      b.set(a)
      return b
    }
    this.ids = grown(this.ids, n => new Float64Array(n))
    this.seg = grown(this.seg, n => new Uint32Array(n))
    this.off = grown(this.off, n => new Uint32Array(n))
    this.len = grown(this.len, n => new Uint32Array(n))
    this.dig = grown(this.dig, n => new Uint32Array(n))
  }

  /** Entry ids in [from, to] (inclusive), ascending. */
  idsInRange(from: number, to: number, limit: number): number[] {
    let i = this.find(from)
    if (i < 0) i = -i - 1
    const out: number[] = []
    while (i < this.n && this.ids[i]! <= to && out.length < limit) out.push(this.ids[i++]!)
    return out
  }

  /** Visit every entry (for accounting and compaction). */
  forEach(fn: (entryId: number, loc: EntryLocation) => void): void {
    for (let i = 0; i < this.n; i++) fn(this.ids[i]!, this.at(i))
  }

  /** Raw arrays (views, not copies) for reading now, in this turn. */
  columns(): IndexColumns {
    const n = this.n
    return {ids: this.ids.subarray(0, n), seg: this.seg.subarray(0, n), off: this.off.subarray(0, n), len: this.len.subarray(0, n), dig: this.dig.subarray(0, n)}
  }

  /**
   * Views of the arrays as they are now that stay unchanged until release() (copy on write), for a
   * checkpoint written over several turns without copying the index on the main thread.
   */
  snapshot(): IndexColumns {
    this.shared = true
    return this.columns()
  }

  release(): void {
    this.shared = false
  }

  static fromColumns(c: IndexColumns): LedgerIndex {
    const x = new LedgerIndex(Math.max(16, c.ids.length))
    x.ids.set(c.ids)
    x.seg.set(c.seg)
    x.off.set(c.off)
    x.len.set(c.len)
    x.dig.set(c.dig)
    x.n = c.ids.length
    return x
  }
}
