import {Args, Flags} from '@oclif/core'
import {createInterface} from 'node:readline'
import {Pipeline} from '../client/pipeline.js'
import {BaseCommand} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'

export default class Append extends BaseCommand {
  static override summary = 'Append each line of stdin (or each --message) to a log as one entry'
  static override description = `Entries are pipelined; with --json one line {"offset":N} is printed per entry, in order, as soon as it
is acknowledged (durable on the ack quorum), so a caller knows exactly what is durable. Memory stays
bounded however long stdin runs (tail -F app.log | logctl append app-logs).`

  static override examples = ['tail -F app.log | <%= config.bin %> <%= command.id %> app-logs', '<%= config.bin %> <%= command.id %> orders -m \'{"id":1}\' -m \'{"id":2}\' --json']
  static override args = {name: Args.string({description: 'log name', required: true})}
  static override flags = {...clusterFlags, message: Flags.string({char: 'm', description: 'an entry to append (repeatable; stdin is not read then)', multiple: true})}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Append)
    const json = this.jsonEnabled()
    const t0 = Date.now()
    const {entries, last} = await withClient(flags, async client => {
      const log = await client.openLog(args.name)
      let entries = 0
      let last: bigint | undefined
      // At most 1024 appends outstanding; acks are printed in order as soon as each is durable.
      const pipe = new Pipeline<bigint>(1024, off => {
        last = off
        if (json) process.stdout.write(`{"offset":${off}}\n`)
      })
      const add = (line: string): Promise<void> => {
        entries++
        return pipe.push(() => log.append(line))
      }
      if (flags.message) for (const m of flags.message) await add(m)
      else for await (const line of createInterface({input: process.stdin, crlfDelay: Infinity})) await add(line)
      await pipe.drain()
      await log.close()
      return {entries, last}
    })
    this.logToStderr(`appended ${entries} entries to ${args.name}${last === undefined ? '' : ` (last offset ${last})`} in ${((Date.now() - t0) / 1000).toFixed(2)} s`)
  }
}
