import {spawn, type ChildProcess} from 'node:child_process'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'
import type {LogctlClient} from '../../src/client/client.js'
import {Conditions} from '../helpers/conditions.js'
import {payloadFor} from '../helpers/entries.js'

const WRITER = fileURLToPath(new URL('./fixtures/writer-child.js', import.meta.url))

/** A writer child process (test/client/fixtures/writer-child.ts) and what it has reported so far. */
export class WriterChild extends Conditions {
  ledgerId = -1n
  readonly acked: bigint[] = []
  error: string | undefined
  readonly child: ChildProcess
  readonly exited: Promise<void>

  constructor(metadata: string, quorum: [number, number, number], count = 1_000_000) {
    super()
    this.child = spawn(process.execPath, [WRITER, metadata, ...quorum.map(String), String(count)], {stdio: ['ignore', 'pipe', 'inherit']})
    this.exited = new Promise(resolve => this.child.on('exit', () => resolve()))
    createInterface({input: this.child.stdout!}).on('line', line => {
      const [kind, value] = line.split(' ')
      if (kind === 'ledger') this.ledgerId = BigInt(value!)
      else if (kind === 'ack') this.acked.push(BigInt(value!))
      else if (kind === 'error') this.error = value
      this.notify()
    })
    this.exited.then(() => this.notify())
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal)
  }
}

/**
 * Read the whole closed ledger and check: ids 0..last, each exactly once and in order, every acknowledged
 * id present, every payload byte for byte what the writer sent. Returns the number of entries.
 */
export async function checkLedger(client: LogctlClient, ledgerId: bigint, acked: readonly bigint[], fail: (msg: string) => void): Promise<number> {
  const r = await client.openLedger(ledgerId)
  const last = r.lastConfirmed
  const maxAcked = acked.reduce((m, x) => (x > m ? x : m), -1n)
  if (last < maxAcked) fail(`ledger ${ledgerId}: last entry ${last} is below the highest acknowledged ${maxAcked}`)
  if (last < 0n) return 0
  const entries = await r.read(0n, last)
  entries.forEach((e, i) => {
    if (e.entryId !== BigInt(i)) fail(`ledger ${ledgerId}: position ${i} holds entry ${e.entryId}`)
    else if (!e.payload.equals(payloadFor(ledgerId, e.entryId))) fail(`ledger ${ledgerId}: entry ${e.entryId} differs`)
  })
  return entries.length
}
