/**
 * Operator routes: GET /v1/status (JSON) and GET /metrics (Prometheus text).
 */
import {jsonReply, type Reply, type Route, type ServerContext} from './route.js'

export function adminRoutes(ctx: ServerContext): Route[] {
  return [
    {name: 'status', method: 'GET', pattern: /^\/v1\/status$/, handle: async () => jsonReply(await ctx.status())},
    {name: 'metrics', method: 'GET', pattern: /^\/metrics$/, handle: () => metrics(ctx)},
  ]
}

async function metrics(ctx: ServerContext): Promise<Reply> {
  return {status: 200, type: ctx.metrics.contentType, body: await ctx.metrics.text()}
}
