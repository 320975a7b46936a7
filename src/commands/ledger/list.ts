import {Flags} from '@oclif/core'
import {BaseCommand, formatTable} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export interface LedgerListRow {
  ledgerId: bigint
  state: string
  lastEntryId: bigint
  length: bigint
  ensemble: string
}

export default class LedgerList extends BaseCommand {
  static override summary = 'List ledgers'
  static override flags = {...clusterFlags, limit: Flags.integer({description: 'at most this many', default: 1000, min: 1})}

  async run(): Promise<{ledgers: LedgerListRow[]}> {
    const {flags} = await this.parse(LedgerList)
    const ledgers = await withClient(flags, async c => {
      const ids = await c.listLedgers({limit: flags.limit})
      const rows: LedgerListRow[] = []
      for (const id of ids) {
        const m = await c.ledgerInfo(id).catch(() => undefined) // deleted meanwhile
        if (m) rows.push({ledgerId: id, state: m.state, lastEntryId: m.lastEntryId, length: m.length, ensemble: `${m.ensembleSize}/${m.writeQuorum}/${m.ackQuorum}`})
      }
      return rows
    })
    const lines = formatTable(
      [{header: 'LEDGER', align: 'right'}, {header: 'STATE'}, {header: 'LAST ENTRY', align: 'right'}, {header: 'BYTES', align: 'right'}, {header: 'E/Qw/Qa'}],
      ledgers.map(l => [String(l.ledgerId), l.state, l.state === 'CLOSED' ? String(l.lastEntryId) : '-', String(l.length), l.ensemble]),
    )
    for (const l of lines) this.log(l)
    return {ledgers}
  }
}
