import {Args} from '@oclif/core'
import type {LogInfo} from '../../client/log-handle.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class LogInfoCommand extends BaseCommand {
  static override summary = "Show a log: offsets, segments, configuration, writer and cursors"
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<LogInfo> {
    const {args, flags} = await this.parse(LogInfoCommand)
    const i = await withClient(flags, async c => (await c.openLog(args.name)).info())
    this.log(`log ${i.name}: offsets ${i.firstOffset}..${i.endOffset - 1n} (${i.entries} entries, ${i.bytes} bytes in closed segments)`)
    this.log(`  E=${i.config.ensembleSize} Qw=${i.config.writeQuorum} Qa=${i.config.ackQuorum}, segment ${i.config.segmentBytes} bytes, retention ${i.config.retentionMs / 3600_000} h / ${i.config.retentionBytes} bytes`)
    this.log(`  writer: ${i.writer ? `${i.writer.host} pid ${i.writer.pid} since ${new Date(i.writer.since).toISOString()}` : 'none'}`)
    for (const s of i.segments) this.log(`  segment ledger ${s.ledgerId}: from ${s.firstOffset}${s.state === 'CLOSED' ? ` to ${s.lastOffset}, ${s.bytes} bytes` : ' (open)'}`)
    for (const c of i.cursors) this.log(`  cursor ${c.name} at ${c.offset}`)
    return i
  }
}
