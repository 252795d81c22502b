import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { prefix, RAW_MAX, record, Tag } from './format.js';

const BATCH = 128 * 1024;

/**
 * The compressed side of an encode: the plain prefix, then one zstd frame the records are
 * written into, with backpressure, ending (or not) the caller's stream.
 */
export class RecordSink {
  private readonly zstd: zlib.ZstdCompress;
  private readonly piping: Promise<void>;
  private pendingRaw: Buffer[] = [];
  private pendingLength = 0;
  private batch: Buffer[] = [];
  private batchLength = 0;
  private lastTaken: Promise<void> = Promise.resolve();
  /** Compressed bytes written after the prefix. */
  written = 0;

  constructor(out: Writable, level: number, end: boolean) {
    const C = zlib.constants;
    this.zstd = zlib.createZstdCompress({
      params: { [C.ZSTD_c_compressionLevel]: level, [C.ZSTD_c_checksumFlag]: 1 },
      chunkSize: 64 * 1024,
    });
    this.zstd.on('data', (chunk: Buffer) => {
      this.written += chunk.length;
    });
    out.write(prefix());
    this.piping = pipeline(this.zstd, out, { end });
    this.piping.catch(() => undefined);
  }

  /** Every write to zlib is a round trip to libuv's threads: small records go in batches. */
  private async write(data: Buffer): Promise<void> {
    if (data.length < BATCH) {
      this.batch.push(data);
      this.batchLength += data.length;
      if (this.batchLength < BATCH) return;
      return this.writeBatch();
    }
    await this.writeBatch();
    await this.send(data);
  }

  private async writeBatch(): Promise<void> {
    if (this.batchLength === 0) return;
    const data = Buffer.concat(this.batch, this.batchLength);
    this.batch = [];
    this.batchLength = 0;
    await this.send(data);
  }

  private async send(data: Buffer): Promise<void> {
    const taken = new Promise<void>((resolve, reject) => {
      this.zstd.write(data, (error) => (error ? reject(error) : resolve()));
    });
    taken.catch(() => undefined);
    this.lastTaken = taken;
    if (this.zstd.writableNeedDrain) await Promise.race([once(this.zstd, 'drain'), this.piping]);
  }

  /** Resolves once zlib has taken every byte given so far: buffers given may then be reused. */
  async taken(): Promise<void> {
    await this.writeBatch();
    await this.lastTaken;
  }

  /** Verbatim bytes, gathered into RAW records (one per run between file contents, mostly). */
  async raw(data: Buffer): Promise<void> {
    this.pendingRaw.push(data);
    this.pendingLength += data.length;
    if (this.pendingLength >= RAW_MAX) await this.flush();
  }

  /** Writes the gathered verbatim bytes; called before any other record. */
  async flush(): Promise<void> {
    if (this.pendingLength === 0) return;
    const all = Buffer.concat(this.pendingRaw, this.pendingLength);
    this.pendingRaw = [];
    this.pendingLength = 0;
    for (let at = 0; at < all.length; at += RAW_MAX) {
      const piece = all.subarray(at, Math.min(all.length, at + RAW_MAX));
      await this.write(record(Tag.raw, piece.length));
      await this.write(piece);
    }
  }

  /** A record: its head, then any payloads. */
  async record(head: Buffer, ...payloads: Buffer[]): Promise<void> {
    await this.flush();
    await this.write(head);
    for (const payload of payloads) if (payload.length > 0) await this.write(payload);
  }

  async end(): Promise<void> {
    await this.flush();
    await this.writeBatch();
    this.zstd.end();
    await this.piping;
  }

  /** Stops after a failure; the caller's stream is left to the caller. */
  async abort(error: unknown): Promise<void> {
    this.zstd.destroy(error instanceof Error ? error : new Error(String(error)));
    await this.piping.catch(() => undefined);
  }
}
