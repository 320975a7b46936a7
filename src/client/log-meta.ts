/**
 * Named logs in the metadata store (the key-value part of MetadataStore), as DistributedLog and Pulsar's
 * managed ledger keep them: a log is an ordered chain of ledgers (segments); every entry has a dense offset
 * across the chain. Keys:
 *   logs/<name>              LogMeta as JSON (bigints as decimal strings), changed only by CAS
 *   cursors/<name>/<cursor>  CursorMeta as JSON
 */
import {ErrorCode, LogError, isLogError} from '../errors.js'
import type {Compression, MetadataStore, Versioned} from '../meta/store.js'

export interface LogConfig {
  ensembleSize: number
  writeQuorum: number
  ackQuorum: number
  compression: Compression
  /** Roll to a new segment after this many payload bytes (default 256 MiB). */
  segmentBytes: number
  /** ... or this many entries (default 0: no limit). */
  segmentEntries: number
  /** ... or when the segment is this old (default 0: no limit). */
  segmentAgeMs: number
  /** Delete segments older than this (0 = keep forever). */
  retentionMs: number
  /** Delete the oldest segments while the log is larger than this (0 = no limit). */
  retentionBytes: number
}

export interface Segment {
  ledgerId: bigint
  firstOffset: bigint
  /** firstOffset - 1 when empty; meaningful once state is CLOSED. */
  lastOffset: bigint
  state: 'OPEN' | 'CLOSED'
  bytes: bigint
  createdAt: number
  closedAt: number
}

export interface LogMeta {
  name: string
  config: LogConfig
  /** Oldest first; the last one is where the writer appends (OPEN) unless the log is idle. */
  segments: Segment[]
  /** Offset of the first entry still kept (retention and truncation move it). */
  firstOffset: bigint
  /** Incremented by every writer that takes the log over. */
  epoch: number
  writer: {epoch: number; since: number; pid: number; host: string} | null
  createdAt: number
}

export interface CursorMeta {
  /** The next offset this consumer will read. */
  offset: bigint
  updatedAt: number
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

export function checkName(name: unknown, what: 'log' | 'cursor'): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new LogError(ErrorCode.BAD_INPUT, `invalid ${what} name ${JSON.stringify(name)}: use 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit`)
  }
  return name
}

export const DEFAULT_LOG_CONFIG: LogConfig = {
  ensembleSize: 3, writeQuorum: 3, ackQuorum: 2, compression: 'none',
  segmentBytes: 256 * 1024 * 1024, segmentEntries: 0, segmentAgeMs: 0, retentionMs: 0, retentionBytes: 0,
}

export function checkConfig(c: LogConfig): LogConfig {
  const pos = (n: number, name: string, min: number): void => {
    if (!Number.isInteger(n) || n < min) throw new LogError(ErrorCode.BAD_INPUT, `${name} must be an integer >= ${min}, got ${n}`)
  }
  pos(c.ensembleSize, 'ensemble size', 1)
  pos(c.writeQuorum, 'write quorum', 1)
  pos(c.ackQuorum, 'ack quorum', 1)
  if (!(c.ensembleSize >= c.writeQuorum && c.writeQuorum >= c.ackQuorum)) {
    throw new LogError(ErrorCode.BAD_INPUT, `need ensemble >= write quorum >= ack quorum, got E=${c.ensembleSize} Qw=${c.writeQuorum} Qa=${c.ackQuorum}`)
  }
  pos(c.segmentBytes, 'segment bytes', 1)
  pos(c.segmentEntries, 'segment entries', 0)
  pos(c.segmentAgeMs, 'segment age', 0)
  pos(c.retentionMs, 'retention', 0)
  pos(c.retentionBytes, 'retention bytes', 0)
  if (c.compression !== 'none' && c.compression !== 'lz4') throw new LogError(ErrorCode.BAD_INPUT, `compression must be none or lz4, got ${String(c.compression)}`)
  return c
}

const logKey = (name: string): string => `logs/${name}`
export const cursorPrefix = (log: string): string => `cursors/${log}/`
const cursorKey = (log: string, cursor: string): string => `${cursorPrefix(log)}${cursor}`

function encode(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? {$n: x.toString()} : x)))
}

function decode<T>(b: Buffer): T {
  return JSON.parse(b.toString('utf8'), (_k, x: unknown) => {
    const o = x as {$n?: unknown} | null
    return o !== null && typeof o === 'object' && typeof o.$n === 'string' && Object.keys(o).length === 1 ? BigInt(o.$n) : x
  }) as T
}

/** The end of the log: the offset the next append will get (as far as metadata knows; an OPEN segment may have more). */
export function closedEnd(m: LogMeta): bigint {
  const last = m.segments.at(-1)
  if (!last) return m.firstOffset
  return last.state === 'CLOSED' ? last.lastOffset + 1n : last.firstOffset
}

export class LogStore {
  constructor(readonly meta: MetadataStore) {}

  async get(name: string): Promise<Versioned<LogMeta>> {
    const v = await this.meta.get(logKey(checkName(name, 'log')))
    if (!v) throw new LogError(ErrorCode.NO_SUCH_LOG, `no log named ${name}`, {detail: {log: name}})
    return {value: decode<LogMeta>(v.value), version: v.version}
  }

  async create(name: string, config: LogConfig): Promise<LogMeta> {
    const m: LogMeta = {name: checkName(name, 'log'), config: checkConfig(config), segments: [], firstOffset: 0n, epoch: 0, writer: null, createdAt: Date.now()}
    try {
      await this.meta.put(logKey(name), encode(m), null)
    } catch (err) {
      if (isLogError(err) && err.code === ErrorCode.BAD_VERSION) throw new LogError(ErrorCode.LOG_EXISTS, `a log named ${name} already exists`, {detail: {log: name}})
      throw err
    }
    return m
  }

  /**
   * Read-modify-write under CAS, retried on a lost race. `change` returns the new value, or undefined to
   * leave the log as it is; it may throw to abort (e.g. FENCED when another writer took over).
   */
  async update(name: string, change: (m: LogMeta) => LogMeta | undefined): Promise<LogMeta> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.get(name)
      const next = change(cur.value)
      if (!next) return cur.value
      try {
        await this.meta.put(logKey(name), encode(next), cur.version)
        return next
      } catch (err) {
        if (!isLogError(err) || err.code !== ErrorCode.BAD_VERSION || attempt >= 20) throw err
      }
    }
  }

  async remove(name: string): Promise<void> {
    const cur = await this.get(name)
    await this.meta.delete(logKey(name), cur.version)
  }

  async list(): Promise<LogMeta[]> {
    return (await this.meta.list('logs/')).map(kv => decode<LogMeta>(kv.value))
  }

  async getCursor(log: string, cursor: string): Promise<CursorMeta | undefined> {
    const v = await this.meta.get(cursorKey(log, checkName(cursor, 'cursor')))
    return v ? decode<CursorMeta>(v.value) : undefined
  }

  async setCursor(log: string, cursor: string, offset: bigint): Promise<void> {
    const key = cursorKey(log, checkName(cursor, 'cursor'))
    for (let attempt = 0; ; attempt++) {
      const cur = await this.meta.get(key)
      try {
        await this.meta.put(key, encode({offset, updatedAt: Date.now()} satisfies CursorMeta), cur ? cur.version : null)
        return
      } catch (err) {
        if (!isLogError(err) || err.code !== ErrorCode.BAD_VERSION || attempt >= 20) throw err
      }
    }
  }

  async cursors(log: string): Promise<Array<{name: string} & CursorMeta>> {
    const prefix = cursorPrefix(log)
    return (await this.meta.list(prefix)).map(kv => ({name: kv.key.slice(prefix.length), ...decode<CursorMeta>(kv.value)}))
  }

  async deleteCursors(log: string): Promise<void> {
    for (const kv of await this.meta.list(cursorPrefix(log))) await this.meta.delete(kv.key)
  }
}
