/**
 * One process per data directory. The LOCK file holds the owner's pid; a lock whose pid is no longer
 * alive (the owner was SIGKILLed) is taken over. Node has no flock(2); pid liveness is what BookKeeper's
 * and etcd's single-host tooling rely on too.
 */
import {closeSync, openSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {ErrorCode, LogError} from '../errors.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function acquireLock(dir: string): () => void {
  const file = join(dir, 'LOCK')
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => {
        try {
          unlinkSync(file)
        } catch {
          // already gone: nothing to release
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      let owner = NaN
      try {
        owner = Number.parseInt(readFileSync(file, 'utf8'), 10)
      } catch {
        continue // removed meanwhile: try again
      }
      if (Number.isInteger(owner) && owner !== process.pid && alive(owner)) {
        throw new LogError(ErrorCode.LOCKED, `${dir} is in use by process ${owner}`, {detail: {dir, pid: owner}})
      }
      if (owner === process.pid) throw new LogError(ErrorCode.LOCKED, `${dir} is already open in this process`, {detail: {dir}})
      try {
        unlinkSync(file) // stale: its owner is gone
      } catch {
        // someone else took it over first; the next attempt decides
      }
    }
  }
  throw new LogError(ErrorCode.LOCKED, `could not take the lock on ${dir}`, {detail: {dir}})
}
