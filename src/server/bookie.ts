/**
 * The bookie daemon: a StorageEngine served by a BookieServer, registered in the metadata store.
 *
 *   start: open the engine (replay) -> listen -> register (state, free/total bytes, ledgers) -> "ready" log line
 *   run:   re-publish the registration's info every refreshMs, and at once when the engine turns read-only
 *          or writable again
 *   stop:  stop accepting (GOAWAY), let in-flight requests finish -> close the engine (final checkpoint)
 *          -> deregister -> close the store
 *
 * runDaemon() adds the process concerns: SIGTERM/SIGINT stop cleanly (exit 0), a second signal exits at
 * once, losing the registration to another process with the same bookie id stops the daemon.
 */
import {pino, type Logger} from 'pino'
import {channels, StorageEngine, type EngineOptions} from '../engine/engine.js'
import {ErrorCode, LogError} from '../errors.js'
import type {BookieInfo, BookieRegistration, MetadataStore} from '../meta/store.js'
import {openMetadataStore} from '../meta/open.js'
import {parseHostPort} from '../net/address.js'
import {BookieServer, type BookieServerOptions} from '../net/server.js'
import {notify} from './systemd.js'

export interface BookieOptions {
  dataDir: string
  /** host:port to listen on; port 0 picks a free one. */
  listen: string
  /** host:port clients use (default: the bound address). */
  advertise?: string
  /** Metadata store URL (sqlite:/path or etcd://host:port); none = no registration. */
  metadata?: string
  /** Default: the advertised address. */
  bookieId?: string
  logger: Logger
  /** How often the registration's info is re-published (default 5000 ms). */
  refreshMs?: number
  /** Registration liveness TTL (default: the store's, 10 s). */
  ttlMs?: number
  engine?: Omit<EngineOptions, 'dir'>
  server?: Omit<BookieServerOptions, 'engine' | 'host' | 'port' | 'advertise' | 'bookieId' | 'logger'>
}

export class Bookie {
  private refreshTimer: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  private readonly onReadOnly = (msg: unknown): void => {
    if ((msg as {dir?: unknown}).dir === this.engine.dir) this.publish()
  }

  private readonly onCheckpoint = (msg: unknown): void => {
    const m = msg as {dir?: unknown; bytes?: number; pieces?: number; ms?: number}
    if (m.dir === this.engine.dir) this.logger.info({event: 'checkpoint', bytes: m.bytes, pieces: m.pieces, ms: m.ms === undefined ? undefined : Math.round(m.ms)}, 'index checkpoint written')
  }

  private constructor(
    readonly engine: StorageEngine,
    readonly server: BookieServer,
    private readonly store: MetadataStore | undefined,
    readonly registration: BookieRegistration | undefined,
    private readonly logger: Logger,
    refreshMs: number,
  ) {
    if (registration !== undefined) {
      this.refreshTimer = setInterval(() => this.publish(), refreshMs)
      this.refreshTimer.unref()
      channels.readOnly.subscribe(this.onReadOnly)
    }
    channels.checkpoint.subscribe(this.onCheckpoint)
  }

  get id(): string {
    return this.server.bookieId
  }

  get address(): string {
    return this.server.address
  }

  static async start(opts: BookieOptions): Promise<Bookie> {
    const {logger} = opts
    const listen = parseHostPort(opts.listen, 'listen address')
    if (opts.advertise !== undefined) parseHostPort(opts.advertise, 'advertised address')
    const refreshMs = opts.refreshMs ?? 5000
    const engine = await StorageEngine.open({...opts.engine, dir: opts.dataDir})
    for (const p of engine.problems) logger.warn({problem: p}, 'storage problem found at start')
    let server: BookieServer | undefined
    let store: MetadataStore | undefined
    try {
      server = await BookieServer.listen({
        ...opts.server, engine, host: listen.host, port: listen.port, logger, processMetrics: true,
        ...(opts.advertise === undefined ? {} : {advertise: opts.advertise}),
        ...(opts.bookieId === undefined ? {} : {bookieId: opts.bookieId}),
      })
      let registration: BookieRegistration | undefined
      if (opts.metadata !== undefined) {
        store = await openMetadataStore(opts.metadata)
        registration = await store.registerBookie(await info(server), opts.ttlMs === undefined ? {} : {ttlMs: opts.ttlMs})
      }
      const bookie = new Bookie(engine, server, store, registration, logger, refreshMs)
      logger.info({event: 'ready', bookieId: bookie.id, address: bookie.address, listen: `${listen.host}:${server.port}`, dataDir: engine.dir, metadata: store?.url ?? null},
        `bookie ${bookie.id} listening on ${bookie.address}`)
      return bookie
    } catch (err) {
      await server?.close().catch(() => undefined)
      await store?.close().catch(() => undefined)
      await engine.close().catch(() => undefined)
      throw err
    }
  }

  /** Re-publish state, free/total bytes and ledger count (best effort: the next round retries). */
  private publish(): void {
    const reg = this.registration
    if (reg === undefined || reg.signal.aborted || this.stopping) return
    info(this.server)
      .then(i => reg.update(i))
      .catch((err: unknown) => {
        if (!reg.signal.aborted) this.logger.warn({err}, 'could not refresh the registration')
      })
  }

  /** Clean stop; see the file comment. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.refreshTimer)
      channels.readOnly.unsubscribe(this.onReadOnly)
      channels.checkpoint.unsubscribe(this.onCheckpoint)
      await this.server.close()
      await this.engine.close()
      try {
        await this.registration?.close()
      } finally {
        await this.store?.close()
      }
      this.logger.info({event: 'stopped', bookieId: this.id}, `bookie ${this.id} stopped`)
    })()
    return this.stopping
  }
}

async function info(server: BookieServer): Promise<BookieInfo> {
  const s = await server.status()
  return {id: server.bookieId, address: server.address, state: s.state, freeBytes: s.freeBytes, totalBytes: s.totalBytes, ledgers: s.ledgers}
}

export function createLogger(level = 'info'): Logger {
  return pino({level, base: {svc: 'logctl-bookie', pid: process.pid}, timestamp: pino.stdTimeFunctions.isoTime})
}

const SIGNAL_EXIT = {SIGINT: 130, SIGTERM: 143} as const

/**
 * Run a bookie until SIGTERM/SIGINT (resolves after a clean stop) or until its registration is taken over
 * (rejects with that BAD_VERSION error after stopping). A second signal exits the process at once.
 */
export async function runDaemon(opts: BookieOptions): Promise<{bookieId: string; address: string}> {
  const bookie = await Bookie.start(opts)
  const {logger} = opts
  const result = {bookieId: bookie.id, address: bookie.address}
  // Signal handlers first, readiness after: a manager may stop us the moment it hears READY=1.
  const stopped = new Promise<void>((resolve, reject) => {
    const stop = (why: LogError | undefined): void => {
      notify({stopping: true}).catch(() => undefined)
      bookie.stop().then(() => (why ? reject(why) : resolve()), reject)
    }
    let signalled = false
    const onSignal = (signal: keyof typeof SIGNAL_EXIT): void => {
      if (signalled) {
        logger.warn({event: 'exit', signal}, 'second signal: exiting now')
        process.exit(SIGNAL_EXIT[signal])
      }
      signalled = true
      logger.info({event: 'stopping', signal}, `bookie ${bookie.id} stopping (${signal})`)
      stop(undefined)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    bookie.registration?.signal.addEventListener('abort', () => {
      const reason = bookie.registration!.signal.reason as LogError
      if (reason.code === ErrorCode.CLOSED) return // our own stop
      logger.error({err: reason}, 'the registration was taken over by another process with this bookie id: stopping')
      stop(reason)
    })
  })
  await notify({ready: true, status: `serving on ${bookie.address}`})
  await stopped
  return result
}
