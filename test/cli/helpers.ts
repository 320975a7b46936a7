/**
 * Helpers for the CLI tests: run the built `logctl` exactly as a user does (a subprocess of
 * `node bin/run.js`, not oclif's in-process runCommand), and build real data directories with the
 * StorageEngine.
 */
import {execFile, spawn} from 'node:child_process'
import {closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {entryDigest} from '../../src/checksum.js'
import {StorageEngine, type AddRequest, type EngineOptions} from '../../src/engine/engine.js'

/** The project root (this file runs from dist/test/cli). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** `node bin/run.js ...args` in the project root; never rejects, the exit code is in the result. */
export function logctl(...args: string[]): Promise<RunResult> {
  return new Promise(resolve => {
    execFile(process.execPath, ['bin/run.js', ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1'}, maxBuffer: 64 * 1024 * 1024},
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({code, stdout, stderr})
      })
  })
}

/** `node bin/run.js ...args` with `input` on stdin (and `env` for the child); never rejects. */
export function logctlWithInput(input: string, ...args: string[]): Promise<RunResult> {
  return new Promise(resolve => {
    const child = spawn(process.execPath, ['bin/run.js', ...args], {cwd: ROOT, env: {...process.env, NO_COLOR: '1'}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', code => resolve({code: code ?? 1, stdout, stderr}))
    child.stdin.end(input)
  })
}

export function tempDir(t: {teardown: (fn: () => void) => void}, prefix = 'logctl-cli-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

/** Small segments so that a few hundred KiB of entries span several files; no background compaction. */
export const SMALL: Omit<EngineOptions, 'dir'> = {maxSegmentBytes: 64 * 1024, preallocBytes: 0, compactIntervalMs: 0}

export function payload(ledgerId: bigint, entryId: bigint, size: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (Number(ledgerId) * 31 + Number(entryId) * 7 + i * 13) & 0xff
  return b
}

export interface Written {
  ledgers: Map<bigint, number>
  entries: number
  bytes: number
}

/** One add request for (ledgerId, entryId) with a deterministic payload; its LAC is entryId - 1. */
export function entry(ledgerId: bigint, entryId: bigint, size: number, compress = false): AddRequest {
  const p = payload(ledgerId, entryId, size)
  const lac = entryId - 1n
  return {ledgerId, entryId, lac, payload: p, digest: entryDigest(ledgerId, entryId, lac, p), ...(compress ? {compress: true} : {})}
}

/**
 * Write `entries` entries of `size` bytes to each ledger with an open engine; adds of one ledger are
 * awaited one by one (one record per batch), ledgers run concurrently.
 */
export async function writeEntries(engine: StorageEngine, ledgers: readonly bigint[], entries: number, size: number, opts: {compress?: boolean} = {}): Promise<Written> {
  await Promise.all(ledgers.map(async ledgerId => {
    for (let e = 0n; e < BigInt(entries); e++) await engine.add(entry(ledgerId, e, size, opts.compress))
  }))
  return {ledgers: new Map(ledgers.map(l => [l, entries])), entries: ledgers.length * entries, bytes: ledgers.length * entries * size}
}

/** Open an engine on `dir`, run `fn`, close it (a checkpoint is written on close). */
export async function withEngine<T>(dir: string, fn: (e: StorageEngine) => Promise<T>, opts: Omit<EngineOptions, 'dir'> = SMALL): Promise<T> {
  const engine = await StorageEngine.open({...opts, dir})
  try {
    return await fn(engine)
  } finally {
    await engine.close()
  }
}

export function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    readSync(fd, b, 0, 1, offset)
    b[0] = b[0]! ^ 0xff
    writeSync(fd, b, 0, 1, offset)
  } finally {
    closeSync(fd)
  }
}

export function appendBytes(file: string, bytes: Buffer): void {
  const fd = openSync(file, 'a')
  try {
    writeSync(fd, bytes)
  } finally {
    closeSync(fd)
  }
}

export function fileSize(file: string): number {
  return statSync(file).size
}
