import {Args} from '@oclif/core'
import type {LedgerMetadata} from '../../meta/store.js'
import {ledgerId} from '../../ids.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export default class LedgerInfo extends BaseCommand {
  static override summary = "Show a ledger's metadata: state, quorums, last entry, ensembles"
  static override args = {id: Args.string({description: 'ledger id', required: true})}
  static override flags = {...clusterFlags}

  async run(): Promise<LedgerMetadata> {
    const {args, flags} = await this.parse(LedgerInfo)
    const m = await withClient(flags, c => c.ledgerInfo(ledgerId(args.id)))
    this.log(`ledger ${m.ledgerId}: ${m.state}, E=${m.ensembleSize} Qw=${m.writeQuorum} Qa=${m.ackQuorum}, compression ${m.compression}`)
    this.log(`  last entry ${m.state === 'CLOSED' ? m.lastEntryId : '(open)'}, length ${m.length} bytes, created ${new Date(m.createdAt).toISOString()}`)
    for (const e of m.ensembles) this.log(`  from entry ${e.firstEntryId}: ${e.bookies.join(', ')}`)
    return m
  }
}
