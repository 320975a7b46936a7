/**
 * The entries a bench writes. Every entry of at least HEADER_BYTES starts with a small binary header,
 *
 *   offset 0  f64 BE  intended send time, µs since the epoch (this process's clock)
 *   offset 8  u32 BE  producer index
 *   offset 12 u32 BE  sequence number within the producer (counts every append tried, wraps at 2^32)
 *
 * so a consumer in the same process measures end-to-end latency from the time the entry was *meant* to be
 * sent, and can tell a lost or reordered entry. The rest is filler: `random` (incompressible bytes) or
 * `text` (log-like lines: timestamps, levels, paths, ids; lz4 shrinks it about 3x). Filler is sliced out of
 * a pool made once from a seeded generator, so a run costs one copy per entry and is reproducible.
 */
export const HEADER_BYTES = 16

export const PAYLOAD_KINDS = ['random', 'text'] as const
export type PayloadKind = (typeof PAYLOAD_KINDS)[number]

/** Entry payload size in bytes: every entry `min` bytes, or uniformly spread over min..max. */
export interface SizeRange {
  min: number
  max: number
}

export interface EntryHeader {
  sendUs: number
  producer: number
  seq: number
}

export function writeHeader(b: Buffer, h: EntryHeader): void {
  b.writeDoubleBE(h.sendUs, 0)
  b.writeUInt32BE(h.producer >>> 0, 8)
  b.writeUInt32BE(h.seq >>> 0, 12)
}

/** The header of an entry written by a bench, or undefined if it is too short to carry one. */
export function readHeader(b: Buffer): EntryHeader | undefined {
  if (b.length < HEADER_BYTES) return undefined
  return {sendUs: b.readDoubleBE(0), producer: b.readUInt32BE(8), seq: b.readUInt32BE(12)}
}

/** mulberry32: a small, fast, seeded generator (uniform in [0, 1)). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'] as const
const SERVICES = ['orders', 'payments', 'gateway', 'inventory', 'auth', 'search'] as const
const METHODS = ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'] as const
const PATHS = ['/api/v1/orders', '/api/v1/orders/:id', '/api/v1/payments', '/api/v1/cart', '/api/v2/search', '/healthz', '/api/v1/users/:id/sessions'] as const
const STATUS = [200, 200, 200, 200, 201, 204, 304, 400, 404, 500] as const

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!
}

/** `bytes` of log lines such as an HTTP service writes. */
export function textPool(bytes: number, rand: () => number): Buffer {
  const out = Buffer.allocUnsafe(bytes + 512)
  let pos = 0
  let t = Date.UTC(2024, 0, 15, 9, 30, 0)
  while (pos < bytes) {
    t += Math.floor(rand() * 40)
    const service = pick(rand, SERVICES)
    const hex = Math.floor(rand() * 0xffffffff).toString(16).padStart(8, '0')
    const line = `${new Date(t).toISOString()} ${pick(rand, LEVELS).padEnd(5)} ${service}-${1 + Math.floor(rand() * 4)}[${4000 + Math.floor(rand() * 60)}]: ` +
      `${pick(rand, METHODS)} ${pick(rand, PATHS)} status=${pick(rand, STATUS)} latency_ms=${Math.floor(rand() * rand() * 900)} ` +
      `bytes=${Math.floor(rand() * 8000)} request_id=${hex}-${service.slice(0, 3)} user=u-${Math.floor(rand() * 5000)}\n`
    pos += out.write(line, pos, 'latin1')
  }
  return out.subarray(0, bytes)
}

export function randomPool(bytes: number, rand: () => number): Buffer {
  const out = Buffer.allocUnsafe(bytes)
  for (let i = 0; i + 4 <= bytes; i += 4) out.writeUInt32LE(Math.floor(rand() * 4294967296), i)
  for (let i = bytes - (bytes % 4); i < bytes; i++) out[i] = Math.floor(rand() * 256)
  return out
}

const POOL_BYTES = 1024 * 1024

/** Entries for one producer: sizes drawn from the range, filler sliced from the pool, header in front. */
export class PayloadFactory {
  private readonly pool: Buffer
  private readonly rand: () => number

  constructor(readonly kind: PayloadKind, readonly size: SizeRange, seed: number) {
    this.rand = seededRandom(seed)
    const bytes = Math.max(POOL_BYTES, 2 * size.max)
    this.pool = kind === 'text' ? textPool(bytes, this.rand) : randomPool(bytes, this.rand)
  }

  nextSize(): number {
    const {min, max} = this.size
    return min === max ? min : min + Math.floor(this.rand() * (max - min + 1))
  }

  /** A new entry (its own buffer: the caller may keep it while it is in flight). */
  make(h: EntryHeader): Buffer {
    const size = this.nextSize()
    const b = Buffer.allocUnsafe(size)
    const at = Math.floor(this.rand() * (this.pool.length - size + 1))
    this.pool.copy(b, 0, at, at + size)
    if (size >= HEADER_BYTES) writeHeader(b, h)
    return b
  }
}
