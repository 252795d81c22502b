import { createHash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readAt } from '../util/read-at.js';
import { sha256OfFileRange } from '../util/hash-worker.js';
import { decompressor, detectCompression, type Compression } from '../util/compression.js';
import type { Digest } from '../util/digest.js';
import { looksLikeJson } from '../util/json.js';

/** What hashing one entry's bytes tells: its digest as stored and, where asked, its diffID. */
export interface EntryFacts {
  digest: Digest;
  size: number;
  compression: Compression;
  /** sha256 of the decompressed bytes; equal to `digest` when the bytes are not compressed. */
  diffId?: Digest;
}

interface MeasureOptions {
  /** Also decompress compressed bytes to learn their diffID. */
  wantDiffId: boolean;
  /** Keep the bytes in memory when they look like JSON and are at most this long. */
  keepJsonUpTo: number;
  source: string;
}

const HEAD_BYTES = 6;

/**
 * Reads a stream once: hashes it, detects its compression from magic bytes, optionally hashes
 * its decompressed form, and keeps it only when it is small JSON (configs, manifests).
 */
export async function measure(stream: AsyncIterable<unknown>, options: MeasureOptions): Promise<{ facts: EntryFacts; kept?: Buffer }> {
  const measuring = new MeasuringStream(options.source, options);
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  await pipeline(stream, measuring, discard);
  const kept = measuring.kept();
  return kept ? { facts: measuring.facts(), kept } : { facts: measuring.facts() };
}

/**
 * Facts of a byte range of a file, when they need no decompression: its digest (and, for
 * uncompressed bytes, the diffID), hashed in place on the hashing thread (util/hash-worker.ts),
 * which reads through one reused buffer: nothing is allocated per chunk, and the main thread
 * stays free (small ranges, configs and manifests, are hashed here). Returns undefined when
 * the bytes are compressed and `wantDiffId` asks for their diffID: then use `measure`.
 */
export async function measureFileRange(path: string, offset: number, size: number, wantDiffId: boolean): Promise<EntryFacts | undefined> {
  const head = await readAt(path, Math.min(HEAD_BYTES, size), offset);
  const compression = detectCompression(head);
  if (compression !== 'none' && wantDiffId) return undefined;
  const hashed = await sha256OfFileRange(path, offset, size);
  if (hashed.size < size) throw new Error(`${path}: file ends ${size - hashed.size} bytes early`);
  const facts: EntryFacts = { digest: hashed.digest, size, compression };
  if (compression === 'none') facts.diffId = hashed.digest;
  return facts;
}

/**
 * A pass-through that learns what `measure` learns of the bytes flowing through it (digest,
 * size, compression and, by inflating compressed bytes with back-pressure, the diffID): for
 * entries that are copied onward while they are read.
 */
export class MeasuringStream extends Transform {
  private readonly hash = createHash('sha256');
  private readonly source: string;
  private readonly wantDiffId: boolean;
  private readonly keepJsonUpTo: number;
  private size = 0;
  private head = Buffer.alloc(0);
  private compression: Compression | undefined;
  private keeping: Buffer[] | undefined;
  private inflater: ReturnType<typeof decompressor> | undefined;
  private inflated: Promise<Digest> | undefined;
  private digest: Digest | undefined;
  private diffId: Digest | undefined;

  constructor(source: string, options: { wantDiffId?: boolean; keepJsonUpTo?: number } = {}) {
    super({ highWaterMark: 1 << 20 });
    this.source = source;
    this.wantDiffId = options.wantDiffId ?? true;
    this.keepJsonUpTo = options.keepJsonUpTo ?? 0;
  }

  private start(firstBytes: Buffer): void {
    this.compression = detectCompression(firstBytes);
    if (this.keepJsonUpTo > 0 && looksLikeJson(firstBytes)) this.keeping = [];
    if (this.compression === 'none' || !this.wantDiffId) return;
    const inflater = decompressor(this.compression, this.source);
    this.inflater = inflater;
    this.inflated = (async () => {
      const inner = createHash('sha256');
      for await (const chunk of inflater) inner.update(chunk as Buffer);
      return `sha256:${inner.digest('hex')}` as Digest;
    })();
    this.inflated.catch(() => undefined); // observed in _flush; no unhandled rejection meanwhile
  }

  private feed(chunk: Buffer, callback: TransformCallback): void {
    if (this.keeping) {
      if (this.size <= this.keepJsonUpTo) this.keeping.push(chunk);
      else this.keeping = undefined;
    }
    if (this.inflater && !this.inflater.write(chunk)) this.inflater.once('drain', () => callback(null, chunk));
    else callback(null, chunk);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.compression !== undefined) return this.feed(chunk, callback);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < HEAD_BYTES) return callback();
    this.start(this.head);
    const head = this.head;
    this.head = Buffer.alloc(0);
    this.feed(head, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.compression === undefined) {
      // Shorter than the magic bytes: decide now.
      this.start(this.head);
      if (this.head.length > 0) {
        this.keeping?.push(this.head);
        this.inflater?.write(this.head);
        this.push(this.head);
      }
    }
    this.digest = `sha256:${this.hash.digest('hex')}`;
    if (this.compression === 'none') this.diffId = this.digest;
    if (!this.inflater || !this.inflated) return callback();
    this.inflater.end();
    this.inflated.then((diffId) => {
      this.diffId = diffId;
      callback();
    }, callback);
  }

  /** The facts, once the stream has finished. */
  facts(): EntryFacts {
    if (!this.digest) throw new Error('MeasuringStream.facts() before the end of the stream');
    const facts: EntryFacts = { digest: this.digest, size: this.size, compression: this.compression ?? 'none' };
    if (this.diffId) facts.diffId = this.diffId;
    return facts;
  }

  /** The bytes, when they were JSON of at most `keepJsonUpTo` bytes. */
  kept(): Buffer | undefined {
    return this.keeping && this.size <= this.keepJsonUpTo ? Buffer.concat(this.keeping) : undefined;
  }
}
