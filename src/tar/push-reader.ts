import { TarFormatError, TarTruncatedError } from '../errors.js';
import { BLOCK, decodeHeader, EntryMeta, isZeroBlock, MAX_META_RECORD, paddedSize, type EntryType, type RawHeader } from './header.js';

export interface PushedEntry {
  name: string;
  type: EntryType;
  size: number;
  linkname: string;
}

/**
 * Takes an entry's data as it passes. `view` is only valid until the call returns, or until the
 * promise it returns settles (the reader waits for it before it goes on).
 */
export type EntryBody = (view: Buffer) => Promise<void> | undefined;

type State =
  | { at: 'header' }
  | { at: 'meta'; header: RawHeader; size: number; left: number; parts: Buffer[] }
  | { at: 'data'; size: number; left: number; body: EntryBody | undefined }
  | { at: 'padding'; left: number }
  | { at: 'end' };

/**
 * A tar reader that is pushed bytes (from a socket read into one reused buffer) instead of
 * pulling a stream of fresh Buffers: entries' data go to their `EntryBody` as views of what was
 * pushed, never copied or held. For streams whose entries are mostly passed over or written out.
 */
export class TarPushReader {
  private state: State = { at: 'header' };
  private readonly block = Buffer.alloc(BLOCK);
  private filled = 0;
  private readonly meta = new EntryMeta();
  private position = 0;

  /** `onEntry` says where an entry's data go; undefined passes over them. */
  constructor(private readonly onEntry: (entry: PushedEntry) => EntryBody | undefined) {}

  /** Reads `chunk`; returns a promise when an entry's body asked to be waited for (read nothing more until it settles). */
  push(chunk: Buffer): Promise<void> | undefined {
    let offset = 0;
    while (offset < chunk.length) {
      const state = this.state;
      if (state.at === 'end') return undefined; // what follows the end blocks is padding
      if (state.at === 'header') {
        const take = Math.min(BLOCK - this.filled, chunk.length - offset);
        chunk.copy(this.block, this.filled, offset, offset + take);
        this.filled += take;
        offset += take;
        if (this.filled === BLOCK) this.startEntry();
        continue;
      }
      const take = Math.min(state.left, chunk.length - offset);
      const piece = chunk.subarray(offset, offset + take);
      offset += take;
      state.left -= take;
      this.position += take;
      let wait: Promise<void> | undefined;
      if (state.at === 'meta') state.parts.push(Buffer.from(piece));
      else if (state.at === 'data' && state.body && take > 0) wait = state.body(piece);
      if (state.left === 0) this.finishPart(state);
      if (wait) return wait.then(() => this.push(chunk.subarray(offset)));
    }
    return undefined;
  }

  /** The input ended: anything but a whole archive is a TarTruncatedError. */
  end(): void {
    if (this.state.at === 'end') return;
    if (this.state.at === 'header' && this.filled === 0 && !this.meta.pending) return; // no end blocks: as GNU tar and docker take it
    throw new TarTruncatedError(`archive is truncated (it ends inside an entry, at byte ${this.position + this.filled})`);
  }

  private startEntry(): void {
    this.filled = 0;
    this.position += BLOCK;
    if (isZeroBlock(this.block)) {
      this.state = { at: 'end' };
      return;
    }
    let header;
    try {
      header = decodeHeader(this.block);
    } catch (error) {
      if (error instanceof TarFormatError)
        throw new TarFormatError(`not a valid tar archive: ${error.message} in the header at byte ${this.position - BLOCK}`);
      throw error;
    }
    const size = this.meta.sizeOf(header);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`entry '${header.name}' has a bad size`);
    if (EntryMeta.isMeta(header)) {
      if (size > MAX_META_RECORD) throw new TarFormatError(`metadata record of ${size} bytes`);
      this.state = { at: 'meta', header, size, left: size, parts: [] };
    } else {
      const { name, linkname } = this.meta.take(header);
      this.state = { at: 'data', size, left: size, body: this.onEntry({ name, linkname, type: header.type, size }) };
    }
    if (size === 0) this.finishPart(this.state);
  }

  /** A part has all passed: an entry's data are followed by their padding, the padding by a header. */
  private finishPart(state: State): void {
    if (state.at === 'meta') this.meta.absorb(state.header, Buffer.concat(state.parts));
    const padding = state.at === 'meta' || state.at === 'data' ? paddedSize(state.size) - state.size : 0;
    this.state = padding > 0 ? { at: 'padding', left: padding } : { at: 'header' };
  }
}
