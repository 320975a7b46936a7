/**
 * The part of better-sqlite3 12's API that src/meta/sqlite.ts uses. The package ships no types and
 * @types/better-sqlite3 is not a dependency; if it is added, delete this file.
 */
declare module 'better-sqlite3' {
  namespace Database {
    interface RunResult { changes: number; lastInsertRowid: number | bigint }
    interface Statement {
      run(...params: unknown[]): RunResult
      get(...params: unknown[]): unknown
      all(...params: unknown[]): unknown[]
    }
    interface Transaction<F extends (...args: never[]) => unknown> {
      (...args: Parameters<F>): ReturnType<F>
      /** BEGIN IMMEDIATE: take the write lock first, so a read-then-write never fails with SQLITE_BUSY halfway. */
      immediate(...args: Parameters<F>): ReturnType<F>
    }
    interface Options { readonly?: boolean; fileMustExist?: boolean; timeout?: number }
    interface Database {
      readonly open: boolean
      prepare(sql: string): Statement
      exec(sql: string): this
      pragma(source: string, options?: {simple?: boolean}): unknown
      transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>
      defaultSafeIntegers(toggle?: boolean): this
      close(): this
    }
  }
  interface DatabaseConstructor {
    new (filename: string, options?: Database.Options): Database.Database
  }
  const Database: DatabaseConstructor
  export = Database
}
