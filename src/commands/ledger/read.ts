import {Args, Flags} from '@oclif/core'
import {entryId, ledgerId} from '../../ids.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

const entryFlag = Flags.custom<bigint>({helpValue: '<n>', parse: async s => entryId(s)})

export default class LedgerRead extends BaseCommand {
  static override summary = 'Print entries of a ledger, one per line (--follow keeps reading as entries are confirmed)'
  static override examples = ['<%= config.bin %> <%= command.id %> 7', '<%= config.bin %> <%= command.id %> 7 --from 100 --to 199 --json', '<%= config.bin %> <%= command.id %> 7 --follow']
  static override args = {id: Args.string({description: 'ledger id', required: true})}
  static override flags = {
    ...clusterFlags,
    from: entryFlag({description: 'first entry id', default: 0n}),
    to: entryFlag({description: 'last entry id (default: the last confirmed, or forever with --follow)'}),
    follow: Flags.boolean({description: 'keep reading new entries until the ledger is closed'}),
    base64: Flags.boolean({description: 'with --json: payload as base64 instead of UTF-8'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(LedgerRead)
    const id = ledgerId(args.id)
    const json = this.jsonEnabled()
    await withClient(flags, async client => {
      const r = await client.openLedger(id)
      const to = flags.to ?? (flags.follow ? undefined : r.lastConfirmed)
      if (to !== undefined && to < flags.from) return
      for await (const e of r.follow({from: flags.from, ...(to === undefined ? {} : {to})})) {
        const line = json
          ? JSON.stringify({entryId: String(e.entryId), size: e.payload.length, payload: e.payload.toString(flags.base64 ? 'base64' : 'utf8')})
          : e.payload.toString('utf8')
        process.stdout.write(`${line}\n`)
      }
    })
  }
}
