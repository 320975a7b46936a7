import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {entryDigest} from '../../src/checksum.js'
import type {AddRequest} from '../../src/engine/engine.js'

/** A fresh temp directory, removed when the test ends. */
export function tempDir(t: {teardown: (fn: () => void) => void}, prefix = 'logctl-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

/** Deterministic payload for (ledger, entry): any mix-up or corruption shows as a mismatch. */
export function payloadFor(ledgerId: bigint, entryId: bigint, size = 100): Buffer {
  const b = Buffer.alloc(size)
  const seed = `${ledgerId}/${entryId}/`
  for (let i = 0; i < size; i++) b[i] = seed.charCodeAt(i % seed.length) ^ (i & 0x7f)
  return b
}

export function entry(ledgerId: bigint, entryId: bigint, opts: {size?: number; lac?: bigint; payload?: Buffer} = {}): AddRequest {
  const payload = opts.payload ?? payloadFor(ledgerId, entryId, opts.size)
  const lac = opts.lac ?? entryId - 1n
  return {ledgerId, entryId, lac, payload, digest: entryDigest(ledgerId, entryId, lac, payload)}
}
