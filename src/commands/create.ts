import {Args, Flags} from '@oclif/core'
import type {LogMeta} from '../client/log-meta.js'
import {BaseCommand} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'

export default class Create extends BaseCommand {
  static override summary = 'Create a named log'
  static override examples = ['<%= config.bin %> <%= command.id %> orders', '<%= config.bin %> <%= command.id %> app-logs --segment-bytes 67108864 --retention-hours 168 --compression lz4']
  static override args = {name: Args.string({description: 'log name (letters, digits, . _ -)', required: true})}
  static override flags = {
    ...clusterFlags,
    ensemble: Flags.integer({char: 'e', description: 'ensemble size E of each segment', default: 3, min: 1}),
    'write-quorum': Flags.integer({char: 'w', description: 'write quorum Qw', default: 3, min: 1}),
    'ack-quorum': Flags.integer({char: 'a', description: 'ack quorum Qa', default: 2, min: 1}),
    'segment-bytes': Flags.integer({description: 'roll to a new segment after this many bytes', default: 256 * 1024 * 1024, min: 1}),
    'segment-entries': Flags.integer({description: 'roll after this many entries (0 = no limit)', default: 0, min: 0}),
    'segment-seconds': Flags.integer({description: 'roll when a segment is this old (0 = no limit)', default: 0, min: 0}),
    'retention-hours': Flags.integer({description: 'delete segments older than this (0 = forever)', default: 0, min: 0}),
    'retention-bytes': Flags.integer({description: 'delete the oldest segments while the log is larger (0 = no limit)', default: 0, min: 0}),
    compression: Flags.string({options: ['none', 'lz4'], default: 'none', description: 'store entries compressed'}),
  }

  async run(): Promise<LogMeta> {
    const {args, flags} = await this.parse(Create)
    const m = await withClient(flags, c => c.createLog(args.name, {
      ensembleSize: flags.ensemble, writeQuorum: flags['write-quorum'], ackQuorum: flags['ack-quorum'],
      segmentBytes: flags['segment-bytes'], segmentEntries: flags['segment-entries'], segmentAgeMs: flags['segment-seconds'] * 1000,
      retentionMs: flags['retention-hours'] * 3600_000, retentionBytes: flags['retention-bytes'], compression: flags.compression as 'none' | 'lz4',
    }))
    this.log(`created log ${m.name}`)
    return m
  }
}
