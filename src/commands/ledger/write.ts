import {Flags} from '@oclif/core'
import {createReadStream} from 'node:fs'
import {createInterface} from 'node:readline'
import {Pipeline} from '../../client/pipeline.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

export interface LedgerWriteResult {
  ledgerId: bigint
  entries: number
  bytes: number
  seconds: number
}

export default class LedgerWrite extends BaseCommand {
  static override summary = 'Create a ledger and append each line of stdin (or of --file) as one entry, then close it'
  static override examples = ['printf "a\\nb\\n" | <%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --file events.jsonl -e 3 -w 2 -a 2 --json']
  static override flags = {
    ...clusterFlags,
    file: Flags.string({char: 'f', description: 'read lines from this file instead of stdin'}),
    ensemble: Flags.integer({char: 'e', description: 'ensemble size E', default: 3, min: 1}),
    'write-quorum': Flags.integer({char: 'w', description: 'write quorum Qw (<= E)', default: 3, min: 1}),
    'ack-quorum': Flags.integer({char: 'a', description: 'ack quorum Qa (<= Qw)', default: 2, min: 1}),
    compression: Flags.string({description: 'store entries compressed', options: ['none', 'lz4'], default: 'none'}),
  }

  async run(): Promise<LedgerWriteResult> {
    const {flags} = await this.parse(LedgerWrite)
    const input = flags.file ? createReadStream(flags.file) : process.stdin
    const result = await withClient(flags, async client => {
      const w = await client.createLedger({ensembleSize: flags.ensemble, writeQuorum: flags['write-quorum'], ackQuorum: flags['ack-quorum'], compression: flags.compression as 'none' | 'lz4'})
      const t0 = Date.now()
      let entries = 0
      let bytes = 0
      const pipe = new Pipeline<bigint>(1024) // bounded: memory stays flat however long the input runs
      for await (const line of createInterface({input, crlfDelay: Infinity})) {
        await pipe.push(() => w.append(line))
        entries++
        bytes += Buffer.byteLength(line)
      }
      await pipe.drain()
      await w.close()
      return {ledgerId: w.ledgerId, entries, bytes, seconds: (Date.now() - t0) / 1000}
    })
    this.log(String(result.ledgerId))
    this.logToStderr(`ledger ${result.ledgerId}: ${result.entries} entries, ${result.bytes} bytes in ${result.seconds.toFixed(2)} s`)
    return result
  }
}
