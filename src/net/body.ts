/**
 * Reading a request body through a FrameDecoder: bytes are checked as they arrive (a lying length or an
 * oversized body is refused before the rest comes in), and a peer that stops sending mid-body gets TIMEOUT
 * after `idleTimeoutMs` without a byte. After a failure the remaining bytes are discarded, so the stream's
 * flow-control window keeps moving while the error answer goes out.
 */
import type {ServerHttp2Stream} from 'node:http2'
import {ErrorCode, LogError} from '../errors.js'
import type {FrameDecoder} from './frames.js'

export type Body<T> = ReturnType<FrameDecoder<T>['end']>

export function readBody<T>(stream: ServerHttp2Stream, decoder: FrameDecoder<T>, idleTimeoutMs: number): Promise<Body<T>> {
  return new Promise((resolve, reject) => {
    const done = (err: LogError | undefined, value?: Body<T>): void => {
      stream.off('data', onData)
      stream.off('end', onEnd)
      stream.off('close', onClose)
      stream.setTimeout(0)
      stream.on('data', discard)
      if (err) reject(err)
      else resolve(value!)
    }
    const onData = (chunk: Buffer): void => {
      try {
        decoder.push(chunk)
      } catch (err) {
        done(err as LogError)
      }
    }
    const onEnd = (): void => {
      try {
        done(undefined, decoder.end())
      } catch (err) {
        done(err as LogError)
      }
    }
    const onClose = (): void => done(new LogError(ErrorCode.BAD_FRAME, `the request body ended early (stream closed after ${decoder.bytes} bytes)`))
    stream.on('data', onData)
    stream.once('end', onEnd)
    stream.once('close', onClose)
    stream.setTimeout(idleTimeoutMs, () => {
      done(new LogError(ErrorCode.TIMEOUT, `no request body bytes for ${idleTimeoutMs} ms (after ${decoder.bytes} bytes)`, {detail: {bytes: decoder.bytes, idleTimeoutMs}}))
    })
  })
}

function discard(): void {
  // The rest of a refused body: read and dropped so flow control does not stall the session.
}
