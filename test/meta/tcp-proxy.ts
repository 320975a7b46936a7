/**
 * A TCP forwarder between a client and a real server that a test can freeze: a real etcd whose network path
 * goes silent (requests sent, no answer, no error), which is what a partition or a hung server looks like
 * from the client, and can then thaw; or one that loses its answers after doing the work. Used for the etcd
 * driver's "never hang" and "outcome unknown" tests.
 */
import {connect, createServer, type AddressInfo, type Server, type Socket} from 'node:net'

export class TcpProxy {
  #frozen = false
  #dropReplies = false
  readonly #sockets = new Set<Socket>()

  private constructor(private readonly server: Server, private readonly target: {host: string; port: number}) {
    server.on('connection', client => this.#accept(client))
  }

  static async start(target: {host: string; port: number}): Promise<TcpProxy> {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return new TcpProxy(server, target)
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  /** From now on nothing passes either way, and new connections are accepted but never answered. */
  freeze(): void {
    this.#frozen = true
    for (const s of this.#sockets) {
      s.unpipe()
      s.pause()
    }
  }

  /**
   * Requests still reach the server, but each connection is cut when its answer comes back: the server did
   * the work and the client cannot know (a write's outcome is unknown).
   */
  dropReplies(on: boolean): void {
    this.#dropReplies = on
  }

  /** Drop the frozen connections (their state is unknown) and forward new ones again. */
  thaw(): void {
    this.#frozen = false
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
    await new Promise(resolve => this.server.close(resolve))
  }

  #accept(client: Socket): void {
    this.#track(client)
    if (this.#frozen) {
      client.pause()
      return
    }
    const upstream = connect(this.target.port, this.target.host)
    this.#track(upstream)
    const drop = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    // By hand rather than pipe(), so that dropReplies() can cut a connection at the moment its answer arrives.
    upstream.on('data', (chunk: Buffer) => {
      if (this.#dropReplies) client.destroy()
      else client.write(chunk)
    })
  }

  #track(s: Socket): void {
    this.#sockets.add(s)
    s.on('close', () => this.#sockets.delete(s))
    s.on('error', () => undefined)
  }
}
