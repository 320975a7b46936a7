import {Args} from '@oclif/core'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class LogDelete extends BaseCommand {
  static override summary = 'Delete a log, its cursors and all its segments'
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<{name: string; ledgers: number}> {
    const {args, flags} = await this.parse(LogDelete)
    const r = await withClient(flags, c => c.deleteLog(args.name))
    this.log(`deleted log ${args.name} (${r.ledgers} segments)`)
    return {name: args.name, ...r}
  }
}
