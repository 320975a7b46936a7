/**
 * Compaction (garbage collection of deleted ledgers' space). A sealed segment whose live fraction is
 * below the threshold has its still-referenced records copied forward through the ordinary journal (so
 * copies are group-committed with the adds that go on meanwhile), the index is repointed when each copy
 * is durable (unless the entry moved or was deleted meanwhile), a checkpoint is written, and only then is
 * the old file removed. FENCE and DELETE records that still matter are copied too, so that a full replay
 * without any checkpoint still rebuilds the same state. A segment holding a corrupt region is left alone
 * (its damaged entries can't be copied; the operator decides).
 */
import {closeSync, fsyncSync, openSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {RecordFlag, RecordType, SEGMENT_HEADER_BYTES, segmentFileName} from './format.js'
import type {Journal, JournalRecord} from './journal.js'
import {scanSegment} from './scan.js'
import type {EngineState} from './state.js'

export interface CompactionResult {
  segmentsRemoved: number[]
  bytesCopied: number
  bytesFreed: number
  skipped: Array<{segmentId: number; reason: string}>
}

export interface CompactorDeps {
  dir: string
  state: EngineState
  journal: Journal
  threshold: number
  checkpoint: () => Promise<void>
  dropReader: (segmentId: number) => Promise<void>
}

/** Copies in flight at most (bytes) before the compactor waits for them: bounds its memory. */
const MAX_COPY_IN_FLIGHT = 8 * 1024 * 1024

export class Compactor {
  private running: Promise<CompactionResult> | undefined
  private stopped = false

  constructor(private readonly d: CompactorDeps) {}

  run(threshold = this.d.threshold): Promise<CompactionResult> {
    this.running ??= this.compactAll(threshold).finally(() => {
      this.running = undefined
    })
    return this.running
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.running?.catch(() => undefined)
  }

  private candidates(threshold: number): number[] {
    const out: number[] = []
    for (const [id, s] of this.d.state.segments) {
      const data = s.end - SEGMENT_HEADER_BYTES
      if (s.sealed && data > 0 && s.live / data < threshold) out.push(id)
    }
    return out.sort((a, b) => a - b)
  }

  private async compactAll(threshold: number): Promise<CompactionResult> {
    const result: CompactionResult = {segmentsRemoved: [], bytesCopied: 0, bytesFreed: 0, skipped: []}
    const done: number[] = []
    for (const id of this.candidates(threshold)) {
      if (this.stopped) break
      const r = await this.copyLive(id)
      if (r.skipped) {
        result.skipped.push({segmentId: id, reason: r.skipped})
        continue
      }
      result.bytesCopied += r.copied
      done.push(id)
    }
    if (done.length === 0) return result
    // Forget the old segments first (the index no longer points into them), so that the checkpoint written
    // next doesn't name files that are about to go; replay would also cope without the checkpoint (every
    // record that matters was copied forward), it is just faster with it.
    for (const id of done) {
      result.bytesFreed += this.d.state.segments.get(id)?.end ?? 0
      this.d.state.segments.delete(id)
    }
    await this.d.checkpoint()
    for (const id of done) {
      await this.d.dropReader(id)
      unlinkSync(join(this.d.dir, 'segments', segmentFileName(id)))
      result.segmentsRemoved.push(id)
    }
    const dfd = openSync(join(this.d.dir, 'segments'), 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
    return result
  }

  private async copyLive(segmentId: number): Promise<{copied: number; skipped?: string}> {
    const {state, journal} = this.d
    const file = join(this.d.dir, 'segments', segmentFileName(segmentId))
    let inflight: Promise<unknown>[] = []
    let inflightBytes = 0
    let copied = 0
    let n = 0
    for (const item of scanSegment(file)) {
      if (item.kind === 'bad') return {copied, skipped: `corrupt region at ${file}:${item.offset} (${item.reason})`}
      if (item.kind !== 'record') continue
      const h = item.header
      let wanted = false
      if (h.type === RecordType.ENTRY) {
        const loc = state.ledgers.get(h.ledgerId)?.get(Number(h.entryId))
        wanted = loc !== undefined && loc.segmentId === segmentId && loc.offset === item.offset
      } else if (h.type === RecordType.FENCE) {
        wanted = state.ledgers.get(h.ledgerId)?.fenced === true
      } else if (h.type === RecordType.DELETE) {
        wanted = state.tombstones.has(h.ledgerId)
      }
      if (!wanted) continue
      const from = item.offset
      const rec: JournalRecord = {
        type: h.type, flags: h.flags | RecordFlag.COMPACTED, digest: h.digest, ledgerId: h.ledgerId, entryId: h.entryId,
        lac: h.lac, payloadLen: h.payloadLen, stored: item.stored,
      }
      inflight.push(journal.append(rec, placed => {
        if (h.type !== RecordType.ENTRY) return
        const cur = state.ledgers.get(h.ledgerId)?.get(Number(h.entryId))
        if (cur && cur.segmentId === segmentId && cur.offset === from) state.apply(h, placed)
      }))
      inflightBytes += item.length
      copied += item.length
      if (inflightBytes >= MAX_COPY_IN_FLIGHT || ++n % 256 === 0) {
        await Promise.all(inflight)
        inflight = []
        inflightBytes = 0
      }
    }
    await Promise.all(inflight)
    return {copied}
  }
}
