/**
 * Main-thread pauses of the bookie's in-memory index (src/engine/ledger-index.ts) and of a checkpoint's
 * snapshot (src/engine/checkpoint.ts): every add waits while either runs. Appends N ascending entries to one
 * ledger's index and reports the longest single put() (the index's growth) and the puts over 1 ms; then
 * times encodeCheckpoint (the synchronous part of a checkpoint) on that index.
 *
 *   npx tsc -b && node dist/benchmarks/index-pauses.js [--entries N] [--json]
 */
import {performance} from 'node:perf_hooks'
import {parseArgs} from 'node:util'
import {encodeCheckpoint} from '../src/engine/checkpoint.js'
import {EngineState} from '../src/engine/state.js'
import {BASE_FLAGS, fmtInt, machineInfo, machineLine, toJson} from './lib/machine.js'

const {values: flags} = parseArgs({options: {...BASE_FLAGS, entries: {type: 'string'}}})
const N = Number(flags.entries ?? (flags.quick ? 300_000 : 2_200_000))

function main(): void {
  const state = new EngineState()
  const l = state.ledgerFor(1n)
  const slow: Array<{entry: number; ms: number}> = []
  let longest = 0
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const t = performance.now()
    l.put(i, 1, 64 + i * 1080, 1080, i >>> 0)
    const ms = performance.now() - t
    if (ms > longest) longest = ms
    if (ms > 1) slow.push({entry: i, ms})
  }
  const putsPerSec = N / ((performance.now() - t0) / 1000)
  const encodes: number[] = []
  for (let k = 0; k < 5; k++) {
    const t = performance.now()
    const enc = encodeCheckpoint(state, {segmentId: 1, offset: 0, lastSeq: 0n})
    encodes.push(performance.now() - t)
    enc.release()
  }
  encodes.sort((a, b) => a - b)
  const results = {entries: N, putsPerSec, longestPutMs: longest, putsOver1ms: slow, checkpointSnapshotMs: {min: encodes[0], median: encodes[2], max: encodes[4]}}
  if (flags.json) {
    process.stdout.write(toJson(results) + '\n')
    return
  }
  console.log('# index pauses (main thread)')
  console.log(machineLine(machineInfo(undefined), '(memory only)'))
  console.log(`${fmtInt(N)} ascending puts into one ledger's index: ${fmtInt(putsPerSec)} puts/s; longest put ${longest.toFixed(2)} ms; puts over 1 ms: ${slow.length ? slow.map(s => `#${fmtInt(s.entry)} ${s.ms.toFixed(2)} ms`).join(', ') : 'none'}`)
  console.log(`checkpoint snapshot (encodeCheckpoint) of ${fmtInt(N)} entries: min ${encodes[0]!.toFixed(2)} ms, median ${encodes[2]!.toFixed(2)} ms, max ${encodes[4]!.toFixed(2)} ms (5 runs)`)
}

main()
