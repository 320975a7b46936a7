/**
 * `logctl cluster status`: one look at the cluster's health. A ledger is under-replicated when one of the
 * bookies it was written to is down (its copies there can't be read until that bookie returns; nothing
 * re-replicates them automatically yet).
 */
import type {LogctlClient} from './client.js'

export interface ClusterStatus {
  metadata: {url: string; reachable: true}
  bookies: {up: number; down: number; readOnly: number; freeBytes: number; totalBytes: number; list: Array<{id: string; address: string; status: string; freeBytes: number}>}
  ledgers: number
  logs: number
  underReplicated: Array<{ledgerId: bigint; downBookies: string[]}>
}

export async function clusterStatus(client: LogctlClient): Promise<ClusterStatus> {
  const bookies = await client.listBookies()
  const down = new Set(bookies.filter(b => !b.alive).map(b => b.id))
  const up = bookies.filter(b => b.alive)
  const underReplicated: ClusterStatus['underReplicated'] = []
  let ledgers = 0
  let after: bigint | undefined
  for (;;) {
    const page = await client.listLedgers(after === undefined ? {limit: 1000} : {after, limit: 1000})
    if (page.length === 0) break
    ledgers += page.length
    for (const id of page) {
      const m = await client.ledgerInfo(id).catch(() => undefined)
      if (!m) continue
      const gone = [...new Set(m.ensembles.flatMap(e => e.bookies))].filter(b => down.has(b) || !bookies.some(x => x.id === b))
      if (gone.length > 0) underReplicated.push({ledgerId: id, downBookies: gone})
    }
    after = page.at(-1)
  }
  return {
    metadata: {url: client.meta.url, reachable: true},
    bookies: {
      up: up.length, down: down.size, readOnly: up.filter(b => b.state === 'read-only').length,
      freeBytes: up.reduce((n, b) => n + b.freeBytes, 0), totalBytes: up.reduce((n, b) => n + b.totalBytes, 0),
      list: bookies.map(b => ({id: b.id, address: b.address, status: b.alive ? b.state : 'down', freeBytes: b.freeBytes})),
    },
    ledgers,
    logs: (await client.listLogs()).length,
    underReplicated,
  }
}
