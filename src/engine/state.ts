/**
 * The engine's in-memory state: the ledger indexes, the tombstones of deleted ledgers and the per-segment
 * byte accounting that drives compaction. Both the live path (a record became durable) and restart replay
 * (a record was read back) change it through `apply`, so the two can never disagree.
 */
import {RecordType, SEGMENT_HEADER_BYTES, type RecordHeader} from './format.js'
import {LedgerIndex, type EntryLocation} from './ledger-index.js'

export interface SegmentStat {
  /** Bytes written (the end of the last record); grows while the segment is active. */
  end: number
  /** Bytes of records still referenced by the index. */
  live: number
  sealed: boolean
}

export class EngineState {
  readonly ledgers = new Map<bigint, LedgerIndex>()
  readonly tombstones = new Set<bigint>()
  readonly segments = new Map<number, SegmentStat>()
  /**
   * Number for the next checkpoint piece file (checkpoint.ts): above every piece the loaded checkpoint names
   * and every piece written since, so a name a durable manifest may use is never written again.
   */
  nextPiece = 1

  segment(id: number): SegmentStat {
    let s = this.segments.get(id)
    if (!s) {
      s = {end: SEGMENT_HEADER_BYTES, live: 0, sealed: false}
      this.segments.set(id, s)
    }
    return s
  }

  /** Apply one durable record at `loc`. Returns false when it no longer matters (its ledger was deleted). */
  apply(h: Pick<RecordHeader, 'type' | 'ledgerId' | 'entryId' | 'lac' | 'digest' | 'payloadLen'>, loc: Readonly<Omit<EntryLocation, 'digest'>>): boolean {
    const seg = this.segment(loc.segmentId)
    if (loc.offset + loc.length > seg.end) seg.end = loc.offset + loc.length
    switch (h.type) {
      case RecordType.ENTRY: {
        if (this.tombstones.has(h.ledgerId)) return false
        const l = this.ledgerFor(h.ledgerId)
        const prev = l.put(Number(h.entryId), loc.segmentId, loc.offset, loc.length, h.digest)
        if (prev) this.segment(prev.segmentId).live -= prev.length
        else l.payloadBytes += h.payloadLen
        seg.live += loc.length
        const lac = Number(h.lac)
        if (lac > l.lac) l.lac = lac
        return true
      }
      case RecordType.FENCE:
        if (this.tombstones.has(h.ledgerId)) return false
        this.ledgerFor(h.ledgerId).fenced = true
        return true
      case RecordType.DELETE:
        this.dropLedger(h.ledgerId)
        return true
      default:
        return false
    }
  }

  ledgerFor(id: bigint): LedgerIndex {
    let l = this.ledgers.get(id)
    if (!l) {
      l = new LedgerIndex()
      this.ledgers.set(id, l)
    }
    return l
  }

  dropLedger(id: bigint): void {
    this.tombstones.add(id)
    const l = this.ledgers.get(id)
    if (!l) return
    l.forEach((_e, loc) => {
      const s = this.segments.get(loc.segmentId)
      if (s) s.live -= loc.length
    })
    this.ledgers.delete(id)
  }

  /** Recompute every segment's live bytes from the indexes (after loading a checkpoint). */
  recountLive(): void {
    for (const s of this.segments.values()) s.live = 0
    for (const l of this.ledgers.values()) {
      for (const {seg, len} of l.columns()) {
        for (let i = 0; i < seg.length; i++) this.segment(seg[i]!).live += len[i]!
      }
    }
  }
}
