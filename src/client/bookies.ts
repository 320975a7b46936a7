/**
 * The client's view of the bookies: their registrations (id -> address, liveness, state) from the metadata
 * store, one HTTP/2 transport per bookie, and ensemble placement (random among live writable bookies, as
 * BookKeeper's default placement policy; rack awareness is for later).
 */
import {ErrorCode, LogError} from '../errors.js'
import type {BookieStatus, LedgerMetadata, MetadataStore} from '../meta/store.js'
import {connectBookie, type BookieClient, type BookieClientOptions} from '../net/bookie-client.js'

export class BookiePool {
  private readonly clients = new Map<string, BookieClient>()
  private known = new Map<string, BookieStatus>()
  private refreshed = 0

  constructor(private readonly meta: MetadataStore, private readonly opts: BookieClientOptions = {}) {}

  async refresh(): Promise<BookieStatus[]> {
    const list = await this.meta.listBookies()
    this.known = new Map(list.map(b => [b.id, b]))
    this.refreshed = Date.now()
    return list
  }

  /** The transport for a bookie id (its address comes from its registration). */
  async client(bookieId: string): Promise<BookieClient> {
    let info = this.known.get(bookieId)
    if (!info || Date.now() - this.refreshed > 30_000) {
      await this.refresh()
      info = this.known.get(bookieId)
    }
    if (!info) throw new LogError(ErrorCode.BOOKIE_UNAVAILABLE, `bookie ${bookieId} is not registered`, {detail: {bookieId}})
    let c = this.clients.get(info.address)
    if (!c) {
      c = connectBookie(info.address, this.opts)
      this.clients.set(info.address, c)
    }
    return c
  }

  /**
   * The close notice (docs/PROTOCOL.md "Close notices"): tell the bookies of a closed ledger's last
   * ensemble its last entry id, so that followers waiting at its end look at the metadata at once. Sent
   * only once the metadata says CLOSED; a hint, in the background: a bookie that misses it changes nothing.
   */
  announceClosed(m: LedgerMetadata): void {
    if (m.state !== 'CLOSED') return
    for (const b of m.ensembles.at(-1)!.bookies) {
      this.client(b).then(c => c.writeLac(m.ledgerId, m.lastEntryId, {closed: true})).catch(() => undefined)
    }
  }

  /** `count` distinct live, writable bookies not in `exclude`, in random order. */
  async choose(count: number, exclude: ReadonlySet<string> = new Set()): Promise<string[]> {
    const live = (await this.refresh()).filter(b => b.alive && b.state === 'writable' && !exclude.has(b.id))
    if (live.length < count) {
      throw new LogError(ErrorCode.NOT_ENOUGH_BOOKIES, `need ${count} writable bookies${exclude.size ? ` besides ${[...exclude].join(', ')}` : ''}, ${live.length} available`, {detail: {needed: count, available: live.length}})
    }
    for (let i = live.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      ;[live[i], live[j]] = [live[j]!, live[i]!]
    }
    return live.slice(0, count).map(b => b.id)
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map(c => c.close().catch(() => undefined)))
    this.clients.clear()
  }
}
