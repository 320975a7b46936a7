import {Flags} from '@oclif/core'
import {runEngineDemo, type DemoResult} from '../demo/engine-demo.js'
import {BaseCommand, ledgerFlag} from './base.js'

export default class Demo extends BaseCommand {
  static override summary = 'Run the storage engine on this machine: durable appends, read-back, restart, verify'
  static override description = `Appends entries to a ledger in a local data directory, each acknowledged only after fdatasync
(group commit), reads every one back, restarts the engine, and verifies the directory. Prints throughput
and latency as measured on this disk. Run it again to append more to the same directory.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --entries 200000 --size 1024 --json']
  static override flags = {
    dir: Flags.string({description: 'data directory', default: 'logctl-demo-data'}),
    entries: Flags.integer({description: 'entries to append', default: 100_000}),
    size: Flags.integer({description: 'payload bytes per entry', default: 1024}),
    'in-flight': Flags.integer({description: 'adds in flight at once', default: 256}),
    ledger: ledgerFlag({description: 'ledger id', default: 1n}),
  }

  async run(): Promise<DemoResult> {
    const {flags} = await this.parse(Demo)
    const r = await runEngineDemo({dir: flags.dir, entries: flags.entries, size: flags.size, inFlight: flags['in-flight'], ledgerId: flags.ledger, onProgress: line => this.logToStderr(line)})
    this.log(`${r.entries} entries (${(r.bytes / 1048576).toFixed(1)} MiB) durable in ${r.seconds.toFixed(2)} s: ${Math.round(r.entriesPerSecond)} entries/s, ${r.mbPerSecond.toFixed(1)} MB/s`)
    this.log(`latency ms: p50 ${r.latencyMs.p50.toFixed(2)}  p99 ${r.latencyMs.p99.toFixed(2)}  max ${r.latencyMs.max.toFixed(2)}  (${r.groupCommits} group commits, ${(r.entries / Math.max(1, r.groupCommits)).toFixed(1)} entries each)`)
    this.log(`read back ${r.readBack} entries; after restart the ledger holds ${r.afterRestart.entries}`)
    this.log(`verify: ${r.verify.segments} segments, ${r.verify.ledgers} ledgers, ${r.verify.entries} entries, ${r.verify.problems.length} problems`)
    return r
  }
}
