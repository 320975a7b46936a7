/**
 * The one place where a logctl command's errors become output and an exit code. Every command extends
 * BaseCommand, returns a typed result (printed as JSON with --json) and throws LogError for failures:
 *
 *   human:  stderr `Error: <message>` + `Hint: <what to do next> (<code>)`, exit EXIT_CODES[code]
 *   --json: stdout `{"error": {"code", "message", "detail"}}`,           exit EXIT_CODES[code]
 *
 * oclif 4's own Command.catch exits 1 for every error under --json (it reads `err.exitCode`, CLIError
 * carries `err.oclif.exit`; fixed in core 5), so the mapping is done here for both modes.
 * oclif's own errors (unknown flag, missing argument: exit 2) keep their exit code and message.
 */
import {Command, Errors, Flags} from '@oclif/core'
import {ErrorCode, EXIT_CODES, isErrorCode, isLogError, LogError} from '../errors.js'
import {ledgerId} from '../ids.js'

type ThrownError = Error & {oclif?: {exit?: number}; code?: unknown; detail?: unknown}

/** What to do next, per code; `%s` is the command as typed (e.g. `storage verify`). */
const HINTS: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.BAD_INPUT]: 'Check the arguments and flags: `logctl %s --help`.',
  [ErrorCode.OUT_OF_RANGE]: 'Check the arguments and flags: `logctl %s --help`.',
  [ErrorCode.TOO_LARGE]: 'Send a smaller entry, or raise the limit the message names.',
  [ErrorCode.CORRUPT]: 'The damaged bytes are left as they are. Keep a copy of the directory, and rebuild this bookie\'s copy of the affected ledgers from their other replicas.',
  [ErrorCode.BAD_CHECKSUM]: 'The stored entry is damaged; read it from another replica and check the disk.',
  [ErrorCode.BAD_FORMAT_VERSION]: 'The directory was written by another logctl version: use a logctl that reads its format.',
  [ErrorCode.LOCKED]: 'Another process holds the directory (its pid is in the LOCK file): stop it first.',
  [ErrorCode.IO]: 'Check the path, its permissions and the disk (the errno is in the error detail).',
  [ErrorCode.READ_ONLY]: 'Free disk space; the bookie leaves read-only mode by itself.',
  [ErrorCode.INTERNAL]: 'This is a bug: please report it with the message above.',
}

/** oclif prefixes a failed flag parser's message; keep the flag name, drop the noise. */
function cleanMessage(message: string): string {
  const m = /^Parsing --([\w-]+) \n\t([\s\S]*)\nSee more help with --help$/.exec(message)
  return m ? `--${m[1]}: ${m[2]}` : message
}

export function exitCodeOf(err: ThrownError): number {
  if (isLogError(err) && isErrorCode(err.code)) return EXIT_CODES[err.code]
  return err.oclif?.exit ?? 1
}

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  /** The command as a user types it (`storage verify`). */
  protected get commandLine(): string {
    return (this.id ?? '').replaceAll(':', ' ')
  }

  protected hintFor(code: ErrorCode): string {
    return (HINTS[code] ?? 'See docs/errors.md for what this code means.').replace('%s', this.commandLine)
  }

  /** Print a LogError the human way (stderr); nothing under --json. */
  protected printError(err: LogError): void {
    this.logToStderr(`Error: ${cleanMessage(err.message)}`)
    this.logToStderr(`Hint: ${this.hintFor(err.code)} (${err.code})`)
  }

  /**
   * Fail after the result was shown: run() still returns it (so --json prints the result, not an error
   * object), the process exits with the error's code, and a human also sees the error and the hint.
   */
  protected failAfterResult(err: LogError): void {
    process.exitCode = EXIT_CODES[err.code]
    if (!this.jsonEnabled()) this.printError(err)
  }

  /** Results may hold 64-bit ids: JSON carries them as decimal strings (JSON.stringify throws on bigint). */
  protected override toSuccessJson(result: unknown): unknown {
    return JSON.parse(JSON.stringify(result, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))
  }

  protected override toErrorJson(err: unknown): {error: {code: string; message: string; detail: Record<string, unknown>}} {
    const e = err as ThrownError
    if (isLogError(e)) return {error: {code: e.code, message: cleanMessage(e.message), detail: e.detail}}
    // oclif's parse errors exit 2: the same condition as BAD_INPUT.
    const code = e.oclif?.exit === 2 ? ErrorCode.BAD_INPUT : ErrorCode.INTERNAL
    return {error: {code, message: e.message ?? String(err), detail: {}}}
  }

  protected override async catch(err: ThrownError): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err // this.exit(n): nothing to print
    const exit = exitCodeOf(err)
    if (this.jsonEnabled()) {
      process.exitCode = exit
      // One line, so that commands streaming JSON lines (append, read) stay line-parseable to the end.
      process.stdout.write(`${JSON.stringify(this.toErrorJson(err))}\n`)
      return undefined
    }
    // oclif's own errors print themselves (with usage for parse errors) and exit with err.oclif.exit.
    if (!isLogError(err) && err.oclif !== undefined) return super.catch(err)
    this.printError(isLogError(err) ? err : new LogError(ErrorCode.INTERNAL, err.message ?? String(err), {cause: err}))
    return this.exit(exit)
  }
}

/** A ledger id flag: unsigned 64-bit decimal, parsed to bigint (bad values fail with exit 2). */
export const ledgerFlag = Flags.custom<bigint>({
  helpValue: '<id>',
  parse: async input => ledgerId(input),
})

export interface Column {
  header: string
  align?: 'left' | 'right'
}

/** An aligned plain-text table (oclif 4 has no ux.table): header line, then one line per row. */
export function formatTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = columns.map((c, i) => rows.reduce((w, r) => Math.max(w, (r[i] ?? '').length), c.header.length))
  const line = (cells: readonly string[]): string =>
    columns.map((c, i) => {
      const cell = cells[i] ?? ''
      const w = widths[i] ?? 0
      return c.align === 'right' ? cell.padStart(w) : cell.padEnd(w)
    }).join('  ').trimEnd()
  return [line(columns.map(c => c.header)), ...rows.map(line)]
}
