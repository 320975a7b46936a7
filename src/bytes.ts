/**
 * 64-bit integers into buffers without BigInt arithmetic on the hot paths. Ids and LACs are almost always
 * safe integers (entry ids are < 2^53 by definition, ledger ids are allocated from 0): those are written as
 * two 32-bit halves, several times cheaper than writeBig(U)Int64; anything else takes the BigInt path.
 * Two's complement, so -1 (NO_ENTRY) is written as all ones either way.
 */
const TWO_32 = 4294967296

export function writeInt64LE(b: Buffer, v: bigint, off: number): void {
  const n = Number(v)
  if (Number.isSafeInteger(n)) writeSafe64LE(b, n, off)
  else if (v < 0n) b.writeBigInt64LE(v, off)
  else b.writeBigUInt64LE(v, off)
}

export function writeInt64BE(b: Buffer, v: bigint, off: number): void {
  const n = Number(v)
  if (Number.isSafeInteger(n)) writeSafe64BE(b, n, off)
  else if (v < 0n) b.writeBigInt64BE(v, off)
  else b.writeBigUInt64BE(v, off)
}

/** A safe integer (|n| < 2^53) as a 64-bit two's complement integer, little-endian. */
export function writeSafe64LE(b: Buffer, n: number, off: number): void {
  b.writeUInt32LE(n >>> 0, off)
  b.writeInt32LE(Math.floor(n / TWO_32), off + 4)
}

export function writeSafe64BE(b: Buffer, n: number, off: number): void {
  b.writeInt32BE(Math.floor(n / TWO_32), off)
  b.writeUInt32BE(n >>> 0, off + 4)
}
