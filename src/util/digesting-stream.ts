import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest } from './digest.js';
import { ON_THREAD_AFTER } from './hash-worker.js';
import { Sha256Thread } from './sha256-thread.js';

/**
 * Passes bytes through while hashing and counting them. With `expect`, the stream fails at its
 * end when the bytes do not hash to that digest (the error is `expect.mismatch(got)`), so a
 * corrupt input never completes as output. Layer-sized streams are hashed on the hashing thread
 * (util/hash-worker.ts), beside whatever else the main thread does with the bytes.
 */
export class DigestingStream extends Transform {
  private readonly expect: { digest: Digest; mismatch: (got: Digest) => Error } | undefined;
  /** The first bytes, kept (not copied) until the stream proves big enough for the thread. */
  private head: Buffer[] = [];
  private headLength = 0;
  private thread: Sha256Thread | undefined;
  private result: Digest | undefined;
  size = 0;

  constructor(expect?: { digest: Digest; mismatch: (got: Digest) => Error }) {
    super();
    this.expect = expect;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.thread) {
      this.thread.update(chunk).then(() => callback(null, chunk), callback);
      return;
    }
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength <= ON_THREAD_AFTER) return callback(null, chunk);
    const thread = new Sha256Thread();
    this.thread = thread;
    const head = this.head;
    this.head = [];
    (async () => {
      for (const part of head) await thread.update(part);
    })().then(() => callback(null, chunk), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.final().then(() => {
      const got = this.result!;
      if (this.expect && got !== this.expect.digest) return callback(this.expect.mismatch(got));
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.result === undefined) this.thread?.abort();
    callback(error);
  }

  private async final(): Promise<void> {
    if (this.thread) {
      this.result = (await this.thread.digest()).digest;
      return;
    }
    const hash = createHash('sha256');
    for (const part of this.head) hash.update(part);
    this.head = [];
    this.result = `sha256:${hash.digest('hex')}`;
  }

  /** The digest of everything that passed: known once the stream has ended. */
  digest(): Digest {
    if (this.result === undefined) throw new Error('DigestingStream: digest() before the stream ended');
    return this.result;
  }
}
