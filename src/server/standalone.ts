/**
 * A complete local cluster in one process: the embedded SQLite metadata store and N bookies (3 by
 * default, so that replication is real), each with its own data directory and journal thread. Bookie ids
 * are fixed (bookie-0, bookie-1, ...) so that ledgers written before a restart are found after it even
 * if the ports change. Other commands on the machine find it through $LOGCTL_HOME/standalone.json.
 */
import {mkdirSync} from 'node:fs'
import {join, resolve} from 'node:path'
import type {Logger} from 'pino'
import {writeStandaloneMarker} from '../config.js'
import {ErrorCode, LogError} from '../errors.js'
import {Bookie} from './bookie.js'
import {notify} from './systemd.js'

export interface StandaloneOptions {
  dataDir: string
  bookies: number
  /** First bookie port; bookie i listens on port + i (0 = any free ports). */
  port: number
  host: string
  logger: Logger
}

export interface StandaloneInfo {
  metadata: string
  dataDir: string
  bookies: Array<{id: string; address: string}>
}

export class Standalone {
  private constructor(readonly info: StandaloneInfo, private readonly bookies: Bookie[]) {}

  static async start(o: StandaloneOptions): Promise<Standalone> {
    if (!Number.isInteger(o.bookies) || o.bookies < 1 || o.bookies > 16) throw new LogError(ErrorCode.BAD_INPUT, `--bookies must be 1..16, got ${o.bookies}`)
    if (!Number.isInteger(o.port) || o.port < 0 || o.port + o.bookies - 1 > 65535) throw new LogError(ErrorCode.BAD_INPUT, `--port must leave room for ${o.bookies} ports below 65536, got ${o.port}`)
    const dataDir = resolve(o.dataDir)
    mkdirSync(dataDir, {recursive: true})
    const metadata = `sqlite:${join(dataDir, 'meta.db')}`
    const bookies: Bookie[] = []
    try {
      for (let i = 0; i < o.bookies; i++) {
        bookies.push(await Bookie.start({
          dataDir: join(dataDir, `bookie-${i}`), listen: `${o.host}:${o.port === 0 ? 0 : o.port + i}`, metadata, bookieId: `bookie-${i}`, logger: o.logger.child({bookie: i}),
        }))
      }
    } catch (err) {
      await Promise.all(bookies.map(b => b.stop().catch(() => undefined)))
      throw err
    }
    const info = {metadata, dataDir, bookies: bookies.map(b => ({id: b.id, address: b.address}))}
    writeStandaloneMarker({metadata, dataDir, pid: process.pid, bookies: info.bookies.map(b => b.address)})
    return new Standalone(info, bookies)
  }

  async stop(): Promise<void> {
    await Promise.all(this.bookies.map(b => b.stop()))
  }
}

/** Run until SIGINT/SIGTERM, then stop every bookie cleanly; a second signal exits at once. */
export async function runStandalone(o: StandaloneOptions, onReady: (info: StandaloneInfo) => void): Promise<StandaloneInfo> {
  const s = await Standalone.start(o)
  // Signal handlers first, readiness after: a manager may stop us the moment it hears READY=1.
  const stopped = new Promise<void>((resolveStop, reject) => {
    let signalled = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) process.exit(signal === 'SIGINT' ? 130 : 143)
      signalled = true
      o.logger.info({event: 'stopping', signal}, 'standalone cluster stopping')
      s.stop().then(resolveStop, reject)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
  onReady(s.info)
  await notify({ready: true, status: `standalone cluster: ${s.info.bookies.length} bookies`})
  await stopped
  return s.info
}
