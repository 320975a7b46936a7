/**
 * Where CRC32C verification runs. Inline costs ~0.2 µs per KiB on the main thread; one piscina task costs
 * the main thread ~14 µs plus the transfer (../shared/reference/limits.md §3), so only batches of at least
 * `verifyOffloadBytes` whose payloads share one
 * ArrayBuffer that the caller hands over (a request body) go to the pool. Nothing is ever copied for it.
 * The default (2 MiB) comes from measuring the real path: benchmarks/offload.ts put the break-even between
 * 256 KiB and 2 MiB per batch, and benchmarks/cluster.ts ran one bookie 18 % faster with 512 KiB request
 * bodies verified inline than on the pool (docs/BENCHMARKS.md).
 * The pool is created on first use and belongs to one engine: no process-wide singleton.
 */
import {Piscina} from 'piscina'
import type {VerifyResult, VerifyTask} from './codec-worker.js'

export interface VerifyItem {
  payload: Buffer
  ledgerId: bigint
  entryId: bigint
  lac: bigint
  digest: number
}

export class CodecPool {
  private pool: Piscina | undefined
  offloaded = 0

  constructor(private readonly threads: number) {}

  /**
   * Verify on a worker. `items[i].payload` must be views of `buf`; returns the indexes that failed and the
   * payloads re-made as views of the buffer that came back.
   */
  async verify(buf: ArrayBuffer, items: VerifyItem[]): Promise<{bad: Set<number>; payloads: Buffer[]}> {
    this.pool ??= new Piscina({filename: new URL('./codec-worker.js', import.meta.url).href, minThreads: 1, maxThreads: this.threads, idleTimeout: 30_000})
    const task: VerifyTask = {
      buf,
      items: items.map(it => ({off: it.payload.byteOffset, len: it.payload.length, ledgerId: it.ledgerId, entryId: it.entryId, lac: it.lac, digest: it.digest})),
    }
    const res = (await this.pool.run(task, {transferList: [buf]})) as VerifyResult
    this.offloaded++
    const back = res instanceof ArrayBuffer ? res : res.buf
    return {bad: new Set(res instanceof ArrayBuffer ? [] : res.bad), payloads: task.items.map(it => Buffer.from(back, it.off, it.len))}
  }

  async close(): Promise<void> {
    await this.pool?.destroy()
    this.pool = undefined
  }
}
