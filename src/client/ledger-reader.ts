/**
 * Reading a ledger (BookKeeper's ReadHandle). Readers see entries up to the last confirmed one: the
 * metadata's lastEntryId once the ledger is CLOSED, otherwise the highest LAC the bookies report (they learn
 * it from the LAC piggybacked on every add, and from the writer's explicit LAC when it goes idle). Every
 * entry's digest is checked; an entry missing or corrupt on one bookie is read from the next bookie of its
 * write set. follow() tails an open ledger: over a tail stream from one bookie where the layout allows
 * (tail()), else by long-polling the LAC.
 */
import {digestOf} from '../checksum.js'
import {ErrorCode, LogError, asLogError} from '../errors.js'
import * as ids from '../ids.js'
import type {LedgerMetadata, MetadataStore, Versioned} from '../meta/store.js'
import type {ReadEntry} from '../net/bookie-client.js'
import type {TailStream, TailUpdate} from '../net/tail-stream.js'
import type {BookiePool} from './bookies.js'
import {bookiesFor, ensembleFor} from './quorum.js'

/** Entries per range request, unless ReadOptions.chunkEntries says otherwise. */
const DEFAULT_CHUNK_ENTRIES = 256
/** Bytes per range or tail answer at most, unless ReadOptions.maxBytes says otherwise. */
const DEFAULT_READ_MAX_BYTES = 4 * 1024 * 1024

/**
 * Payload bytes per tail-stream message at most: a follower that catches up gets its backlog in pieces it
 * can hand on while the next one is on its way.
 */
const TAIL_MESSAGE_BYTES = 1024 * 1024

/** While the LAC keeps moving, a follower re-reads the ledger's metadata at most this often (to notice a close or an ensemble change). */
const META_REREAD_MS = 200

export interface ReadOptions {
  /** Entries per range request (default 256). */
  chunkEntries?: number
  /** Bytes per range response at most (default 4 MiB). */
  maxBytes?: number
}

export interface FollowOptions {
  from?: bigint
  /** Stop after this entry (default: follow until the ledger is closed and read to its end). */
  to?: bigint
  /** Long-poll wait per request (default 1000 ms). */
  pollMs?: number
  signal?: AbortSignal
}

/**
 * A follower's tail stream and what it knows about the other bookies: the last LAC one of them reported
 * (`probe`, asked at `at`, the bookie at ensemble position `index`), when the next question is due, and
 * whether one is on its way.
 */
interface Feed {
  stream: TailStream
  bookie: string
  fragment: bigint
  /** The next entry the stream is due to bring (everything before it was delivered, or read otherwise). */
  at: bigint
  probe: {lac: bigint; at: number; index: number} | undefined
  probing: boolean
  nextProbeAt: number
  probeEveryMs: number
  probes: number
}

/** A follower on a tail stream asks another bookie for its LAC this often at first (then less while nothing moves). */
const LAG_PROBE_MS = 100
/**
 * A tail bookie that is still below a LAC another bookie reported this long ago is lagging (its journal or
 * its disk is behind; with Qa < Qw the writer goes on without it): the follower moves to the other one.
 */
const LAG_MS = 200
/** A LAC probe that takes longer than this is given up on. */
const PROBE_TIMEOUT_MS = 1000

/**
 * How far the feed's bookie is known to be: the highest LAC it sent, and at least the entry before the one
 * the stream is due to bring. A stream says nothing until its bookie's LAC passes that entry, so silence is
 * not lag; a fresh stream of a caught-up follower has sent no LAC yet, and judged by that alone (-1) every
 * bookie looked ahead of it: the follower moved from bookie to bookie every ~300 ms for as long as the
 * ledger stayed idle, and its poll never ended (nor noticed a close, nor an abort).
 */
function feedKnows(feed: Feed): bigint {
  const lac = feed.stream.lac
  return lac >= feed.at ? lac : feed.at - 1n
}

export class LedgerReader {
  readonly ledgerId: bigint
  private meta: Versioned<LedgerMetadata>
  private lac: bigint
  private metaReadAt = 0
  /** Which bookie of the last ensemble tail reads go to (moves on after a failure). */
  private tailBookie = 0
  /**
   * The tail stream a caught-up follower reads from (tail()): to `bookie`, for the fragment starting at
   * `fragment`, its next update starting at entry `at`.
   */
  private feed: Feed | undefined

  constructor(meta: Versioned<LedgerMetadata>, private readonly store: MetadataStore, private readonly pool: BookiePool, private readonly o: ReadOptions = {}) {
    this.meta = meta
    this.ledgerId = meta.value.ledgerId
    this.lac = meta.value.state === 'CLOSED' ? meta.value.lastEntryId : -1n
  }

  get metadata(): LedgerMetadata {
    return this.meta.value
  }

  get closed(): boolean {
    return this.meta.value.state === 'CLOSED'
  }

  /** The highest entry id a reader may see now. */
  get lastConfirmed(): bigint {
    return this.closed ? this.meta.value.lastEntryId : this.lac
  }

  /**
   * Learn how far readers may go: ask the bookies of the last ensemble for their LAC (long-polling up to
   * `waitMs`) and take the first answer that moves it forward, without waiting for the slowest bookie; only
   * when none does (a timeout) re-read the metadata, which is how a reader learns the ledger was closed.
   * Returns lastConfirmed.
   */
  async refresh(waitMs = 0): Promise<bigint> {
    // Metadata at most every 200 ms while the LAC keeps moving (a fast follower would otherwise read it
    // once per batch); always when asked without waiting, and after a poll that saw nothing new.
    if (waitMs === 0 || Date.now() - this.metaReadAt > META_REREAD_MS) await this.readMeta()
    if (this.closed) return this.lastConfirmed
    const ens = this.meta.value.ensembles.at(-1)!
    const before = this.lac
    await new Promise<void>(resolve => {
      let pending = ens.bookies.length
      const settle = (lac: bigint | undefined): void => {
        if (lac !== undefined && lac > this.lac) this.lac = lac
        if (this.lac > before || --pending === 0) resolve()
      }
      for (const b of ens.bookies) {
        this.pool.client(b).then(c => c.readLac(this.ledgerId, before, waitMs)).then(r => settle(r.lac), () => settle(undefined))
      }
    })
    if (waitMs > 0 && this.lac === before) await this.readMeta()
    return this.lastConfirmed
  }

  private async readMeta(): Promise<void> {
    this.meta = await this.store.getLedger(this.ledgerId)
    this.metaReadAt = Date.now()
  }

  /** Entries from..to (inclusive), all of them confirmed; each verified against its digest. */
  async read(fromIn: bigint, toIn: bigint): Promise<ReadEntry[]> {
    const from = ids.entryId(fromIn)
    const to = ids.entryId(toIn)
    if (to < from) throw new LogError(ErrorCode.OUT_OF_RANGE, `range ${from}..${to} is empty`)
    if (to > this.lastConfirmed) {
      throw new LogError(ErrorCode.OUT_OF_RANGE, `entry ${to} is beyond the last confirmed entry ${this.lastConfirmed} of ledger ${this.ledgerId}`, {detail: {lastConfirmed: String(this.lastConfirmed)}})
    }
    const chunk = BigInt(this.o.chunkEntries ?? DEFAULT_CHUNK_ENTRIES)
    const out: ReadEntry[] = []
    for (let start = from; start <= to; start += chunk) {
      const end = start + chunk - 1n < to ? start + chunk - 1n : to
      out.push(...(await this.readChunk(start, end)))
    }
    return out
  }

  private valid(e: ReadEntry): boolean {
    return e.ledgerId === this.ledgerId && digestOf(e) === e.digest
  }

  /**
   * Read [start, end] with as few requests as the layout allows: ask the first bookie of the lowest missing
   * entry's write set for the whole remaining range, keep what it holds and verifies, and move on to other
   * replicas only for what it lacked.
   */
  private async readChunk(start: bigint, end: bigint): Promise<ReadEntry[]> {
    const got = new Map<bigint, ReadEntry>()
    const tried = new Map<bigint, Set<string>>()
    const lastError = new Map<bigint, LogError>()
    const triedFor = (id: bigint): Set<string> => {
      let s = tried.get(id)
      if (!s) tried.set(id, (s = new Set()))
      return s
    }
    let lowest = start
    while (lowest <= end) {
      if (got.has(lowest)) {
        lowest++
        continue
      }
      const bookie = bookiesFor(this.meta.value, lowest).find(b => !triedFor(lowest).has(b))
      if (bookie === undefined) {
        // Say why: every copy corrupt, or the bookies that should have it unreachable (retriable), or absent.
        const err = lastError.get(lowest)
        const code = err && (err.code === ErrorCode.BAD_CHECKSUM || err.code === ErrorCode.TIMEOUT || err.code === ErrorCode.BOOKIE_UNAVAILABLE) ? err.code : ErrorCode.NO_SUCH_ENTRY
        throw new LogError(code,
          `entry ${this.ledgerId}/${lowest} could not be read from any bookie of its write set${err ? ` (last: ${err.message})` : ''}`,
          {detail: {ledgerId: String(this.ledgerId), entryId: String(lowest)}})
      }
      // Ask up to the end of this entry's fragment: the bookie at that position is the same throughout.
      const ens = ensembleFor(this.meta.value, lowest)
      const next = this.meta.value.ensembles.find(x => x.firstEntryId > ens.firstEntryId)
      const upTo = next && next.firstEntryId - 1n < end ? next.firstEntryId - 1n : end
      let returned: ReadEntry[] = []
      try {
        returned = await (await this.pool.client(bookie)).readEntries(this.ledgerId, lowest, upTo, {maxBytes: this.o.maxBytes ?? DEFAULT_READ_MAX_BYTES})
      } catch (err) {
        const e = asLogError(err)
        triedFor(lowest).add(bookie)
        lastError.set(lowest, e)
        if (e.code !== ErrorCode.NO_SUCH_LEDGER && e.code !== ErrorCode.NO_SUCH_ENTRY) continue
        returned = []
      }
      let lastReturned = lowest - 1n
      for (const e of returned) {
        if (e.entryId < lowest || e.entryId > upTo) continue
        if (e.entryId > lastReturned) lastReturned = e.entryId
        if (got.has(e.entryId)) continue
        if (this.valid(e)) got.set(e.entryId, e)
        else {
          triedFor(e.entryId).add(bookie)
          lastError.set(e.entryId, new LogError(ErrorCode.BAD_CHECKSUM, `bookie ${bookie} returned entry ${e.entryId} with a bad digest`))
        }
      }
      // What the bookie should hold up to what it returned (or the whole range if it returned nothing),
      // but didn't send, it doesn't have: try elsewhere. Beyond that the answer may just have been cut short.
      const covered = returned.length === 0 ? upTo : lastReturned
      for (let id = lowest; id <= covered; id++) {
        if (!got.has(id) && bookiesFor(this.meta.value, id).includes(bookie)) triedFor(id).add(bookie)
      }
    }
    const out: ReadEntry[] = []
    for (let id = start; id <= end; id++) out.push(got.get(id)!)
    return out
  }

  /**
   * Entries from `from` on, in order, as they become confirmed; ends after `to`, or at the end of the
   * ledger once it is closed.
   */
  async *follow(opts: FollowOptions = {}): AsyncGenerator<ReadEntry> {
    let next = opts.from ?? 0n
    const chunk = BigInt(this.o.chunkEntries ?? DEFAULT_CHUNK_ENTRIES)
    try {
      while (!opts.signal?.aborted) {
        if (opts.to !== undefined && next > opts.to) return
        const lc = this.lastConfirmed
        if (next <= lc && !this.streaming(next)) {
          let end = next + chunk - 1n < lc ? next + chunk - 1n : lc
          if (opts.to !== undefined && end > opts.to) end = opts.to
          for (const e of await this.read(next, end)) yield e
          next = end + 1n
          continue
        }
        if (this.closed) return
        for (const e of await this.poll(next, opts.pollMs ?? 1000, opts.signal)) {
          if (opts.to !== undefined && e.entryId > opts.to) return
          yield e
          next = e.entryId + 1n
        }
      }
    } finally {
      this.close() // the tail stream, if poll() opened one
    }
  }

  /**
   * A follower caught up at `next` (next > lastConfirmed) waits up to waitMs for more. Returns the entries
   * from `next` on when a tail read brought them along; otherwise [] after a LAC long poll (refresh), and
   * lastConfirmed says what read() may get now. An abort of `signal` ends a wait on a tail stream at once
   * ([]); a long poll (a transport without tail streams) runs its course.
   */
  async poll(next: bigint, waitMs: number, signal?: AbortSignal): Promise<ReadEntry[]> {
    const got = await this.tail(next, waitMs, signal)
    if (got !== undefined) return got
    if (signal?.aborted) return []
    await this.refresh(waitMs)
    return []
  }

  /**
   * Caught up with an open ledger whose last fragment is written in full to every bookie (E = Qw): the next
   * entries come from one bookie of the last ensemble along with its LAC, over a tail stream (the bookie
   * pushes each time its LAC moves; kept open between calls) or, where the transport has none, one long
   * poll (GET .../tail) per call. Returns the verified entries from `next` on that it sent in order
   * (possibly none: then the LAC it reported still counts, and the metadata is re-read as refresh() would,
   * to notice a close), or undefined to use refresh() and read() instead (striping, an older fragment, a
   * failure, a gap, a digest mismatch: those paths know how to go to other replicas).
   */
  private async tail(next: bigint, waitMs: number, signal?: AbortSignal): Promise<ReadEntry[] | undefined> {
    if (Date.now() - this.metaReadAt > META_REREAD_MS) await this.readMeta()
    if (this.closed) {
      this.close()
      return []
    }
    const m = this.meta.value
    const ens = m.ensembles.at(-1)!
    if (m.ensembleSize !== m.writeQuorum || next < ens.firstEntryId) {
      this.close()
      return undefined
    }
    const before = this.lac
    const maxBytes = this.o.maxBytes ?? DEFAULT_READ_MAX_BYTES
    let got: {entries: ReadEntry[]; lac: bigint; closed?: true}
    // One deadline for the whole call: moving off a lagging bookie does not start the wait again.
    const deadline = performance.now() + waitMs
    try {
      for (;;) {
        const bookie = ens.bookies[this.tailBookie % ens.bookies.length]!
        const client = await this.pool.client(bookie)
        let feed = this.feed
        // A stream behind the caller (who read entries another way meanwhile, e.g. read() after an update
        // whose LAC ran ahead of its entries) stays: fromFeed() skips what the caller has. One ahead of it
        // (it delivered entries the caller did not take) starts again from the caller's position.
        if (feed !== undefined && (feed.bookie !== bookie || feed.fragment !== ens.firstEntryId || next < feed.at)) {
          this.close()
          feed = undefined
        }
        if (feed === undefined) {
          const stream = client.tailStream(this.ledgerId, next, {waitMs, maxBytes: Math.min(maxBytes, TAIL_MESSAGE_BYTES)})
          if (stream !== undefined) {
            this.feed = feed = {stream, bookie, fragment: ens.firstEntryId, at: next, probe: undefined, probing: false, nextProbeAt: performance.now() + LAG_PROBE_MS, probeEveryMs: LAG_PROBE_MS, probes: 0}
          }
        }
        if (feed !== undefined) {
          // Nothing within waitMs is what a long poll that timed out would say: the LAC did not move.
          const r = await this.fromFeed(feed, next, deadline, ens.bookies.length, signal)
          if (r === 'lagging') {
            // The stream from the other bookie starts at `next` and brings what this one lacked at once.
            this.tailBookie = feed.probe!.index
            this.close()
            continue
          }
          got = r
        } else {
          // A bookie that does not answer within a second of its wait (stopped, overloaded) is given up on for
          // this round: the general path asks every bookie and takes the first answer.
          got = await client.readTail(this.ledgerId, next, waitMs, {maxBytes, timeoutMs: waitMs + 1000})
        }
        break
      }
    } catch {
      this.close()
      this.tailBookie++ // try another bookie next time; this time, the general path
      return undefined
    }
    if (got.lac > this.lac) this.lac = got.lac
    const out: ReadEntry[] = []
    for (const e of got.entries) {
      if (e.entryId !== next || !this.valid(e)) break
      out.push(e)
      next++
    }
    // A gap or a bad copy: the stream has moved past what the caller gets, so it goes; read() fills in.
    if (out.length < got.entries.length) this.close()
    if (out.length === 0 && got.entries.length > 0) return undefined
    // The writer announced the close (the stream's last message): the metadata says CLOSED already.
    if (got.closed || (out.length === 0 && this.lac === before)) await this.readMeta()
    if (out.length === 0 && this.closed) this.close()
    return out
  }

  /**
   * The feed's next update from `next` on, before `deadline` (performance.now()): entries below `next` (the
   * caller has them) are skipped; nothing new by then is what a long poll that timed out says (no entries,
   * the LAC as it was).
   * Meanwhile the other bookies of the ensemble (`size` of them in all) are asked for their LAC now and then
   * (probe()); 'lagging' when the feed's bookie stayed below what another one reported for LAG_MS.
   */
  private async fromFeed(feed: Feed, next: bigint, deadline: number, size: number, signal?: AbortSignal): Promise<TailUpdate | 'lagging'> {
    for (;;) {
      if (signal?.aborted) return {entries: [], lac: this.lac}
      const now = performance.now()
      const p = feed.probe
      // The stream's bookie, not this reader, is judged: updates it sent and the caller has not taken yet count.
      if (p !== undefined && p.lac > feedKnows(feed) && now - p.at >= LAG_MS) return 'lagging'
      if (size > 1 && !feed.probing && now >= feed.nextProbeAt) this.probe(feed, size)
      // Wake up for the next probe, or to look at the answer of the one on its way.
      const wake = Math.min(deadline, feed.probing ? now + LAG_PROBE_MS : feed.nextProbeAt)
      const u = await feed.stream.next(Math.max(0, wake - now), signal)
      if (u === undefined) {
        if (performance.now() >= deadline) return {entries: [], lac: this.lac}
        continue
      }
      if (u.lac > this.lac) this.lac = u.lac
      const last = u.entries.at(-1)
      if (last === undefined) return u
      feed.at = last.entryId + 1n
      if (last.entryId < next) {
        if (u.closed) return {entries: [], lac: u.lac, closed: true}
        continue
      }
      const first = u.entries.findIndex(e => e.entryId >= next)
      return first === 0 ? u : {entries: u.entries.slice(first), lac: u.lac, ...(u.closed ? {closed: true as const} : {})}
    }
  }

  /**
   * Ask the next other bookie of the ensemble for its LAC (no wait), in the background. While the answers
   * say nothing moved beyond what the feed delivered, ask less often (up to once a second: an idle writer
   * costs a follower one request a second); as soon as something moves, every LAG_PROBE_MS again.
   */
  private probe(feed: Feed, size: number): void {
    feed.probing = true
    const index = (this.tailBookie + 1 + (feed.probes++ % (size - 1))) % size
    const at = performance.now()
    const bookie = this.meta.value.ensembles.at(-1)!.bookies[index]!
    const known = feedKnows(feed)
    // A bookie that does not answer within a second (stopped, overloaded) is not waited for: the next probe
    // goes to the next one.
    this.pool.client(bookie).then(c => c.readLac(this.ledgerId, -1n, 0, {timeoutMs: PROBE_TIMEOUT_MS})).then(r => {
      if (this.feed !== feed) return
      // Keep the oldest report the feed has not caught up with: that is the one that measures its lag.
      if (feed.probe === undefined || feed.probe.lac <= feedKnows(feed)) feed.probe = {lac: r.lac, at, index}
      feed.probeEveryMs = r.lac > known ? LAG_PROBE_MS : Math.min(1000, feed.probeEveryMs * 2)
    }, () => undefined).finally(() => {
      feed.probing = false
      feed.nextProbeAt = performance.now() + feed.probeEveryMs
    })
  }

  /**
   * The ledger is still open, a tail stream too, and its next update starts at `next`: a follower that is
   * behind gets on faster taking the updates it pushes (poll) than reading the range itself (read), which
   * the stream would then have sent for nothing.
   */
  streaming(next: bigint): boolean {
    return !this.closed && this.feed !== undefined && !this.feed.stream.failed && this.feed.at === next
  }

  /**
   * Close the tail stream a follower kept open, if any (the reader stays usable: the next poll opens
   * another). Followers that are done with a reader call it; follow() does when it ends.
   */
  close(): void {
    const f = this.feed
    this.feed = undefined
    f?.stream.close()
  }
}
