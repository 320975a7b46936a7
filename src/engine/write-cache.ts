/**
 * Recent entries kept in memory so that tailing readers (the common case: a consumer a few entries behind
 * the writer) never touch the disk. A hit is only trusted after the caller checked the index still holds
 * the entry with the same digest (a deleted ledger's entries, or an entry written again, just age out).
 *
 * The payload bytes live in a ring of the cache's size, made of 4 MiB slabs allocated as data first reaches
 * them (a small cluster does not pay for an empty cache), and what locates them in typed arrays, one set per
 * run: a run is one durable group's entries of one ledger, ids ascending
 * (what one add request carries). Runs are laid out in the ring in insertion order, so evicting FIFO is
 * freeing the bytes just ahead of the write position. Nothing per entry stays on the JS heap: keeping the
 * entries' own objects (request records, payload views, bigints) alive for the cache's lifetime made them
 * survive young-generation collections, and scavenges plus mark-compacts took ~13 % of a busy bookie's main
 * thread with pauses of up to 12 ms (docs/BENCHMARKS.md). A lookup scans the ledger's runs newest first (the
 * newest copy of an entry written twice wins) and binary-searches the run that covers the id; a hit is a
 * copy (the ring is overwritten later).
 */
export interface CachedEntry {
  lac: bigint
  digest: number
  payload: Buffer
}

/** The ring is allocated in slabs of this size (the largest entry is 4 MiB: it still fits in one). */
const SLAB_BYTES = 4 * 1024 * 1024

interface Run {
  ledgerId: bigint
  /** Ascending entry ids. */
  ids: Float64Array
  lacs: Float64Array
  digests: Uint32Array
  /** Payload offsets in the ring (the run's bytes are contiguous: offs[0] .. end). */
  offs: Uint32Array
  lens: Uint32Array
  start: number
  end: number
  /** Set when evicted: its bytes in the ring may be overwritten from then on. */
  evicted?: true
}

export class WriteCache {
  /** The ring, in slabs allocated as the write position first reaches them (memory follows the data). */
  private readonly slabs: Buffer[] = []
  private readonly slabBytes: number
  private readonly capacity: number
  /** Where the next run's bytes go (a position in the ring). */
  private pos = 0
  /** Per ledger, its runs in insertion order. */
  private readonly ledgers = new Map<bigint, Run[]>()
  /** Every run, oldest first (an array with a moving head: an O(1) queue). */
  private order: Array<Run | undefined> = []
  private head = 0
  private bytes = 0
  private count = 0
  hits = 0
  misses = 0

  /** `slabBytes` is for tests (several slabs without a large cache). */
  constructor(private readonly maxBytes: number, slabBytes = SLAB_BYTES) {
    this.slabBytes = Math.max(1, Math.min(maxBytes, slabBytes))
    this.capacity = Math.max(this.slabBytes, Math.floor(maxBytes / this.slabBytes) * this.slabBytes)
  }

  put(ledgerId: bigint, entryId: number, e: CachedEntry): void {
    this.putRun(ledgerId, [entryId], [e])
  }

  /** Entries of one ledger whose ids ascend strictly (the caller checks). The payloads are copied. */
  putRun(ledgerId: bigint, ids: readonly number[], entries: readonly CachedEntry[]): void {
    const n = ids.length
    if (this.maxBytes <= 0 || n === 0) return
    let total = 0
    for (const e of entries) total += e.payload.length
    if (total > this.slabBytes) {
      // Larger than a slab: keep what fits of it, one entry at a time.
      if (n > 1) for (let i = 0; i < n; i++) this.putRun(ledgerId, [ids[i]!], [entries[i]!])
      return
    }
    // A run never straddles two slabs; the ring wraps after the last one.
    const inSlab = this.pos % this.slabBytes
    if (inSlab + total > this.slabBytes) {
      const next = this.pos + this.slabBytes - inSlab
      this.evictAhead(next) // what lies in the skipped end of the slab is the oldest: gone first
      this.pos = next
    }
    if (this.pos + total > this.capacity) {
      this.evictAhead(Infinity) // the tail is too short: what is left there is the oldest; wrap
      this.pos = 0
    }
    this.evictAhead(this.pos + total)
    const k = Math.floor(this.pos / this.slabBytes)
    const slab = (this.slabs[k] ??= Buffer.allocUnsafeSlow(this.slabBytes))
    const base = k * this.slabBytes
    const mem = new ArrayBuffer(n * 28) // one allocation for the run's five columns
    const run: Run = {
      ledgerId, ids: new Float64Array(mem, 0, n), lacs: new Float64Array(mem, 8 * n, n), digests: new Uint32Array(mem, 16 * n, n),
      offs: new Uint32Array(mem, 20 * n, n), lens: new Uint32Array(mem, 24 * n, n), start: this.pos, end: this.pos + total,
    }
    run.ids.set(ids)
    let off = this.pos
    for (let i = 0; i < n; i++) {
      const e = entries[i]!
      run.lacs[i] = Number(e.lac)
      run.digests[i] = e.digest
      run.offs[i] = off
      run.lens[i] = e.payload.length
      slab.set(e.payload, off - base)
      off += e.payload.length
    }
    this.pos = off
    let runs = this.ledgers.get(ledgerId)
    if (!runs) this.ledgers.set(ledgerId, (runs = []))
    runs.push(run)
    this.order.push(run)
    this.bytes += total
    this.count += n
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Evict the oldest runs while they start in [pos, limit): the bytes about to be written. Runs lie in the
   * ring in insertion order from the write position on (the oldest just ahead of it, wrapping at the end),
   * so the queue's head is always the next one in the way; a head behind the write position means the space
   * ahead is free.
   */
  private evictAhead(limit: number): void {
    while (this.head < this.order.length) {
      const run = this.order[this.head]!
      if (run.start < this.pos || run.start >= limit) break
      this.order[this.head++] = undefined
      run.evicted = true
      const runs = this.ledgers.get(run.ledgerId)!
      runs.splice(runs.indexOf(run), 1) // the oldest run of its ledger: index 0 unless ledgers interleave
      if (runs.length === 0) this.ledgers.delete(run.ledgerId)
      this.bytes -= run.end - run.start
      this.count -= run.ids.length
    }
  }

  /**
   * The run of the last hit: reads go through a range in order, so the next id is usually in it, and a
   * reader catching up from far behind would otherwise scan every newer run of the ledger for each entry.
   * A hit there may be an older copy of an entry written twice; callers check the digest against the index
   * (see the file comment), and the same digest is the same bytes.
   */
  private lastHit: Run | undefined

  /**
   * The cached entry, its payload a copy; with `view`, the payload is a view of the ring instead, valid only
   * until the next putRun (which may write over it): for a caller that copies or encodes it at once.
   */
  get(ledgerId: bigint, entryId: number, view = false): CachedEntry | undefined {
    const h = this.lastHit
    if (h !== undefined && h.ledgerId === ledgerId && h.evicted !== true) {
      const i = indexIn(h, entryId)
      if (i >= 0) return this.hit(h, i, view)
    }
    const runs = this.ledgers.get(ledgerId)
    if (runs) {
      for (let k = runs.length - 1; k >= 0; k--) {
        const run = runs[k]!
        const i = indexIn(run, entryId)
        if (i >= 0) {
          this.lastHit = run
          return this.hit(run, i, view)
        }
      }
    }
    this.misses++
    return undefined
  }

  private hit(run: Run, i: number, view: boolean): CachedEntry {
    this.hits++
    const off = run.offs[i]!
    const at = off % this.slabBytes
    const slab = this.slabs[(off - at) / this.slabBytes]!
    const payload = slab.subarray(at, at + run.lens[i]!)
    return {lac: BigInt(run.lacs[i]!), digest: run.digests[i]!, payload: view ? payload : Buffer.from(payload)}
  }

  /** Whether `b` is a view of the ring (what get(..., true) hands out). */
  owns(b: Uint8Array): boolean {
    const ab = b.buffer
    return ab.byteLength === this.slabBytes && this.slabs.some(s => s.buffer === ab)
  }

  get size(): {entries: number; bytes: number} {
    return {entries: this.count, bytes: this.bytes}
  }
}

/** Where `entryId` is in the run's ids (binary search), or -1. */
function indexIn(run: Run, entryId: number): number {
  const ids = run.ids
  if (entryId < ids[0]! || entryId > ids[ids.length - 1]!) return -1
  let lo = 0
  let hi = ids.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const v = ids[mid]!
    if (v < entryId) lo = mid + 1
    else if (v > entryId) hi = mid - 1
    else return mid
  }
  return -1
}
