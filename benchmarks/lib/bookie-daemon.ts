/**
 * Diagnostics only: a bookie daemon like `logctl daemon`, but with engine and server options the CLI does
 * not expose (e.g. verifyOffloadBytes), to test a hypothesis about src/ without changing it. Same ready line,
 * same clean stop on SIGTERM (runDaemon from src/server/bookie.ts). lib/bookies.ts uses it when given
 * `engine` or `server` options.
 *
 *   node dist/benchmarks/lib/bookie-daemon.js --data-dir D --metadata URL [--listen 127.0.0.1:0]
 *        [--engine '{"verifyOffloadBytes":1073741824}'] [--server '{...}']
 */
import {parseArgs} from 'node:util'
import {createLogger, runDaemon} from '../../src/server/bookie.js'

const {values} = parseArgs({options: {
  'data-dir': {type: 'string'}, metadata: {type: 'string'}, listen: {type: 'string', default: '127.0.0.1:0'},
  engine: {type: 'string'}, server: {type: 'string'}, 'log-level': {type: 'string', default: 'info'},
}})

runDaemon({
  dataDir: values['data-dir']!,
  listen: values.listen!,
  logger: createLogger(values['log-level']),
  ...(values.metadata === undefined ? {} : {metadata: values.metadata}),
  ...(values.engine === undefined ? {} : {engine: JSON.parse(values.engine) as object}),
  ...(values.server === undefined ? {} : {server: JSON.parse(values.server) as object}),
}).then(() => process.exit(0), err => {
  console.error(err)
  process.exit(1)
})
