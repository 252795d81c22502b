// Hostile or broken deltas: each is refused with a typed error whose message names the delta
// (the caller passes the layer's name as `source`), before anything enormous is produced or
// allocated.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import {
  DeltaCorruptError,
  DeltaFormatError,
  DeltaLimitError,
  DeltaReferenceError,
  decodeLayerDelta,
  encodeLayerDelta,
  SpooledBase,
  verifyLayerDelta,
} from '../../src/delta/index.js';
import { CHUNK, prefix, RAW_MAX, record, Tag, varints } from '../../src/delta/format.js';
import type { Digest } from '../../src/util/digest.js';
import { makeTar } from '../helpers/tar.js';

const SOURCE = 'app.ddiff: layer sha256:feed';
const NEW_B = `${'bravo '.repeat(500)}charlie ${'bravo '.repeat(499)}`;

function digestOf(data: Buffer): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A delta stream from records (as encode writes them: prefix, then one zstd frame). */
function deltaOf(...records: Buffer[]): Buffer {
  return Buffer.concat([prefix(), zlib.zstdCompressSync(Buffer.concat(records))]);
}

function counting(): Writable & { written: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.written += chunk.length;
      callback();
    },
  }) as Writable & { written: number };
  sink.written = 0;
  return sink;
}

describe('hostile deltas', () => {
  let work: string;
  let base: SpooledBase;
  let baseLayer: Buffer;
  let target: Buffer;
  let valid: Buffer;
  const baseRecord = (): Buffer => Buffer.concat([record(Tag.base, 1), Buffer.from(digestOf(baseLayer).slice(7), 'hex')]);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ddiff-delta-hostile-'));
    baseLayer = await makeTar([
      { name: 'a.txt', content: 'alpha '.repeat(1000) },
      { name: 'b.txt', content: 'bravo '.repeat(1000) },
    ]);
    target = await makeTar([
      { name: 'a.txt', content: 'alpha '.repeat(1000) },
      { name: 'b.txt', content: NEW_B },
      { name: 'c.txt', content: 'new' },
    ]);
    base = await SpooledBase.create(work);
    await base.addLayer(digestOf(baseLayer), Readable.from([baseLayer]), { hash: false });
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    const stats = await encodeLayerDelta(Readable.from([target]), base, sink);
    assert.deepEqual(stats.files, { referenced: 1, deltified: 1, literal: 1 });
    valid = Buffer.concat(chunks);
  });
  after(async () => {
    await base.close();
    await rm(work, { recursive: true, force: true });
  });

  async function refused(delta: Buffer, type: new (...args: never[]) => Error, message: RegExp, options = {}): Promise<number> {
    const out = counting();
    await assert.rejects(decodeLayerDelta(Readable.from([delta]), base, out, { source: SOURCE, ...options }), (error: Error) => {
      assert.ok(error instanceof type, `${error.name}: ${error.message}`);
      assert.match(error.message, message);
      assert.ok(error.message.startsWith(`${SOURCE}: `), error.message);
      return true;
    });
    return out.written;
  }

  test('the valid delta decodes (the cases below break it one way each)', async () => {
    const result = await verifyLayerDelta(Readable.from([valid]), base, { expectedSize: target.length });
    assert.equal(result.digest, digestOf(target));
  });

  test('a reference to a base layer slot out of range', async () => {
    await refused(deltaOf(baseRecord(), record(Tag.ref, 3, 0)), DeltaReferenceError, /slot 3, out of range/);
  });

  test('a reference to a file the base layer lacks', async () => {
    await refused(deltaOf(baseRecord(), record(Tag.ref, 0, 100)), DeltaReferenceError, /file 50 of base layer sha256:.* which has 2 files/);
  });

  test('a base layer the base lacks', async () => {
    const other = Buffer.concat([record(Tag.base, 1), Buffer.alloc(32, 7)]);
    await refused(deltaOf(other, record(Tag.ref, 0, 0)), DeltaReferenceError, /needs base layer sha256:0707070707.* which the base lacks/);
  });

  test('tampered compressed bytes', async () => {
    const tampered = Buffer.from(valid);
    tampered[Math.floor(tampered.length / 2)]! ^= 0x20;
    const out = counting();
    await assert.rejects(decodeLayerDelta(Readable.from([tampered]), base, out, { source: SOURCE }), (error: Error) => {
      assert.ok(error instanceof DeltaCorruptError || error instanceof DeltaFormatError, `${error.name}: ${error.message}`);
      assert.ok(error.message.startsWith(SOURCE));
      return true;
    });
  });

  test('tampered records under a valid compression: the total digest refuses them', async () => {
    const body = zlib.zstdDecompressSync(valid.subarray(8));
    const at = body.indexOf(Buffer.from('c.txt'));
    assert.ok(at > 0);
    body[at] = 'd'.charCodeAt(0);
    await refused(Buffer.concat([prefix(), zlib.zstdCompressSync(body)]), DeltaCorruptError, /END record says/);
  });

  test('a binary delta whose digest does not match what it rebuilds', async () => {
    const body = zlib.zstdDecompressSync(valid.subarray(8));
    const digestAt = body.indexOf(createHash('sha256').update(NEW_B).digest());
    assert.ok(digestAt > 0, 'the delta record carries the file digest');
    body[digestAt]! ^= 1;
    await refused(Buffer.concat([prefix(), zlib.zstdCompressSync(body)]), DeltaCorruptError, /does not rebuild/);
  });

  test('records declaring enormous sizes are refused before anything is produced', async () => {
    assert.equal(
      await refused(deltaOf(baseRecord(), record(Tag.literal, 2 ** 50)), DeltaLimitError, /literal file of 1125899906842624 bytes/),
      0,
    );
    assert.equal(await refused(deltaOf(baseRecord(), record(Tag.raw, RAW_MAX + 1)), DeltaLimitError, /RAW record/), 0);
    const bomb = deltaOf(baseRecord(), record(Tag.big, 2 ** 52, 0), ...Array.from({ length: 1000 }, () => record(Tag.zero)));
    assert.equal(await refused(bomb, DeltaLimitError, /more than the 1000000 bytes allowed/, { expectedSize: 1_000_000 }), 0);
    assert.equal(await refused(bomb, DeltaLimitError, /more than the 33554432 bytes allowed/, { maxSize: 32 * 1024 * 1024 }), 0);
    const payload = deltaOf(baseRecord(), record(Tag.delta, 0, 0, 100, CHUNK + 1));
    assert.equal(await refused(payload, DeltaLimitError, /delta payload/), 0);
    const varint = deltaOf(baseRecord(), Buffer.from([Tag.literal]), Buffer.alloc(9, 0xff));
    await refused(varint, DeltaFormatError, /malformed/);
  });

  test('not a delta, a newer version, truncated, or data after its end', async () => {
    await refused(Buffer.from('definitely not a delta'), DeltaFormatError, /bad magic/);
    const newer = Buffer.from(valid);
    newer[4] = 2;
    await refused(newer, DeltaFormatError, /version 2 is not the one this ddiff reads \(1\)/);
    const body = zlib.zstdDecompressSync(valid.subarray(8));
    await refused(Buffer.concat([prefix(), zlib.zstdCompressSync(body.subarray(0, body.length - 40))]), DeltaFormatError, /truncated/);
    await refused(Buffer.concat([prefix(), zlib.zstdCompressSync(Buffer.concat([body, varints(1)]))]), DeltaFormatError, /after its END/);
    await refused(valid.subarray(0, valid.length - 10), DeltaFormatError, /truncated/);
    await refused(deltaOf(record(Tag.raw, 1), Buffer.from('x')), DeltaFormatError, /does not start with its BASE record/);
    await refused(deltaOf(baseRecord(), Buffer.from([0x66])), DeltaFormatError, /unknown record 0x66/);
  });

  test('a delta that needs base bytes, decoded with an index alone', async () => {
    const out = counting();
    await assert.rejects(decodeLayerDelta(Readable.from([valid]), { index: base.index }, out, { source: SOURCE }), DeltaReferenceError);
  });
});
