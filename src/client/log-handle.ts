/**
 * The library face of a named log: `const log = await client.openLog('orders')`, then `log.append(bytes)`
 * (the writer role is taken on the first append), `log.read({from})` / `log.follow({from})` async
 * iterators, `log.cursor('billing')` for a consumer group's durable position, and truncation/retention
 * that delete whole segments only, and only once every cursor is past them (unless forced).
 */
import {ErrorCode, LogError, isLogError} from '../errors.js'
import {checkName, closedEnd, type LogMeta, type LogStore, type Segment} from './log-meta.js'
import {LogWriter, readLog, type LedgerOps, type LogEntry, type LogReadOptions} from './log.js'

export interface LogInfo {
  name: string
  config: LogMeta['config']
  firstOffset: bigint
  /** The offset the next entry will get (as far as readers can see). */
  endOffset: bigint
  entries: bigint
  bytes: bigint
  segments: Segment[]
  writer: LogMeta['writer']
  cursors: Array<{name: string; offset: bigint; updatedAt: number}>
}

export interface RemovalResult {
  removedSegments: number
  removedLedgers: bigint[]
  firstOffset: bigint
}

export class Cursor {
  constructor(private readonly log: Log, private readonly store: LogStore, readonly name: string) {
    checkName(name, 'cursor')
  }

  /** The next offset this consumer reads: its last commit, or the start of the log. */
  async position(): Promise<bigint> {
    const c = await this.store.getCursor(this.log.name, this.name)
    return c?.offset ?? (await this.store.get(this.log.name)).value.firstOffset
  }

  /** Record that everything before `nextOffset` is processed (at-least-once: commit after processing). */
  async commit(nextOffset: bigint): Promise<void> {
    if (typeof nextOffset !== 'bigint' || nextOffset < 0n) throw new LogError(ErrorCode.OUT_OF_RANGE, `cursor offset must be a non-negative bigint, got ${String(nextOffset)}`)
    await this.store.get(this.log.name) // the log must exist
    await this.store.setCursor(this.log.name, this.name, nextOffset)
  }

  /** Read from this cursor's position. */
  async *read(o: Omit<LogReadOptions, 'from'> = {}): AsyncGenerator<LogEntry> {
    yield* this.log.read({...o, from: await this.position()})
  }
}

export class Log {
  private writer: Promise<LogWriter> | undefined
  /** The writer once open (what `writer` resolved to). */
  private ready: LogWriter | undefined

  constructor(private readonly client: LedgerOps, private readonly store: LogStore, readonly name: string) {
    checkName(name, 'log')
  }

  /**
   * Append; the first call takes the writer role (fencing any previous writer). Resolves with the offset.
   * The bytes are sent from the caller's buffer (no copy): leave it unchanged until the promise settles.
   */
  append(data: Buffer | string): Promise<bigint> {
    // Once the writer is open, straight to it (no await of an already settled promise per entry).
    return this.ready !== undefined ? this.ready.append(data) : this.appendFirst(data)
  }

  private async appendFirst(data: Buffer | string): Promise<bigint> {
    this.writer ??= LogWriter.open(this.client, this.store, this.name).then(w => {
      w.onRoll = () => {
        this.enforceRetention().catch(() => {
          // Best effort: retention is applied again at the next roll.
        })
      }
      return w
    })
    let w: LogWriter
    try {
      w = await this.writer
    } catch (err) {
      this.writer = undefined
      throw err
    }
    if (this.writer !== undefined) this.ready = w
    return w.append(data)
  }

  read(o: LogReadOptions = {}): AsyncGenerator<LogEntry> {
    return readLog(this.client, this.store, this.name, o)
  }

  follow(o: Omit<LogReadOptions, 'follow'> = {}): AsyncGenerator<LogEntry> {
    return readLog(this.client, this.store, this.name, {...o, follow: true})
  }

  cursor(name: string): Cursor {
    return new Cursor(this, this.store, name)
  }

  async info(): Promise<LogInfo> {
    const m = (await this.store.get(this.name)).value
    let endOffset = closedEnd(m)
    const last = m.segments.at(-1)
    if (last && last.state === 'OPEN') {
      const r = await this.client.openLedger(last.ledgerId)
      endOffset = last.firstOffset + r.lastConfirmed + 1n
    }
    return {
      name: m.name, config: m.config, firstOffset: m.firstOffset, endOffset, entries: endOffset - m.firstOffset,
      bytes: m.segments.reduce((n, s) => n + s.bytes, 0n), segments: m.segments, writer: m.writer,
      cursors: await this.store.cursors(this.name),
    }
  }

  /** Remove whole closed segments that end before `before`. */
  truncate(before: bigint, o: {force?: boolean} = {}): Promise<RemovalResult> {
    if (typeof before !== 'bigint' || before < 0n) return Promise.reject(new LogError(ErrorCode.OUT_OF_RANGE, `--before must be a non-negative offset, got ${String(before)}`))
    return this.removeFront(() => seg => seg.lastOffset < before, o.force === true)
  }

  /** Apply the log's retention (age and size): remove the oldest whole segments that are past it. */
  async enforceRetention(o: {force?: boolean; now?: number} = {}): Promise<RemovalResult> {
    const now = o.now ?? Date.now()
    // The size is taken from the segments the update sees (fresh on every CAS attempt), never from an
    // earlier read: a truncation racing this call must not make it delete more than the limit asks.
    return this.removeFront(cur => {
      const {retentionMs, retentionBytes} = cur.config
      let total = cur.segments.reduce((n, s) => n + s.bytes, 0n)
      return seg => {
        const old = retentionMs > 0 && seg.closedAt > 0 && now - seg.closedAt > retentionMs
        const big = retentionBytes > 0 && total > BigInt(retentionBytes)
        if (old || big) total -= seg.bytes
        return old || big
      }
    }, o.force === true)
  }

  /** `predicate(meta)` is called on every CAS attempt and returns the test for each front segment. */
  private async removeFront(predicate: (m: LogMeta) => (s: Segment) => boolean, force: boolean): Promise<RemovalResult> {
    const cursors = await this.store.cursors(this.name)
    const slowest = cursors.reduce<bigint | undefined>((min, c) => (min === undefined || c.offset < min ? c.offset : min), undefined)
    let removed: Segment[] = []
    const m = await this.store.update(this.name, cur => {
      const pred = predicate(cur)
      let k = 0
      while (k < cur.segments.length) {
        const s = cur.segments[k]!
        if (s.state !== 'CLOSED' || !pred(s)) break
        if (!force && slowest !== undefined && slowest <= s.lastOffset) break // a consumer still needs it
        k++
      }
      removed = cur.segments.slice(0, k)
      if (k === 0) return undefined
      return {...cur, segments: cur.segments.slice(k), firstOffset: removed.at(-1)!.lastOffset + 1n}
    })
    for (const s of removed) {
      await this.client.deleteLedger(s.ledgerId).catch(err => {
        if (!isLogError(err) || err.code !== ErrorCode.NO_SUCH_LEDGER) throw err
      })
    }
    return {removedSegments: removed.length, removedLedgers: removed.map(s => s.ledgerId), firstOffset: m.firstOffset}
  }

  /** Close the writer if this handle took the role (its segment is sealed). */
  async close(): Promise<void> {
    const w = this.writer
    this.writer = undefined
    this.ready = undefined
    if (w) await (await w).close()
  }
}
