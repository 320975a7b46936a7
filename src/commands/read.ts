import {Args, Flags} from '@oclif/core'
import {ErrorCode, LogError} from '../errors.js'
import {BaseCommand} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'
import {offsetFlag} from './log-flags.js'

export default class Read extends BaseCommand {
  static override summary = 'Read a log from an offset or a cursor, one entry per line (--follow to tail it)'
  static override examples = ['<%= config.bin %> <%= command.id %> orders --from 0 --limit 10', '<%= config.bin %> <%= command.id %> orders --cursor billing --follow --commit --json']
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {
    ...clusterFlags,
    from: offsetFlag({description: 'first offset (default: the start of the log)', exclusive: ['cursor']}),
    cursor: Flags.string({char: 'c', description: "start at this cursor's position"}),
    limit: Flags.integer({char: 'n', description: 'at most this many entries', min: 1}),
    follow: Flags.boolean({char: 'f', description: 'keep reading new entries as they are appended'}),
    commit: Flags.boolean({description: 'with --cursor: commit the position after each entry is printed'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Read)
    if (flags.commit && !flags.cursor) throw new LogError(ErrorCode.BAD_INPUT, '--commit needs --cursor')
    const json = this.jsonEnabled()
    const ac = new AbortController()
    process.once('SIGINT', () => ac.abort())
    await withClient(flags, async client => {
      const log = await client.openLog(args.name)
      const cursor = flags.cursor ? log.cursor(flags.cursor) : undefined
      const from = cursor ? await cursor.position() : flags.from
      const opts = {follow: flags.follow, signal: ac.signal, ...(from === undefined ? {} : {from}), ...(flags.limit === undefined ? {} : {limit: flags.limit})}
      for await (const e of log.read(opts)) {
        process.stdout.write(json ? `${JSON.stringify({offset: String(e.offset), time: new Date(e.timestamp).toISOString(), payload: e.payload.toString('utf8')})}\n` : `${e.payload.toString('utf8')}\n`)
        if (cursor && flags.commit) await cursor.commit(e.offset + 1n)
      }
    })
  }
}
