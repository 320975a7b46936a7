import {BaseCommand, formatTable} from './base.js'
import {clusterFlags, withClient} from './cluster-flags.js'
import type {LogInfo} from '../client/log-handle.js'

export default class Logs extends BaseCommand {
  static override summary = 'List logs: entries, bytes, segments, first and last offset, writer'
  static override flags = {...clusterFlags}

  async run(): Promise<{logs: LogInfo[]}> {
    const {flags} = await this.parse(Logs)
    const logs = await withClient(flags, async c => {
      const out: LogInfo[] = []
      for (const m of await c.listLogs()) out.push(await (await c.openLog(m.name)).info())
      return out
    })
    const rows = logs.map(l => [l.name, String(l.entries), String(l.bytes), String(l.segments.length), String(l.firstOffset), l.entries > 0n ? String(l.endOffset - 1n) : '-', l.writer ? `${l.writer.host}:${l.writer.pid}` : '-'])
    for (const line of formatTable([{header: 'LOG'}, {header: 'ENTRIES', align: 'right'}, {header: 'BYTES', align: 'right'}, {header: 'SEGMENTS', align: 'right'}, {header: 'FIRST', align: 'right'}, {header: 'LAST', align: 'right'}, {header: 'WRITER'}], rows)) this.log(line)
    return {logs}
  }
}
