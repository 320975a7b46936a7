import {Args} from '@oclif/core'
import {ledgerId} from '../../ids.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class LedgerDelete extends BaseCommand {
  static override summary = 'Delete a ledger from metadata and from every bookie that holds it'
  static override args = {id: Args.string({description: 'ledger id', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<{ledgerId: bigint; unreached: string[]}> {
    const {args, flags} = await this.parse(LedgerDelete)
    const id = ledgerId(args.id)
    const {unreached} = await withClient(flags, c => c.deleteLedger(id))
    this.log(`deleted ledger ${id}`)
    if (unreached.length > 0) this.logToStderr(`warning: bookies ${unreached.join(', ')} were unreachable and still hold its data until they are cleaned`)
    return {ledgerId: id, unreached}
  }
}
