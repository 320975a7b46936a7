/**
 * LogctlClient: the library's entry point. It holds the metadata store and the bookie transports, and
 * hands out ledger writers and readers.
 */
import {defaultMetadataUrl} from '../config.js'
import {ErrorCode, LogError, asLogError, isLogError} from '../errors.js'
import * as ids from '../ids.js'
import {openMetadataStore} from '../meta/open.js'
import type {BookieStatus, Compression, LedgerMetadata, ListLedgersOptions, MetadataStore} from '../meta/store.js'
import {BookiePool} from './bookies.js'
import {LedgerReader, type ReadOptions} from './ledger-reader.js'
import {LedgerWriter, MAX_ENSEMBLE_SIZE, type WriterOptions} from './ledger-writer.js'
import {Log} from './log-handle.js'
import {DEFAULT_LOG_CONFIG, LogStore, type LogConfig, type LogMeta} from './log-meta.js'
import {recoverLedger} from './recovery.js'

export interface ClientOptions {
  /** Metadata URL (default: LOGCTL_METADATA, else the local standalone cluster). */
  metadata?: string
  /** Per-request bookie timeout (default 10 s): a hung bookie is replaced after this long. */
  bookieTimeoutMs?: number
  writer?: WriterOptions
  reader?: ReadOptions
}

export interface CreateLedgerOptions {
  ensembleSize?: number
  writeQuorum?: number
  ackQuorum?: number
  compression?: Compression
  customMetadata?: Record<string, string>
}

export class LogctlClient {
  readonly logs: LogStore

  private constructor(readonly meta: MetadataStore, private readonly pool: BookiePool, private readonly o: ClientOptions) {
    this.logs = new LogStore(meta)
  }

  static async connect(o: ClientOptions = {}): Promise<LogctlClient> {
    const meta = await openMetadataStore(o.metadata ?? defaultMetadataUrl())
    return new LogctlClient(meta, new BookiePool(meta, o.bookieTimeoutMs === undefined ? {} : {timeoutMs: o.bookieTimeoutMs}), o)
  }

  /** Create a ledger on E live writable bookies and return its writer. Defaults: E=3, Qw=E, Qa=min(2, Qw). */
  async createLedger(opts: CreateLedgerOptions = {}): Promise<LedgerWriter> {
    const ensembleSize = opts.ensembleSize ?? 3
    const writeQuorum = opts.writeQuorum ?? ensembleSize
    const ackQuorum = opts.ackQuorum ?? Math.min(2, writeQuorum)
    for (const [name, v] of Object.entries({ensembleSize, writeQuorum, ackQuorum})) {
      if (!Number.isInteger(v) || v < 1) throw new LogError(ErrorCode.BAD_INPUT, `${name} must be a positive integer, got ${v}`)
    }
    if (ensembleSize > MAX_ENSEMBLE_SIZE) throw new LogError(ErrorCode.BAD_INPUT, `ensembleSize must be at most ${MAX_ENSEMBLE_SIZE}, got ${ensembleSize}`)
    if (!(ensembleSize >= writeQuorum && writeQuorum >= ackQuorum)) {
      throw new LogError(ErrorCode.BAD_INPUT, `need ensemble >= write quorum >= ack quorum, got E=${ensembleSize} Qw=${writeQuorum} Qa=${ackQuorum}`)
    }
    const bookies = await this.pool.choose(ensembleSize)
    const created = await this.meta.createLedger({
      ensembleSize, writeQuorum, ackQuorum, state: 'OPEN', lastEntryId: -1n, length: 0n,
      ensembles: [{firstEntryId: 0n, bookies}], compression: opts.compression ?? 'none',
      customMetadata: opts.customMetadata ?? {}, createdAt: Date.now(),
    })
    return new LedgerWriter(created, this.meta, this.pool, this.o.writer)
  }

  /**
   * Open for reading. Without recovery the ledger may still be written to (read up to its LAC, follow it).
   * With recovery it is fenced and closed first (the writer, if alive, gets FENCED on its next append).
   */
  async openLedger(idIn: bigint, opts: {recovery?: boolean} = {}): Promise<LedgerReader> {
    const id = ids.ledgerId(idIn)
    const m = opts.recovery ? await recoverLedger(this.meta, this.pool, id) : await this.meta.getLedger(id)
    const r = new LedgerReader(m, this.meta, this.pool, this.o.reader)
    if (!r.closed) await r.refresh()
    return r
  }

  /** Fence and close a ledger whose writer is gone; returns its final metadata. */
  async recoverLedger(idIn: bigint): Promise<LedgerMetadata> {
    return (await recoverLedger(this.meta, this.pool, ids.ledgerId(idIn))).value
  }

  async ledgerInfo(idIn: bigint): Promise<LedgerMetadata> {
    return (await this.meta.getLedger(ids.ledgerId(idIn))).value
  }

  listLedgers(opts: ListLedgersOptions = {}): Promise<bigint[]> {
    return this.meta.listLedgers(opts)
  }

  listBookies(): Promise<BookieStatus[]> {
    return this.meta.listBookies()
  }

  /**
   * Delete a ledger: metadata first (so nobody opens it again), then each bookie that ever held it, best
   * effort (a bookie that is down keeps the data until an operator deletes it; reported in `unreached`).
   */
  async deleteLedger(idIn: bigint): Promise<{unreached: string[]}> {
    const id = ids.ledgerId(idIn)
    const m = await this.meta.getLedger(id)
    await this.meta.deleteLedger(id, m.version)
    const bookies = [...new Set(m.value.ensembles.flatMap(e => e.bookies))]
    const unreached: string[] = []
    await Promise.all(bookies.map(async b => {
      try {
        await (await this.pool.client(b)).deleteLedger(id)
      } catch (err) {
        const e = asLogError(err)
        if (e.code !== ErrorCode.NO_SUCH_LEDGER) unreached.push(b)
      }
    }))
    return {unreached}
  }

  // ---- named logs ----------------------------------------------------------------------------------

  /** Create a named log (LOG_EXISTS if the name is taken). */
  createLog(name: string, config: Partial<LogConfig> = {}): Promise<LogMeta> {
    return this.logs.create(name, {...DEFAULT_LOG_CONFIG, ...config})
  }

  /** A handle on an existing log (NO_SUCH_LOG otherwise). */
  async openLog(name: string): Promise<Log> {
    await this.logs.get(name)
    return new Log(this, this.logs, name)
  }

  listLogs(): Promise<LogMeta[]> {
    return this.logs.list()
  }

  /** Delete a log: its metadata, its cursors and every segment's ledger. */
  async deleteLog(name: string): Promise<{ledgers: number}> {
    const m = (await this.logs.get(name)).value
    await this.logs.remove(name)
    await this.logs.deleteCursors(name)
    for (const s of m.segments) {
      await this.deleteLedger(s.ledgerId).catch(err => {
        if (!isLogError(err) || err.code !== ErrorCode.NO_SUCH_LEDGER) throw err
      })
    }
    return {ledgers: m.segments.length}
  }

  async close(): Promise<void> {
    await this.pool.close()
    await this.meta.close()
  }
}
