import {Flags} from '@oclif/core'
import {defaultStandaloneDir, readConfigFile} from '../config.js'
import {createLogger} from '../server/bookie.js'
import {runStandalone} from '../server/standalone.js'
import {BaseCommand} from './base.js'

export default class Standalone extends BaseCommand {
  static override summary = 'Run a complete local cluster in the foreground: embedded metadata and N bookies'
  static override description = `Starts the embedded SQLite metadata store and --bookies bookies (3 by default, so replication is real),
each with its own data directory under --data-dir. Data is kept across restarts. Every other logctl command
on this machine finds the cluster with no flags. Ctrl-C stops it cleanly.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --bookies 1 --data-dir /tmp/logctl --port 4181']
  static override flags = {
    bookies: Flags.integer({description: 'number of bookies', default: 3, min: 1, max: 16}),
    'data-dir': Flags.string({description: 'where the metadata and the bookies keep their data [default: ~/.logctl/standalone]', env: 'LOGCTL_DATA_DIR'}),
    port: Flags.integer({description: 'port of the first bookie (bookie i uses port + i; 0 = any free ports)', default: 3181, min: 0, max: 65535}),
    'log-level': Flags.string({description: 'log level', options: ['fatal', 'error', 'warn', 'info', 'debug'], env: 'LOGCTL_LOG_LEVEL'}),
  }

  /** Under --json the ready line is the output (one JSON line); nothing more is printed at the stop. */
  async run(): Promise<undefined> {
    const {flags} = await this.parse(Standalone)
    const logger = createLogger(flags['log-level'] ?? readConfigFile().logLevel ?? 'warn')
    await runStandalone({dataDir: flags['data-dir'] ?? defaultStandaloneDir(), bookies: flags.bookies, port: flags.port, host: '127.0.0.1', logger}, info => {
      this.logToStderr(`logctl standalone: ${info.bookies.length} bookies, metadata ${info.metadata}`)
      for (const b of info.bookies) this.logToStderr(`  ${b.id} listening on ${b.address}`)
      this.logToStderr(`data in ${info.dataDir}; Ctrl-C stops the cluster (the data stays).`)
      this.logToStderr('Try, in another terminal:')
      this.logToStderr('  logctl create demo && printf "hello\\nworld\\n" | logctl append demo && logctl read demo')
      this.logToStderr('  logctl read demo --follow          # and append more from a third terminal')
      this.logToStderr('  logctl bench append --duration 10  # measure this machine')
      if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({event: 'ready', ...info})}\n`)
      else this.log('ready')
    })
    return undefined
  }
}
