import {Args} from '@oclif/core'
import {join} from 'node:path'
import {ErrorCode, LogError} from '../../errors.js'
import {verifyDataDir, type VerifySummary} from '../../engine/inspect.js'
import {BaseCommand} from '../base.js'

export default class StorageVerify extends BaseCommand {
  static override summary = 'Check every record of a data directory (read-only)'
  static override description = `Scans every segment of a bookie's data directory from start to end, checks each record's header
checksum and payload digest, checks index.ckpt and the index pieces it names, and counts ledgers and entries the way a restart would.
Nothing is modified. A torn tail (the unfinished last write of a crash, never acknowledged) is reported
but is not an error; any other damage exits with code 7.`

  static override examples = ['<%= config.bin %> <%= command.id %> /var/lib/logd', '<%= config.bin %> <%= command.id %> /var/lib/logd --json']
  static override args = {dir: Args.string({description: 'data directory of a bookie', required: true})}

  async run(): Promise<VerifySummary> {
    const {args} = await this.parse(StorageVerify)
    const s = verifyDataDir(args.dir)
    this.log(`${s.dir}: ${s.segments} segments, ${s.records} records`)
    this.log(`  ledgers     ${s.ledgers} (${s.fencedLedgers} fenced, ${s.deletedLedgers} deleted)`)
    this.log(`  entries     ${s.entries}`)
    this.log(`  bytes       ${s.bytes} (payload)`)
    this.log(`  checkpoint  ${!s.checkpoint.present ? 'none' : s.checkpoint.valid ? 'valid' : 'INVALID'}`)
    if (s.lockedBy !== null) this.log(`  note: process ${s.lockedBy} holds this directory; its last segment may still be growing`)
    if (s.problems.length > 0) this.log(`${s.problems.length} problem(s):`)
    for (const p of s.problems) this.log(`${join(s.dir, p.file)}:${p.offset}  ${p.kind}  ${p.reason}${p.bytes > 0 ? ` (${p.bytes} bytes)` : ''}`)
    const corrupt = s.problems.filter(p => p.kind !== 'torn-tail')
    if (corrupt.length > 0) {
      this.failAfterResult(new LogError(ErrorCode.CORRUPT, `${s.dir}: ${corrupt.length} damaged region(s) or file(s)`, {detail: {dir: s.dir, problems: corrupt.length}}))
    } else if (s.problems.length > 0) {
      this.log('note: a torn tail is the unfinished last write of a crash; nothing in it was acknowledged. The bookie cuts it (keeping a copy under torn/) when it next starts.')
    } else {
      this.log('OK')
    }
    return s
  }
}
