import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A content digest as OCI writes it: `sha256:<64 hex>`. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hexOf(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

export function shortId(digest: Digest): string {
  return hexOf(digest).slice(0, 12);
}

/**
 * Passes bytes through while hashing and counting them. With `expect`, the stream fails at its
 * end when the bytes do not hash to that digest (the error is `expect.mismatch(got)`), so a
 * corrupt input never completes as output.
 */
export class DigestingStream extends Transform {
  private readonly hash = createHash('sha256');
  private readonly expect: { digest: Digest; mismatch: (got: Digest) => Error } | undefined;
  private result: Digest | undefined;
  size = 0;

  constructor(expect?: { digest: Digest; mismatch: (got: Digest) => Error }) {
    super();
    this.expect = expect;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const got = this.digest();
    if (this.expect && got !== this.expect.digest) return callback(this.expect.mismatch(got));
    callback();
  }

  /** The digest of everything that passed (final once the stream has ended). */
  digest(): Digest {
    this.result ??= `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }
}
