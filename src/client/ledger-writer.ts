/**
 * The single writer of a ledger (BookKeeper's WriteHandle). append() assigns the next entry id and queues the
 * entry for each bookie of its write set (its end-to-end digest is computed when it is first encoded, from
 * the frame's bytes: frames.ts DIGEST_AT_ENCODE); entries bound for the same
 * bookie travel together in one HTTP/2 request (batching), several requests per bookie may be in flight
 * (pipelining), and a bounded window of unconfirmed entries gives backpressure. An entry is confirmed once
 * Qa bookies of its write set acknowledged it, and confirmations are delivered in id order (the LAC).
 *
 * A bookie that fails (unreachable, timed out, read-only) is replaced: ensemble change from the first
 * unconfirmed entry on, as a compare-and-swap on the ledger's metadata, then everything unconfirmed that
 * was bound for it is resent to the replacement. Acks from the replaced bookie for entries of the new
 * fragment no longer count (each ack is checked against the bookie the metadata names). FENCED from any
 * bookie, or a metadata CAS that finds the ledger no longer OPEN, ends the writer: recovery has begun.
 */
import {ErrorCode, LogError, asLogError, isLogError} from '../errors.js'
import type {LedgerMetadata, MetadataStore, Versioned} from '../meta/store.js'
import type {AddFrame, AddResult} from '../net/bookie-client.js'
import {SharedBatch} from '../net/add-stream.js'
import {DIGEST_AT_ENCODE} from '../net/frames.js'
import type {BookiePool} from './bookies.js'
import {ensembleFor, writeSet, writeSetStart} from './quorum.js'

export interface WriterOptions {
  /** Unconfirmed entries at most (default 1024). */
  maxPendingEntries?: number
  /** Unconfirmed payload bytes at most (default 32 MiB). */
  maxPendingBytes?: number
  /** Entries per request at most (default 512). */
  maxBatchEntries?: number
  /** Payload bytes per request at most (default 1 MiB; keeps a session far below its memory cap). */
  maxBatchBytes?: number
  /**
   * Requests in flight per bookie at most (default: as many as the window fills with full batches, at least
   * 2; 2 with the defaults). While they are out, the next batch for that bookie grows, so under load a
   * writer sends fewer, larger requests by itself, without a timer (Nagle-like); a lone append still goes at
   * once. Measured with benchmarks/log.ts's tail step at 44,000 entries/s (3 bookies): 4 requests -> 2 took
   * the bookies from 96-106 % to 90-100 % of a core and ack -> received p99 from 7.8 / 26.1 / 12.8 to
   * 5.3 / 10.0 / 5.5 ms; 1 loses a third of the throughput at 1024 in flight (docs/BENCHMARKS.md).
   */
  maxRequestsPerBookie?: number
  /** Give up on the ledger after this many ensemble changes (default 64). */
  maxEnsembleChanges?: number
  /**
   * Send the LAC explicitly (BookKeeper's WRITE_LAC) this long after it advanced beyond what the entries
   * sent so far carried, if no entry was appended meanwhile (default 2 ms; 0 = never). Without it a tailing
   * reader sees an entry only once a later entry carries its confirmation, which never happens for the last
   * entry before a pause; while appends go on, they carry it.
   */
  explicitLacMs?: number
  /**
   * Hint the LAC to a bookie that has not answered for this long while at its in-flight limit (default 1 ms;
   * 0 = never): a LAC_HINTS message on its add stream (docs/PROTOCOL.md "LAC hints"), at most one per this
   * interval per bookie, and only for ledgers whose every bookie holds every entry (E = Qw, the ledgers
   * followers stream). The LAC otherwise reaches a bookie with the next batch it gets, which waits for one of
   * its batches in flight to be answered: the slowest bookie of the write quorum, often the one serving the
   * followers (its tail streams are extra work), heard of confirmations last, and its followers with it.
   * Measured with benchmarks/log.ts's tail step at 78,000 entries/s: in the worst 1 % of ack -> received,
   * the follower's bookie got its next batch 4.0 ms after the acknowledgement (the other two 1.7 ms), with
   * every entry concerned already sent to it ~5 ms before (docs/BENCHMARKS.md, ninth session).
   */
  lacHintMs?: number
}

/** An unconfirmed entry: the add as it travels (AddFrame's fields) and the writer's bookkeeping, one object. */
interface PendingAdd extends AddFrame {
  /** Bytes of the entry (prefix and payload). */
  size: number
  /** Ensemble positions (bits) whose current bookie acknowledged the entry; `acks` counts them. */
  acked: number
  acks: number
  /** Ensemble positions (bits) whose outbox holds the entry now (an entry is queued once per bookie). */
  queued: number
  resolve: (id: bigint) => void
  reject: (err: Error) => void
}

/** An append waiting for room in the window. */
interface Waiting {
  prefix: Buffer | undefined
  payload: Buffer
  /** Bytes of the entry (prefix and payload). */
  size: number
  resolve: (id: bigint) => void
  reject: (err: Error) => void
}

/** Ensembles are at most this large: acks and queues are tracked as bits of a 32-bit integer per entry. */
export const MAX_ENSEMBLE_SIZE = 32

/** Codes that mean "this bookie can't take writes now": replace it. */
const REPLACE: ReadonlySet<string> = new Set([ErrorCode.BOOKIE_UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.READ_ONLY, ErrorCode.IO, ErrorCode.CLOSED, ErrorCode.INTERNAL])

export class LedgerWriter {
  readonly ledgerId: bigint
  private meta: Versioned<LedgerMetadata>
  private readonly store: MetadataStore
  private readonly pool: BookiePool
  private readonly o: Required<WriterOptions>
  private lastPushed = -1n
  private lac = -1n
  private lengthBytes = 0
  private pending: PendingAdd[] = []
  private pendingBytes = 0
  /** Per ensemble position: entries waiting to be sent to its bookie. */
  private readonly outbox = new Map<number, PendingAdd[]>()
  private readonly inflight = new Map<number, number>()
  private readonly paused = new Set<number>()
  private flushScheduled = false
  private changes: Promise<void> = Promise.resolve()
  private ensembleChanges = 0
  private failed: LogError | undefined
  private closed: Promise<{lastEntryId: bigint; length: bigint}> | undefined
  /** Appends waiting for room in the window, first come first served; [waitingHead, length) are waiting. */
  private waiting: Array<Waiting | undefined> = []
  private waitingHead = 0
  private drainWaiters: Array<() => void> = []
  /** Highest LAC the bookies were told, piggybacked on an entry or sent explicitly. */
  private lacCarried = -1n
  private lacTimer: NodeJS.Timeout | undefined
  /** lastPushed when the explicit-LAC timer was armed. */
  private pushedAtArm = -1n
  /** Per ensemble position: the highest LAC its bookie was told (carried by a batch sent to it, or hinted). */
  private readonly told = new Map<number, bigint>()
  /**
   * Per ensemble position at its in-flight limit: since when (performance.now()), or since its last LAC hint
   * if that came later (so that hints to it are lacHintMs apart).
   */
  private readonly fullSince = new Map<number, number>()

  constructor(meta: Versioned<LedgerMetadata>, store: MetadataStore, pool: BookiePool, opts: WriterOptions = {}) {
    if (meta.value.ensembleSize > MAX_ENSEMBLE_SIZE) {
      throw new LogError(ErrorCode.BAD_INPUT, `ledger ${meta.value.ledgerId} has an ensemble of ${meta.value.ensembleSize}; a writer handles at most ${MAX_ENSEMBLE_SIZE}`)
    }
    this.meta = meta
    this.ledgerId = meta.value.ledgerId
    this.store = store
    this.pool = pool
    const maxPendingEntries = opts.maxPendingEntries ?? 1024
    const maxBatchEntries = opts.maxBatchEntries ?? 512
    this.o = {
      maxPendingEntries,
      maxPendingBytes: opts.maxPendingBytes ?? 32 * 1024 * 1024,
      maxBatchEntries,
      maxBatchBytes: opts.maxBatchBytes ?? 1024 * 1024,
      maxRequestsPerBookie: opts.maxRequestsPerBookie ?? Math.max(2, Math.ceil(maxPendingEntries / maxBatchEntries)),
      maxEnsembleChanges: opts.maxEnsembleChanges ?? 64,
      explicitLacMs: opts.explicitLacMs ?? 2,
      lacHintMs: opts.lacHintMs ?? 1,
    }
  }

  get metadata(): LedgerMetadata {
    return this.meta.value
  }

  /** Highest entry id confirmed by Qa bookies, with every lower one. */
  get lastAddConfirmed(): bigint {
    return this.lac
  }

  get lastAddPushed(): bigint {
    return this.lastPushed
  }

  /**
   * Append one entry; resolves with its id once Qa bookies have it durably (and every lower id too). The
   * bytes are sent from the caller's buffer (no copy): leave it unchanged until the promise settles.
   */
  append(data: Buffer | Uint8Array | string): Promise<bigint> {
    const payload = typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    return this.appendParts(undefined, payload)
  }

  /**
   * Append one entry given in two parts, `prefix` then `payload` (the entry is the two together, as readers
   * see it): the log layer's header goes in front of the caller's bytes without copying them.
   */
  appendParts(prefix: Buffer | undefined, payload: Buffer): Promise<bigint> {
    if (this.closed) return Promise.reject(new LogError(ErrorCode.LEDGER_CLOSED, `ledger ${this.ledgerId} is closed`))
    if (this.failed) return Promise.reject(this.failed)
    // Admission is first come, first served: ids follow the order of append() calls even when callers
    // wait for room in the window (a log layer stamps per-entry headers in call order). With room and
    // nobody waiting, the id is assigned at once, in this call; otherwise the append waits in a queue,
    // and every append that fits when confirmations make room is admitted in that same turn (one request).
    return new Promise<bigint>((resolve, reject) => {
      const size = payload.length + (prefix?.length ?? 0)
      if (this.waitingHead < this.waiting.length || !this.hasSpace(size)) this.waiting.push({prefix, payload, size, resolve, reject})
      else this.push(prefix, payload, size, resolve, reject)
    })
  }

  /** Assign the next id and queue the entry for its write set; `resolve` once confirmed. */
  private push(prefix: Buffer | undefined, payload: Buffer, size: number, resolve: (id: bigint) => void, reject: (err: Error) => void): void {
    const entryId = ++this.lastPushed
    const lac = this.lac
    if (lac > this.lacCarried) this.lacCarried = lac
    const compress = this.meta.value.compression === 'lz4'
    // The digest is computed by the first encode, from the frame's own bytes (frames.ts DIGEST_AT_ENCODE).
    const p: PendingAdd = {ledgerId: this.ledgerId, entryId, lac, payload, digest: DIGEST_AT_ENCODE, compress, size, acked: 0, acks: 0, queued: 0, resolve, reject}
    if (prefix !== undefined) p.prefix = prefix
    this.pending.push(p)
    this.pendingBytes += size
    const {ensembleSize: e, writeQuorum: qw} = this.meta.value
    const first = writeSetStart(entryId, e) // writeSet() without its array: this runs for every entry
    for (let i = 0; i < qw; i++) this.queue((first + i) % e, p)
    this.scheduleFlush()
  }

  private hasSpace(bytes: number): boolean {
    return this.pending.length < this.o.maxPendingEntries && (this.pending.length === 0 || this.pendingBytes + bytes <= this.o.maxPendingBytes)
  }

  private queue(pos: number, p: PendingAdd): void {
    const bit = 1 << pos
    if ((p.queued & bit) !== 0) return
    p.queued |= bit
    let q = this.outbox.get(pos)
    if (!q) this.outbox.set(pos, (q = []))
    q.push(p)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // A microtask: appends made in the same turn (a pipelining caller, or callers woken by the same
    // confirmations) join one request, and it leaves before the next I/O callback runs.
    queueMicrotask(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  private flush(): void {
    if (this.failed) return
    // A batch equal to one formed for another bookie in this flush (the usual case: every bookie of the
    // write set gets the same entries) is encoded once for all of them (SharedBatch).
    const formed: Array<{batch: PendingAdd[]; shared: SharedBatch}> = []
    for (const [pos, q] of this.outbox) {
      const bit = 1 << pos
      let taken = 0
      while (taken < q.length && !this.paused.has(pos) && (this.inflight.get(pos) ?? 0) < this.o.maxRequestsPerBookie) {
        const batch: PendingAdd[] = []
        let bytes = 0
        while (taken < q.length) {
          const p = q[taken]!
          if (batch.length > 0 && (batch.length >= this.o.maxBatchEntries || bytes + p.size > this.o.maxBatchBytes)) break
          batch.push(p)
          bytes += p.size
          p.queued &= ~bit
          taken++
        }
        let shared = formed.find(f => sameBatch(f.batch, batch))?.shared
        if (shared === undefined) formed.push({batch, shared: (shared = new SharedBatch())})
        shared.senders++
        this.send(pos, batch, shared)
      }
      if (taken > 0) q.splice(0, taken)
    }
  }

  private send(pos: number, batch: PendingAdd[], shared?: SharedBatch): void {
    const bookieId = ensembleFor(this.meta.value, batch[0]!.entryId).bookies[pos]!
    const inflight = (this.inflight.get(pos) ?? 0) + 1
    this.inflight.set(pos, inflight)
    if (inflight >= this.o.maxRequestsPerBookie && !this.fullSince.has(pos)) this.fullSince.set(pos, performance.now())
    let lac = this.told.get(pos) ?? -1n
    for (const p of batch) if (p.lac > lac) lac = p.lac
    this.told.set(pos, lac)
    const done = (): void => {
      this.inflight.set(pos, (this.inflight.get(pos) ?? 1) - 1)
      this.fullSince.delete(pos)
      this.scheduleFlush()
    }
    this.pool.client(bookieId)
      .then(c => c.addEntries(batch, shared))
      .then(results => {
        done()
        this.onResults(pos, bookieId, batch, results)
      }, err => {
        done()
        this.onBookieFailure(pos, bookieId, batch, asLogError(err))
      })
  }

  private onResults(pos: number, bookieId: string, batch: PendingAdd[], results: AddResult[]): void {
    const failedEntries: PendingAdd[] = []
    let failure: LogError | undefined
    // An ack counts only from the bookie the metadata names for the entry now. With one fragment (no
    // ensemble change yet, the usual case) that is one check for the whole batch.
    const ensembles = this.meta.value.ensembles
    const sameBookie = ensembles.length === 1 ? ensembles[0]!.bookies[pos] === bookieId : undefined
    const bit = 1 << pos
    const qa = this.meta.value.ackQuorum
    let quorum = false
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!
      const r = results[i]
      if (r?.ok) {
        if (this.failed || p.entryId <= this.lac || (p.acked & bit) !== 0) continue
        if (!(sameBookie ?? ensembleFor(this.meta.value, p.entryId).bookies[pos] === bookieId)) continue
        p.acked |= bit
        if (++p.acks >= qa) quorum = true
      } else {
        failure ??= r ? r.error : new LogError(ErrorCode.INTERNAL, `bookie ${bookieId} sent no result for entry ${p.entryId}`)
        failedEntries.push(p)
      }
    }
    if (quorum) this.complete()
    if (failure) this.onBookieFailure(pos, bookieId, failedEntries, failure)
  }

  private complete(): void {
    const qa = this.meta.value.ackQuorum
    let n = 0
    while (n < this.pending.length && this.pending[n]!.acks >= qa) n++
    if (n === 0) return
    const done = this.pending.splice(0, n)
    for (const p of done) {
      this.pendingBytes -= p.size
      this.lengthBytes += p.size
    }
    this.lac = done[n - 1]!.entryId
    for (const p of done) p.resolve(p.entryId)
    if (this.lac > this.lacCarried && this.o.explicitLacMs > 0 && !this.lacTimer) this.armLac()
    this.hintSlowBookies()
    this.admitWaiting()
    if (this.pending.length === 0) this.wakeDrain()
  }

  /** LAC hints to the bookies that have been at their in-flight limit for lacHintMs (see WriterOptions.lacHintMs). */
  private hintSlowBookies(): void {
    const every = this.o.lacHintMs
    const m = this.meta.value
    if (every <= 0 || this.fullSince.size === 0 || m.ensembleSize !== m.writeQuorum) return
    const now = performance.now()
    const bookies = m.ensembles.at(-1)!.bookies
    for (const [pos, since] of this.fullSince) {
      if (now - since < every || (this.told.get(pos) ?? -1n) >= this.lac) continue
      const lac = this.lac
      this.told.set(pos, lac)
      this.fullSince.set(pos, now)
      // A hint: one that cannot go (no stream open) or gets lost changes nothing; the next batch carries the LAC.
      this.pool.client(bookies[pos]!).then(c => c.hintLac(this.ledgerId, lac)).catch(() => undefined)
    }
  }

  private armLac(): void {
    this.pushedAtArm = this.lastPushed
    this.lacTimer = setTimeout(() => this.sendLac(), this.o.explicitLacMs)
    this.lacTimer.unref()
  }

  private sendLac(): void {
    this.lacTimer = undefined
    if (this.failed || this.lac <= this.lacCarried) return
    // Appends since the timer was armed: the writer is busy, and its next entries carry the LAC to every
    // bookie anyway (at 3 k entries/s, explicit LACs were 1 request in 6). Look again later; only a writer
    // that went quiet sends its LAC explicitly.
    if (this.lastPushed > this.pushedAtArm) {
      this.armLac()
      return
    }
    const lac = this.lac
    this.lacCarried = lac
    const bookies = this.meta.value.ensembles.at(-1)!.bookies
    for (let pos = 0; pos < bookies.length; pos++) {
      // Not to a bookie whose entries are still waiting here to be sent (it is behind, e.g. the slowest of
      // the write quorum): the LAC would reach it ahead of them, and a follower reading from it would find
      // entries up to the LAC missing. It learns the LAC from those entries instead.
      if ((this.outbox.get(pos)?.length ?? 0) > 0) continue
      // A hint for readers: a bookie that misses it learns the LAC from the next entry it gets.
      this.pool.client(bookies[pos]!).then(c => c.writeLac(this.ledgerId, lac)).catch(() => undefined)
    }
  }

  private onBookieFailure(pos: number, bookieId: string, entries: PendingAdd[], err: LogError): void {
    if (this.failed) return
    if (err.code === ErrorCode.FENCED || err.code === ErrorCode.LEDGER_CLOSED || err.code === ErrorCode.NO_SUCH_LEDGER) {
      this.fail(new LogError(ErrorCode.FENCED, `ledger ${this.ledgerId} was fenced by a recovery (bookie ${bookieId}: ${err.message})`, {cause: err}))
      return
    }
    if (!REPLACE.has(err.code)) {
      this.fail(err)
      return
    }
    const live = entries.filter(p => p.entryId > this.lac)
    if (ensembleFor(this.meta.value, this.lastPushed + 1n).bookies[pos] !== bookieId) {
      // Already replaced: whatever is still unconfirmed goes to the replacement.
      for (const p of live) this.queue(pos, p)
      this.scheduleFlush()
      return
    }
    this.paused.add(pos)
    for (const p of live) this.queue(pos, p)
    this.changes = this.changes.then(() => this.replaceBookie(pos, bookieId, err)).catch(e => this.fail(asLogError(e)))
  }

  /** Ensemble change: swap the bookie at `pos` from the first unconfirmed entry on (CAS on the metadata). */
  private async replaceBookie(pos: number, bad: string, why: LogError): Promise<void> {
    if (this.failed) return
    const current = this.meta.value.ensembles.at(-1)!
    if (current.bookies[pos] !== bad) {
      this.paused.delete(pos)
      this.scheduleFlush()
      return
    }
    if (++this.ensembleChanges > this.o.maxEnsembleChanges) {
      throw new LogError(ErrorCode.NOT_ENOUGH_BOOKIES, `ledger ${this.ledgerId}: gave up after ${this.o.maxEnsembleChanges} ensemble changes (last: ${why.message})`)
    }
    const [replacement] = await this.pool.choose(1, new Set(current.bookies))
    for (let attempt = 0; ; attempt++) {
      const firstEntryId = this.lac + 1n
      const m = this.meta.value
      const last = m.ensembles.at(-1)!
      const bookies = last.bookies.slice()
      bookies[pos] = replacement!
      const ensembles = last.firstEntryId === firstEntryId ? [...m.ensembles.slice(0, -1), {firstEntryId, bookies}] : [...m.ensembles, {firstEntryId, bookies}]
      try {
        this.meta = await this.store.updateLedger({...m, ensembles}, this.meta.version)
        break
      } catch (err) {
        if (!isLogError(err) || err.code !== ErrorCode.BAD_VERSION || attempt >= 5) throw err
        const fresh = await this.store.getLedger(this.ledgerId)
        if (fresh.value.state !== 'OPEN') {
          throw new LogError(ErrorCode.FENCED, `ledger ${this.ledgerId} is ${fresh.value.state}: recovery took over`)
        }
        this.meta = fresh
      }
    }
    this.told.delete(pos) // the new bookie was told no LAC yet
    // Entries of the new fragment that the old bookie acked don't count any more; resend them all.
    const bit = 1 << pos
    for (const p of this.pending) {
      if (writeSet(p.entryId, this.meta.value.ensembleSize, this.meta.value.writeQuorum).includes(pos)) {
        if ((p.acked & bit) !== 0) {
          p.acked &= ~bit
          p.acks--
        }
        this.queue(pos, p)
      }
    }
    this.paused.delete(pos)
    this.scheduleFlush()
  }

  private fail(err: LogError): void {
    if (this.failed) return
    this.failed = err
    clearTimeout(this.lacTimer)
    const pending = this.pending
    this.pending = []
    this.pendingBytes = 0
    this.outbox.clear()
    for (const p of pending) p.reject(err)
    this.admitWaiting()
    this.wakeDrain()
  }

  /** Room in the window (or a failure): admit waiting appends in order while they fit (or reject them all). */
  private admitWaiting(): void {
    const w = this.waiting
    while (this.waitingHead < w.length) {
      const next = w[this.waitingHead]!
      if (this.failed) next.reject(this.failed)
      else if (this.hasSpace(next.size)) this.push(next.prefix, next.payload, next.size, next.resolve, next.reject)
      else break
      w[this.waitingHead++] = undefined
    }
    if (this.waitingHead === w.length) {
      this.waiting = []
      this.waitingHead = 0
    } else if (this.waitingHead >= 4096 && this.waitingHead * 2 >= w.length) {
      this.waiting = w.slice(this.waitingHead)
      this.waitingHead = 0
    }
  }

  private wakeDrain(): void {
    for (const w of this.drainWaiters.splice(0)) w()
  }

  /**
   * Wait for everything appended to be confirmed, then close the ledger in metadata (CAS) with its last
   * entry id, and tell the bookies (announceClosed) unless `announce` is false (the log writer announces a
   * segment's close once the next segment is published). Closing twice returns the same result.
   */
  close(opts: {announce?: boolean} = {}): Promise<{lastEntryId: bigint; length: bigint}> {
    const first = this.closed === undefined
    this.closed ??= this.closeLedger()
    if (first && opts.announce !== false) void this.closed.then(() => this.announceClosed(), () => undefined)
    return this.closed
  }

  /**
   * Tell the bookies of the last ensemble that the ledger is closed at its last entry (explicit LAC with
   * closed=1): followers waiting at its end learn it at once instead of at the end of their poll, and read
   * the metadata. A hint, sent once the metadata says CLOSED; a bookie that misses it changes nothing.
   */
  announceClosed(): void {
    this.pool.announceClosed(this.meta.value)
  }

  private async closeLedger(): Promise<{lastEntryId: bigint; length: bigint}> {
    // Appends called before close() are still admitted (waiting ones enter as confirmations make room)
    // and confirmed.
    while ((this.pending.length > 0 || this.waitingHead < this.waiting.length) && !this.failed) await new Promise<void>(resolve => this.drainWaiters.push(resolve))
    await this.changes.catch(() => undefined)
    if (this.failed) throw this.failed
    for (let attempt = 0; ; attempt++) {
      const m = this.meta.value
      try {
        const length = BigInt(this.lengthBytes)
        this.meta = await this.store.updateLedger({...m, state: 'CLOSED', lastEntryId: this.lac, length}, this.meta.version)
        return {lastEntryId: this.lac, length}
      } catch (err) {
        if (!isLogError(err) || err.code !== ErrorCode.BAD_VERSION || attempt >= 5) throw err
        const fresh = await this.store.getLedger(this.ledgerId)
        if (fresh.value.state === 'CLOSED' && fresh.value.lastEntryId === this.lac) return {lastEntryId: this.lac, length: fresh.value.length}
        if (fresh.value.state !== 'OPEN') throw new LogError(ErrorCode.FENCED, `ledger ${this.ledgerId} is ${fresh.value.state}: recovery took over`)
        this.meta = fresh
      }
    }
  }
}

/** The same entries (the same objects), in the same order. */
function sameBatch(a: readonly PendingAdd[], b: readonly PendingAdd[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
