/**
 * Page-aligned memory for O_DIRECT writes (the journal's batches, checkpoints). O_DIRECT needs the buffer's
 * address aligned to the device's logical block; a Buffer's address is whatever the allocator gave, but a
 * WebAssembly.Memory is mapped page-aligned by V8, and a Buffer over it starts on a page.
 */

/** The unit of an O_DIRECT write here: offsets and lengths are multiples of it (a page; devices need 512 or 4096). */
export const BLOCK = 4096

const WASM_PAGE = 65536

/** WebAssembly.Memory, typed here (the project's TypeScript libs have no WebAssembly declarations). */
interface WasmMemory { readonly buffer: ArrayBuffer; grow(pages: number): number }
const WasmMemory = (globalThis as unknown as {WebAssembly: {Memory: new (d: {initial: number}) => WasmMemory}}).WebAssembly.Memory

/** A reusable page-aligned buffer that grows (in whole WebAssembly pages) when asked for more. */
export class AlignedBuffer {
  private memory: WasmMemory | undefined
  private view = Buffer.alloc(0)

  /** A page-aligned view of at least `bytes` (growing detaches views handed out before). */
  of(bytes: number): Buffer {
    if (this.view.length < bytes) {
      const pages = Math.ceil(bytes / WASM_PAGE)
      if (this.memory === undefined) this.memory = new WasmMemory({initial: pages})
      else this.memory.grow(pages - this.memory.buffer.byteLength / WASM_PAGE)
      this.view = Buffer.from(this.memory.buffer)
    }
    return this.view
  }
}

/** `n` rounded up to a whole number of blocks. */
export function alignUp(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK
}
