import {Args} from '@oclif/core'
import {dumpDataDir, type DumpRecord, type SkippedRegion} from '../../engine/inspect.js'
import {BaseCommand, formatTable, ledgerFlag} from '../base.js'

/** A DumpRecord as JSON prints it: 64-bit values as decimal strings. */
export type DumpRecordJson = Omit<DumpRecord, 'ledgerId' | 'entryId' | 'lac' | 'batch'> & {ledgerId: string; entryId: string; lac: string; batch: string}

export interface DumpResult {
  records: DumpRecordJson[]
  /** Regions that hold no valid record (run `storage verify` to classify them). */
  skipped: SkippedRegion[]
}

export default class StorageDump extends BaseCommand {
  static override summary = 'List the records stored in a data directory (read-only)'
  static override description = `Lists every valid record in file order, as stored: entries of deleted ledgers, FENCE and DELETE
records and compacted copies included. Unreadable regions are skipped and counted on stderr.`

  static override examples = ['<%= config.bin %> <%= command.id %> /var/lib/logd', '<%= config.bin %> <%= command.id %> /var/lib/logd --ledger 42 --json']
  static override args = {dir: Args.string({description: 'data directory of a bookie', required: true})}
  static override flags = {ledger: ledgerFlag({char: 'l', description: 'only records of this ledger (unsigned 64-bit decimal)'})}

  async run(): Promise<DumpResult> {
    const {args, flags} = await this.parse(StorageDump)
    const skipped: SkippedRegion[] = []
    const records: DumpRecordJson[] = []
    for (const r of dumpDataDir(args.dir, {ledger: flags.ledger, onSkipped: region => skipped.push(region)})) {
      records.push({...r, ledgerId: String(r.ledgerId), entryId: String(r.entryId), lac: String(r.lac), batch: String(r.batch)})
    }
    if (!this.jsonEnabled()) {
      const flagsOf = (r: DumpRecordJson): string => [r.compressed && 'lz4', r.recovery && 'recovery', r.compacted && 'compacted'].filter(Boolean).join(',') || '-'
      const rows = records.map(r => [r.ledgerId, r.type === 'ENTRY' ? r.entryId : '-', r.type, String(r.size), String(r.stored), r.lac, flagsOf(r), r.segment, String(r.offset)])
      const right = {align: 'right'} as const
      for (const line of formatTable([{header: 'LEDGER', ...right}, {header: 'ENTRY', ...right}, {header: 'TYPE'}, {header: 'SIZE', ...right}, {header: 'STORED', ...right},
        {header: 'LAC', ...right}, {header: 'FLAGS'}, {header: 'SEGMENT'}, {header: 'OFFSET', ...right}], rows)) this.log(line)
      this.logToStderr(`${records.length} record(s)`)
      if (skipped.length > 0) this.logToStderr(`note: skipped ${skipped.length} unreadable region(s); run \`logctl storage verify ${args.dir}\` for details`)
    }
    return {records, skipped}
  }
}
