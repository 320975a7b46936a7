/**
 * Codec pool task (piscina): verify the end-to-end digests of a batch of entries whose payloads all live
 * in one transferred ArrayBuffer, and hand the buffer back (moved, not copied).
 */
import {Piscina} from 'piscina'
import {entryDigest} from '../checksum.js'

export interface VerifyTask {
  buf: ArrayBuffer
  items: Array<{off: number; len: number; ledgerId: bigint; entryId: bigint; lac: bigint; digest: number}>
}

export type VerifyResult = ArrayBuffer | {buf: ArrayBuffer; bad: number[]}

export default function verify(task: VerifyTask): unknown {
  const bad: number[] = []
  task.items.forEach((it, i) => {
    if (entryDigest(it.ledgerId, it.entryId, it.lac, Buffer.from(task.buf, it.off, it.len)) !== it.digest) bad.push(i)
  })
  // Piscina.move only transfers a top-level return value, so the common case (all good) returns the bare
  // buffer, moved; a batch with bad entries (rare) returns it with the list and pays for a copy.
  return bad.length === 0 ? Piscina.move(task.buf) : {buf: task.buf, bad}
}
