/** Flags and parsing shared by the named-log commands. */
import {Flags} from '@oclif/core'
import {ErrorCode, LogError} from '../errors.js'

export function parseOffset(text: string, what = 'offset'): bigint {
  if (!/^-?\d{1,20}$/.test(text)) throw new LogError(ErrorCode.BAD_INPUT, `${what} must be a whole number, got ${JSON.stringify(text)}`)
  const v = BigInt(text)
  if (v < 0n) throw new LogError(ErrorCode.OUT_OF_RANGE, `${what} must not be negative, got ${v}`)
  return v
}

export const offsetFlag = Flags.custom<bigint>({helpValue: '<offset>', parse: async s => parseOffset(s)})
