import {Args, Flags} from '@oclif/core'
import type {RemovalResult} from '../client/log-handle.js'
import {BaseCommand} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'
import {offsetFlag} from './log-flags.js'

export default class Truncate extends BaseCommand {
  static override summary = 'Delete the whole segments of a log that end before an offset'
  static override description = 'Only whole, closed segments are deleted, and only those every cursor has passed, unless --force.'
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {...clusterFlags, before: offsetFlag({description: 'keep this offset and everything after it', required: true}), force: Flags.boolean({description: 'delete even what a cursor has not read yet'})}

  async run(): Promise<RemovalResult> {
    const {args, flags} = await this.parse(Truncate)
    const r = await withClient(flags, async c => (await c.openLog(args.name)).truncate(flags.before, {force: flags.force}))
    this.log(`removed ${r.removedSegments} segments; ${args.name} now starts at offset ${r.firstOffset}`)
    return r
  }
}
