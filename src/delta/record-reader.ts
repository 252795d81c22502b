import type { ChunkReader } from './chunk-reader.js';
import { DeltaFormatError, DeltaLimitError } from './errors.js';

/** Reads a delta's records: bounded exact reads and varints, each failure a typed error. */
export class RecordReader {
  constructor(
    private readonly reader: ChunkReader,
    readonly source: string,
  ) {}

  get position(): number {
    return this.reader.position;
  }

  truncated(): DeltaFormatError {
    return new DeltaFormatError(this.source, `delta is truncated: it ends inside a record at byte ${this.reader.position}`);
  }

  /** The next record's tag, or -1 at the end of the records. */
  async tag(): Promise<number> {
    return this.reader.byte();
  }

  async varint(what: string): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = await this.reader.byte();
      if (byte === -1) throw this.truncated();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 0x80;
    }
    throw new DeltaFormatError(this.source, `delta has a malformed ${what} at byte ${this.reader.position}`);
  }

  /** A size field, refused unless within [min, max] before anything is allocated for it. */
  async size(what: string, min: number, max: number): Promise<number> {
    const value = await this.varint(what);
    if (value < min || value > max) {
      const limit = value > max ? `more than the ${max} allowed` : `less than ${min}`;
      throw new DeltaLimitError(this.source, `delta record declares a ${what} of ${value} bytes, ${limit}`);
    }
    return value;
  }

  async bytes(length: number): Promise<Buffer> {
    const data = await this.reader.readUpTo(length);
    if (data.length < length) throw this.truncated();
    return data;
  }

  /** Passes `length` bytes to `sink` as they come, without gathering them. */
  async pass(length: number, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
    for (let left = length; left > 0; ) {
      const chunk = await this.reader.next(left);
      if (chunk.length === 0) throw this.truncated();
      left -= chunk.length;
      await sink(chunk);
    }
  }

  async atEnd(): Promise<boolean> {
    return this.reader.atEnd();
  }
}
