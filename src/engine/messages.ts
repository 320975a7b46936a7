/**
 * Messages between an engine (main thread) and its journal worker thread. Batch buffers travel in the
 * transferList (moved, never copied) and come back with the reply so the next batch can reuse them.
 */
export interface JournalInit {
  dir: string
  /** Zero-fill the active segment this many bytes ahead of the write position (0 = plain appends). */
  preallocBytes: number
  /** Write batches with O_DIRECT where the file system allows it (journal-worker.ts). */
  directIo: boolean
}

export type ToJournal =
  | {type: 'open'; segmentId: number; create: boolean}
  | {type: 'write'; seq: number; segmentId: number; position: number; buf: ArrayBuffer; length: number}
  | {type: 'close'}

export type FromJournal =
  | {type: 'opened'; segmentId: number; allocated: number; directIo: boolean}
  | {type: 'written'; seq: number; buf: ArrayBuffer; writeMicros: number; syncMicros: number; preallocMicros: number; directIo: boolean}
  | {type: 'failed'; seq: number; buf: ArrayBuffer; errno: string; message: string; segmentId: number}
  | {type: 'open-failed'; segmentId: number; errno: string; message: string}
  | {type: 'closed'}
