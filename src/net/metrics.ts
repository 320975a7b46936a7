/**
 * Prometheus metrics of one bookie server, in a Registry of its own (several bookies may share a process, so
 * nothing goes to prom-client's global registry). Names follow ../docs/PROTOCOL.md#metrics: seconds and
 * bytes, `_total` on counters. Journal fsync latency and group-commit sizes come from the engine's
 * `logctl:journal:batch` diagnostics channel, filtered by this engine's directory; gauges and cache counters
 * are read from engine.status() at scrape time, so the hot path pays nothing for them.
 */
import {Counter, Gauge, Histogram, Registry, collectDefaultMetrics} from 'prom-client'
import {channels, type StorageEngine} from '../engine/engine.js'

/** What the metrics read from the engine at scrape time. */
type MeteredEngine = Pick<StorageEngine, 'dir' | 'readOnly' | 'status'>

interface BatchEvent {
  dir: string
  records: number
  bytes: number
  syncMicros: number
  writeMicros: number
}

export class BookieMetrics {
  readonly registry = new Registry()
  private readonly requests: Histogram<'route' | 'status'>
  private readonly adds: Counter<'result'>
  private readonly addBytes: Counter
  private readonly reads: Counter
  private readonly readBytes: Counter
  private readonly fsync: Histogram
  private readonly batchRecords: Histogram
  private readonly batchBytes: Histogram
  private readonly onBatch: (msg: unknown) => void

  constructor(engine: MeteredEngine, opts: {processMetrics?: boolean} = {}) {
    const registers = [this.registry]
    this.requests = new Histogram({
      name: 'logctl_bookie_request_seconds', help: 'Time to answer a request, by route and HTTP status', labelNames: ['route', 'status'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    })
    this.adds = new Counter({name: 'logctl_bookie_add_entries_total', help: 'Entries added (result=ok) or refused (result=error)', labelNames: ['result'], registers})
    this.addBytes = new Counter({name: 'logctl_bookie_add_bytes_total', help: 'Payload bytes of entries added', registers})
    this.reads = new Counter({name: 'logctl_bookie_read_entries_total', help: 'Entries returned by range reads', registers})
    this.readBytes = new Counter({name: 'logctl_bookie_read_bytes_total', help: 'Payload bytes returned by range reads', registers})
    this.fsync = new Histogram({
      name: 'logctl_journal_fsync_seconds', help: 'fdatasync time of one journal group commit', registers,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    })
    this.batchRecords = new Histogram({
      name: 'logctl_journal_batch_records', help: 'Records per journal group commit', registers,
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    })
    this.batchBytes = new Histogram({
      name: 'logctl_journal_batch_bytes', help: 'Bytes per journal group commit', registers,
      buckets: [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216],
    })
    const status = (): ReturnType<MeteredEngine['status']> => engine.status()
    new Gauge({name: 'logctl_journal_queue_depth', help: 'Records waiting for the journal', registers, collect() { this.set(status().journal.queueDepth) }})
    new Gauge({name: 'logctl_bookie_read_only', help: '1 while the bookie is read-only (disk full), else 0', registers, collect() { this.set(engine.readOnly ? 1 : 0) }})
    new Gauge({name: 'logctl_bookie_ledgers', help: 'Ledgers held', registers, collect() { this.set(status().ledgers) }})
    new Gauge({name: 'logctl_bookie_entries', help: 'Entries held', registers, collect() { this.set(status().entries) }})
    new Counter({name: 'logctl_read_cache_hits_total', help: 'Reads served by the write cache', registers, collect() { this.reset(); this.inc(status().writeCache.hits) }})
    new Counter({name: 'logctl_read_cache_misses_total', help: 'Reads that went to the segment files', registers, collect() { this.reset(); this.inc(status().writeCache.misses) }})
    if (opts.processMetrics === true) collectDefaultMetrics({register: this.registry})

    const dir = engine.dir
    this.onBatch = (msg: unknown) => {
      const e = msg as BatchEvent
      if (e.dir !== dir) return
      this.fsync.observe(e.syncMicros / 1e6)
      this.batchRecords.observe(e.records)
      this.batchBytes.observe(e.bytes)
    }
    channels.batch.subscribe(this.onBatch)
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.observe({route, status: String(status)}, seconds)
  }

  added(ok: number, failed: number, bytes: number): void {
    if (ok > 0) this.adds.inc({result: 'ok'}, ok)
    if (failed > 0) this.adds.inc({result: 'error'}, failed)
    if (bytes > 0) this.addBytes.inc(bytes)
  }

  read(entries: number, bytes: number): void {
    this.reads.inc(entries)
    this.readBytes.inc(bytes)
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }

  close(): void {
    channels.batch.unsubscribe(this.onBatch)
    this.registry.clear()
  }
}
