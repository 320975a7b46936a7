/**
 * Positional file I/O that loops over short reads and writes (readSync / writeSync may move fewer bytes
 * than asked). Synchronous: for the journal worker's thread and the start-up paths (replay, scans).
 */
import {readSync, writeSync} from 'node:fs'

/** Read `length` bytes at `position` into buf[offset, ...); fewer only at the end of the file. Returns the bytes read. */
export function preadFully(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
  let got = 0
  while (got < length) {
    const n = readSync(fd, buf, offset + got, length - got, position + got)
    if (n === 0) break
    got += n
  }
  return got
}

/** Write buf[offset, offset + length) at `position`, all of it. */
export function pwriteFully(fd: number, buf: Uint8Array, offset: number, length: number, position: number): void {
  for (let done = 0; done < length;) done += writeSync(fd, buf, offset + done, length - done, position + done)
}
