import {Flags} from '@oclif/core'
import {ErrorCode, LogError} from '../errors.js'
import {createLogger, runDaemon} from '../server/bookie.js'
import {systemdUnit} from '../server/systemd.js'
import {BaseCommand} from './base.js'

export default class Daemon extends BaseCommand {
  static override summary = 'Run a bookie: store entries of ledgers and serve them over HTTP/2'
  static override description = `Opens the data directory (replaying the journal after a crash), serves the bookie protocol on
--listen (h2c; docs/PROTOCOL.md), registers in the metadata store and keeps the registration fresh.
Logs are JSON lines on stdout; a line with "event":"ready" says where it listens. SIGTERM or SIGINT stops
it cleanly (in-flight adds finish, final checkpoint, deregistration); a second signal exits at once.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --data-dir /var/lib/logd --listen 0.0.0.0:3181 --advertise bookie1:3181 --metadata etcd://etcd1:2379',
    '<%= config.bin %> <%= command.id %> --data-dir /tmp/b1 --listen 127.0.0.1:0 --metadata sqlite:/tmp/meta.db',
  ]

  static override flags = {
    'data-dir': Flags.string({description: 'data directory (created if missing) [default: $STATE_DIRECTORY under systemd]', env: 'LOGCTL_DATA_DIR'}),
    'print-systemd-unit': Flags.boolean({description: 'print a hardened systemd unit that runs this daemon with the other flags given, and exit'}),
    listen: Flags.string({description: 'host:port to listen on (port 0 = any free port)', default: '127.0.0.1:3181'}),
    advertise: Flags.string({description: 'host:port clients should use (default: the bound address)'}),
    metadata: Flags.string({description: 'metadata store URL: sqlite:/path/meta.db or etcd://host:port (none = do not register)', env: 'LOGCTL_METADATA'}),
    'bookie-id': Flags.string({description: 'bookie id in the metadata store (default: the advertised address)'}),
    'log-level': Flags.string({description: 'log level', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info'}),
  }

  /** Prints nothing at the end under --json (stdout carries the daemon's JSON log lines); --print-systemd-unit returns {unit}. */
  async run(): Promise<{unit: string} | undefined> {
    const {flags} = await this.parse(Daemon)
    if (flags['print-systemd-unit']) {
      const args = ['--listen', flags.listen, ...(flags.advertise ? ['--advertise', flags.advertise] : []), ...(flags.metadata ? ['--metadata', flags.metadata] : []), ...(flags['bookie-id'] ? ['--bookie-id', flags['bookie-id']] : []), ...(flags['data-dir'] ? ['--data-dir', flags['data-dir']] : [])]
      const unit = systemdUnit({args})
      this.log(unit.trimEnd())
      return {unit}
    }
    const dataDir = flags['data-dir'] ?? process.env['STATE_DIRECTORY']?.split(':')[0]
    if (!dataDir) throw new LogError(ErrorCode.BAD_INPUT, 'no data directory: pass --data-dir (or LOGCTL_DATA_DIR; under systemd, StateDirectory= sets it)')
    await runDaemon({
      dataDir,
      listen: flags.listen,
      logger: createLogger(flags['log-level']),
      ...(flags.advertise === undefined ? {} : {advertise: flags.advertise}),
      ...(flags.metadata === undefined ? {} : {metadata: flags.metadata}),
      ...(flags['bookie-id'] === undefined ? {} : {bookieId: flags['bookie-id']}),
    })
    return undefined
  }
}
