import {Args} from '@oclif/core'
import {ledgerId} from '../../ids.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class LedgerRecover extends BaseCommand {
  static override summary = 'Fence and close a ledger whose writer is gone; prints its last entry id'
  static override description = 'The writer, if it is still running, gets FENCED on its next append. Every entry it ever had acknowledged is kept.'
  static override args = {id: Args.string({description: 'ledger id', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<{ledgerId: bigint; lastEntryId: bigint; state: string}> {
    const {args, flags} = await this.parse(LedgerRecover)
    const m = await withClient(flags, c => c.recoverLedger(ledgerId(args.id)))
    this.log(String(m.lastEntryId))
    return {ledgerId: m.ledgerId, lastEntryId: m.lastEntryId, state: m.state}
  }
}
