import {clusterStatus, type ClusterStatus} from '../../client/cluster-status.js'
import {BaseCommand} from '../base.js'
import {clusterFlags, withClient} from '../cluster-flags.js'

const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(1)} GiB`

export default class ClusterStatusCommand extends BaseCommand {
  static override summary = 'Cluster health: metadata, bookies up / down / read-only, free space, ledgers, logs, under-replicated ledgers'
  static override flags = {...clusterFlags}

  async run(): Promise<ClusterStatus> {
    const {flags} = await this.parse(ClusterStatusCommand)
    const s = await withClient(flags, clusterStatus)
    this.log(`metadata   ${s.metadata.url} (reachable)`)
    this.log(`bookies    ${s.bookies.up} up, ${s.bookies.down} down, ${s.bookies.readOnly} read-only; ${gib(s.bookies.freeBytes)} free of ${gib(s.bookies.totalBytes)}`)
    for (const b of s.bookies.list) this.log(`  ${b.id.padEnd(24)} ${b.address.padEnd(22)} ${b.status}`)
    this.log(`ledgers    ${s.ledgers}`)
    this.log(`logs       ${s.logs}`)
    this.log(`under-replicated ledgers: ${s.underReplicated.length}${s.underReplicated.length ? ` (${s.underReplicated.slice(0, 10).map(u => u.ledgerId).join(', ')}${s.underReplicated.length > 10 ? ', ...' : ''})` : ''}`)
    return s
  }
}
