/**
 * The in-memory index of one ledger on one bookie: entryId -> (segment, offset, record length), kept in
 * parallel typed arrays sorted by entry id (24 bytes an entry, no per-entry objects, so millions of entries
 * cost tens of MB and a checkpoint writes them as they are). Entries almost always arrive in increasing
 * order (appends go to the end); re-replication and striping gaps are handled by binary search + insert.
 *
 * The arrays come in chunks of at most `chunkEntries` (64 Ki) entries: growing one array by doubling
 * copied the whole index on the main thread (17.6 ms at 1 Mi entries, 25.6 ms at 2 Mi: benchmarks/index-pauses.ts
 * on the commit before the chunks, docs/BENCHMARKS.md), a pause
 * every add waited for; a chunk fills, and the next one is allocated (1.5 MB). An insert into a full chunk
 * splits it in two. A checkpoint's snapshot (copy on write) copies only a chunk that changes under it.
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

/** One chunk: entries [0, n) of the ledger's part it holds, ascending. */
interface Chunk {
  ids: Float64Array
  seg: Uint32Array
  off: Uint32Array
  len: Uint32Array
  dig: Uint32Array
  n: number
  /**
   * A checkpoint is writing views of [0, snap) (pieces()): until release(), a write below `snap` first
   * moves the chunk to arrays of its own, so the views keep the state of the snapshot's moment. Appends
   * write at or past it and need no copy.
   */
  snap: number
  /** Moves with every change of this chunk's entries (a chunk made as a copy starts again at 0). */
  version: number
  /** The checkpoint piece file that held this chunk when it was at `version` (checkpoint.ts), if any. */
  saved: (SavedPiece & {version: number}) | undefined
}

/** A piece file (checkpoint.ts) and the CRC32C of its bytes. */
export interface SavedPiece {
  id: number
  crc: number
}

/** One chunk of a ledger's index as a checkpoint sees it (LedgerIndex.pieces). */
export interface ChunkPiece {
  columns: IndexColumns
  /** The piece file that already holds exactly these entries: nothing to write. */
  saved: SavedPiece | undefined
  /** Once this chunk is written to a piece file: remember it (ignored if the chunk changed since). */
  keep(piece: SavedPiece): void
}

function newChunk(capacity: number): Chunk {
  return {ids: new Float64Array(capacity), seg: new Uint32Array(capacity), off: new Uint32Array(capacity), len: new Uint32Array(capacity), dig: new Uint32Array(capacity), n: 0, snap: 0, version: 0, saved: undefined}
}

/** The columns, in the order a checkpoint holds them. */
export const INDEX_COLUMNS = ['ids', 'seg', 'off', 'len', 'dig'] as const

/** A new chunk of `capacity` slots holding src's entries [from, to) (to grow, split, copy on write, load). */
function chunkOf(src: IndexColumns, from: number, to: number, capacity: number): Chunk {
  const d = newChunk(capacity)
  for (const k of INDEX_COLUMNS) d[k].set(src[k].subarray(from, to))
  d.n = to - from
  return d
}

/** A copy of the chunk's entries in fresh arrays of `capacity` slots. */
function copyChunk(c: Chunk, capacity: number): Chunk {
  return chunkOf(c, 0, c.n, capacity)
}

function viewsOf(c: Chunk): IndexColumns {
  const n = c.n
  return {ids: c.ids.subarray(0, n), seg: c.seg.subarray(0, n), off: c.off.subarray(0, n), len: c.len.subarray(0, n), dig: c.dig.subarray(0, n)}
}

/** Positions are encoded in one number: chunk index * POS + index in the chunk. */
const POS = 2 ** 20

export class LedgerIndex {
  fenced = false
  /** Highest LAC seen on any entry of this ledger (-1 = none). */
  lac = -1
  /** Payload bytes (uncompressed) of the entries held. */
  payloadBytes = 0
  /** Never empty ones: every chunk holds at least one entry. */
  private chunks: Chunk[] = []
  private n = 0

  /** @param chunkEntries entries per chunk at most (tests use small ones to exercise splits). */
  constructor(private readonly chunkEntries = 65536) {
    if (!Number.isInteger(chunkEntries) || chunkEntries < 2 || chunkEntries >= POS) throw new RangeError(`chunkEntries must be an integer in 2..${POS - 1}`)
  }

  get size(): number {
    return this.n
  }

  get lastEntryId(): number {
    const c = this.chunks[this.chunks.length - 1]
    return c === undefined ? -1 : c.ids[c.n - 1]!
  }

  get firstEntryId(): number {
    return this.n === 0 ? -1 : this.chunks[0]!.ids[0]!
  }

  /** Position of entryId (chunk * POS + index), or -(insertion position) - 1 when absent. */
  private find(entryId: number): number {
    const cs = this.chunks
    const lastK = cs.length - 1
    if (lastK < 0) return -1
    const last = cs[lastK]!
    const lastId = last.ids[last.n - 1]!
    if (lastId === entryId) return lastK * POS + last.n - 1
    if (lastId < entryId) return -(lastK * POS + last.n) - 1
    // The chunk that holds it or would: the last one whose first id is <= entryId (else the first one).
    let k = 0
    let lo = 1
    let hi = lastK
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (cs[mid]!.ids[0]! <= entryId) {
        k = mid
        lo = mid + 1
      } else {
        hi = mid - 1
      }
    }
    const ids = cs[k]!.ids
    lo = 0
    hi = cs[k]!.n - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = ids[mid]!
      if (v < entryId) lo = mid + 1
      else if (v > entryId) hi = mid - 1
      else return k * POS + mid
    }
    return -(k * POS + lo) - 1
  }

  get(entryId: number): EntryLocation | undefined {
    const p = this.find(entryId)
    return p < 0 ? undefined : this.at(p)
  }

  private at(p: number): EntryLocation {
    const c = this.chunks[Math.floor(p / POS)]!
    const i = p % POS
    return {segmentId: c.seg[i]!, offset: c.off[i]!, length: c.len[i]!, digest: c.dig[i]!}
  }

  has(entryId: number): boolean {
    return this.find(entryId) >= 0
  }

  /** The digest of entryId when held (no allocation: the add path asks this for every entry). */
  digestOf(entryId: number): number | undefined {
    const p = this.find(entryId)
    return p < 0 ? undefined : this.chunks[Math.floor(p / POS)]!.dig[p % POS]
  }

  /** Set the location of entryId (no location object: one call per durable entry); returns the previous location when it replaced one. */
  put(entryId: number, segmentId: number, offset: number, length: number, digest: number): EntryLocation | undefined {
    let p = this.find(entryId)
    if (p >= 0) {
      const prev = this.at(p)
      const c = this.writable(Math.floor(p / POS), p % POS)
      set(c, p % POS, entryId, segmentId, offset, length, digest)
      c.version++
      return prev
    }
    p = -p - 1
    let k = Math.floor(p / POS)
    let i = p % POS
    if (this.chunks.length === 0) this.chunks.push(newChunk(Math.min(16, this.chunkEntries)))
    let c = this.chunks[k]!
    if (c.n === c.ids.length) {
      if (c.ids.length < this.chunkEntries) {
        // The first chunk starts small and doubles up to a chunk's size (a small ledger stays small).
        c = this.chunks[k] = copyChunk(c, Math.min(this.chunkEntries, c.ids.length * 2))
      } else if (i === c.n && k === this.chunks.length - 1) {
        c = newChunk(this.chunkEntries)
        this.chunks.push(c)
        k++
        i = 0
      } else {
        // Insert into a full chunk: its upper half moves to a new chunk after it (only reads of `c`; its
        // entries past `half` are no longer its own, so a snapshot's views of them stay as they were).
        const half = c.n >>> 1
        const d = chunkOf(c, half, c.n, this.chunkEntries)
        c.n = half
        c.version++
        this.chunks.splice(k + 1, 0, d)
        if (i > half) {
          c = d
          k++
          i -= half
        }
      }
    }
    c = this.writable(k, i)
    if (i < c.n) for (const name of INDEX_COLUMNS) c[name].copyWithin(i + 1, i, c.n)
    set(c, i, entryId, segmentId, offset, length, digest)
    c.version++
    c.n++
    this.n++
    return undefined
  }

  /** Chunk k, ready for writes from index i on (a copy first when a snapshot still reads that part). */
  private writable(k: number, i: number): Chunk {
    const c = this.chunks[k]!
    return i < c.snap ? (this.chunks[k] = copyChunk(c, c.ids.length)) : c
  }

  /** Entry ids in [from, to] (inclusive), ascending. */
  idsInRange(from: number, to: number, limit: number): number[] {
    let p = this.find(from)
    if (p < 0) p = -p - 1
    const out: number[] = []
    let i = p % POS
    for (let k = Math.floor(p / POS); k < this.chunks.length && out.length < limit; k++, i = 0) {
      const c = this.chunks[k]!
      for (; i < c.n && out.length < limit; i++) {
        const id = c.ids[i]!
        if (id > to) return out
        out.push(id)
      }
    }
    return out
  }

  /** Visit every entry (for accounting and compaction). */
  forEach(fn: (entryId: number, loc: EntryLocation) => void): void {
    for (const c of this.chunks) {
      for (let i = 0; i < c.n; i++) fn(c.ids[i]!, {segmentId: c.seg[i]!, offset: c.off[i]!, length: c.len[i]!, digest: c.dig[i]!})
    }
  }

  /** The arrays, chunk by chunk in entry order (views, not copies), for reading now, in this turn. */
  columns(): IndexColumns[] {
    return this.chunks.map(viewsOf)
  }

  release(): void {
    for (const c of this.chunks) c.snap = 0
  }

  /**
   * The chunks for an incremental checkpoint: a chunk a piece file already holds (nothing changed in it
   * since) is named by that piece; the others are views of the arrays that stay unchanged until release()
   * (copy on write, per chunk), so a checkpoint written over several turns never copies the index on the
   * main thread.
   */
  pieces(): ChunkPiece[] {
    return this.chunks.map(c => {
      const version = c.version
      const saved = c.saved?.version === version ? {id: c.saved.id, crc: c.saved.crc} : undefined
      if (saved === undefined) c.snap = c.n
      return {
        columns: viewsOf(c),
        saved,
        keep: (piece: SavedPiece) => { if (c.version === version) c.saved = {...piece, version} },
      }
    })
  }

  /** An index of the given chunks, in entry order, each remembered as held by its piece (a checkpoint's, read back). */
  static fromPieces(pieces: ReadonlyArray<{columns: IndexColumns; saved: SavedPiece}>, chunkEntries?: number): LedgerIndex {
    const x = new LedgerIndex(chunkEntries)
    for (const p of pieces) {
      const n = p.columns.ids.length
      if (n === 0 || n > x.chunkEntries) throw new RangeError(`a chunk of ${n} entries (1..${x.chunkEntries})`)
      const c = chunkOf(p.columns, 0, n, n)
      c.saved = {...p.saved, version: 0}
      x.chunks.push(c)
      x.n += n
    }
    return x
  }

  static fromColumns(col: IndexColumns, chunkEntries?: number): LedgerIndex {
    const x = new LedgerIndex(chunkEntries)
    const n = col.ids.length
    for (let from = 0; from < n; from += x.chunkEntries) {
      const to = Math.min(n, from + x.chunkEntries)
      x.chunks.push(chunkOf(col, from, to, Math.max(Math.min(16, x.chunkEntries), to - from)))
    }
    x.n = n
    return x
  }
}

function set(c: Chunk, i: number, entryId: number, segmentId: number, offset: number, length: number, digest: number): void {
  c.ids[i] = entryId
  c.seg[i] = segmentId
  c.off[i] = offset
  c.len[i] = length
  c.dig[i] = digest
}
