import type {BookieStatus} from '../../meta/store.js'
import {BaseCommand, formatTable} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

const gib = (n: number): string => (n / 1024 ** 3).toFixed(1)

export default class BookieList extends BaseCommand {
  static override summary = 'List bookies: id, address, state (writable / read-only / down), free disk, ledgers held'
  static override flags = {...clusterFlags}

  async run(): Promise<{bookies: Array<BookieStatus & {status: string}>}> {
    const {flags} = await this.parse(BookieList)
    const list = await withClient(flags, c => c.listBookies())
    const bookies = list.map(b => ({...b, status: b.alive ? b.state : 'down'}))
    const lines = formatTable(
      [{header: 'ID'}, {header: 'ADDRESS'}, {header: 'STATE'}, {header: 'FREE GiB', align: 'right'}, {header: 'TOTAL GiB', align: 'right'}, {header: 'LEDGERS', align: 'right'}],
      bookies.map(b => [b.id, b.address, b.status, gib(b.freeBytes), gib(b.totalBytes), String(b.ledgers)]),
    )
    for (const l of lines) this.log(l)
    return {bookies}
  }
}
