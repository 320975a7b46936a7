import {Args} from '@oclif/core'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'
import {parseOffset} from '../log-flags.js'

export default class CursorSet extends BaseCommand {
  static override summary = "Set a cursor's position: the next offset its consumer reads"
  static override args = {
    name: Args.string({description: 'log name', required: true}),
    cursor: Args.string({description: 'cursor name', required: true}),
    offset: Args.string({description: 'next offset to read', required: true}),
  }

  static override flags = {...clusterFlags}

  async run(): Promise<{log: string; cursor: string; offset: bigint}> {
    const {args, flags} = await this.parse(CursorSet)
    const offset = parseOffset(args.offset)
    await withClient(flags, async c => (await c.openLog(args.name)).cursor(args.cursor).commit(offset))
    this.log(`cursor ${args.cursor} of ${args.name} set to ${offset}`)
    return {log: args.name, cursor: args.cursor, offset}
  }
}
