/**
 * Where CRC32C verification of an add batch should run, measured on the engine's real path
 * (StorageEngine.addBatch): inline on the main thread, or on the codec pool (piscina) with the request body's
 * ArrayBuffer transferred there and back. For each batch size it reports the main thread's CPU per batch
 * (Linux schedstat of the main thread: what the bookie's event loop pays) and the wall time per batch; the
 * engine's default `verifyOffloadBytes` should sit where offload starts to save main-thread time.
 *
 *   npm run bench:offload            (tsc -b && node dist/benchmarks/offload.js [--rounds N] [--json])
 */
import {rmSync} from 'node:fs'
import {join} from 'node:path'
import {entryDigest} from '../src/checksum.js'
import {StorageEngine, type AddRequest} from '../src/engine/engine.js'
import {machineInfo, machineLine, mainThreadNs, pickDir} from './lib/machine.js'

const ENTRY = 16 * 1024
const SIZES = [16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]
const args = process.argv.slice(2)
const rounds = Number(args[args.indexOf('--rounds') + 1] ?? NaN) || 40
const json = args.includes('--json')

function batch(ledgerId: bigint, first: bigint, bytes: number): {body: Buffer; reqs: AddRequest[]} {
  const n = Math.max(1, Math.floor(bytes / ENTRY))
  const body = Buffer.allocUnsafeSlow(n * ENTRY) // owns its ArrayBuffer, as a request body does
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i)
  const reqs = Array.from({length: n}, (_, k) => {
    const entryId = first + BigInt(k)
    const payload = body.subarray(k * ENTRY, (k + 1) * ENTRY)
    return {ledgerId, entryId, lac: entryId - 1n, payload, digest: entryDigest(ledgerId, entryId, entryId - 1n, payload)}
  })
  return {body, reqs}
}

async function cell(root: string, bytes: number, offload: boolean): Promise<{mainUs: number; wallUs: number}> {
  const dir = join(root, `${bytes}-${offload ? 'pool' : 'inline'}`)
  const engine = await StorageEngine.open({dir, compactIntervalMs: 0, maxEntryBytes: ENTRY, maxBatchBytes: 8 * 1024 * 1024, verifyOffloadBytes: offload ? 0 : 2 ** 40})
  let main = 0
  let wall = 0
  let next = 0n
  try {
    for (let r = -3; r < rounds; r++) { // 3 warm-up rounds (pool start-up, page cache)
      const {body, reqs} = batch(1n, next, bytes)
      next += BigInt(reqs.length)
      const m0 = mainThreadNs()
      const t0 = process.hrtime.bigint()
      const out = await engine.addBatch(reqs, {transfer: body.buffer as ArrayBuffer})
      const t1 = process.hrtime.bigint()
      const m1 = mainThreadNs()
      if (out.some(e => e !== undefined)) throw new Error(`batch failed: ${out.find(e => e)?.message}`)
      if (r >= 0) {
        main += m1 - m0
        wall += Number(t1 - t0)
      }
    }
    if (offload && engine.status().codecOffloads === 0) throw new Error('the pool was never used')
  } finally {
    await engine.close()
    rmSync(dir, {recursive: true, force: true})
  }
  return {mainUs: main / rounds / 1000, wallUs: wall / rounds / 1000}
}

const {root, mount} = pickDir('logctl-offload-', undefined)
const results: Array<{batchBytes: number; inline: {mainUs: number; wallUs: number}; pool: {mainUs: number; wallUs: number}}> = []
try {
  for (const bytes of SIZES) {
    const inline = await cell(root, bytes, false)
    const pool = await cell(root, bytes, true)
    results.push({batchBytes: bytes, inline, pool})
  }
} finally {
  rmSync(root, {recursive: true, force: true})
}
if (json) {
  process.stdout.write(`${JSON.stringify({machine: machineInfo(mount), rounds, results}, null, 2)}\n`)
} else {
  console.log(machineLine(machineInfo(mount), root))
  console.log(`addBatch of 16 KiB entries, ${rounds} batches per cell; main-thread CPU µs and wall µs per batch`)
  console.log('batch      inline main  pool main  saved   inline wall  pool wall')
  for (const r of results) {
    const saved = r.inline.mainUs - r.pool.mainUs
    console.log(`${String(r.batchBytes / 1024).padStart(5)} KiB  ${r.inline.mainUs.toFixed(0).padStart(11)}  ${r.pool.mainUs.toFixed(0).padStart(9)}  ${saved.toFixed(0).padStart(5)}  ${r.inline.wallUs.toFixed(0).padStart(11)}  ${r.pool.wallUs.toFixed(0).padStart(9)}`)
  }
}
