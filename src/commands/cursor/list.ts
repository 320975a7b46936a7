import {Args} from '@oclif/core'
import {BaseCommand, formatTable} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class CursorList extends BaseCommand {
  static override summary = "List a log's cursors and how far behind the end each one is"
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<{cursors: Array<{name: string; offset: bigint; lag: bigint; updatedAt: number}>}> {
    const {args, flags} = await this.parse(CursorList)
    const info = await withClient(flags, async c => (await c.openLog(args.name)).info())
    const cursors = info.cursors.map(c => ({...c, lag: info.endOffset > c.offset ? info.endOffset - c.offset : 0n}))
    for (const l of formatTable([{header: 'CURSOR'}, {header: 'OFFSET', align: 'right'}, {header: 'LAG', align: 'right'}, {header: 'UPDATED'}], cursors.map(c => [c.name, String(c.offset), String(c.lag), new Date(c.updatedAt).toISOString()]))) this.log(l)
    return {cursors}
  }
}
