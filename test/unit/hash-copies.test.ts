// File-to-file copies on the hashing threads (util/hash-worker.ts): several at once beside each
// other, spread over two threads where there are two cores, each lands at its place with its
// own digest, one dropped copy leaves the others whole, and a stream hashed meanwhile keeps to
// its own thread.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyFileRangeHashed } from '../../src/util/hash-worker.js';
import { Sha256Thread } from '../../src/util/sha256-thread.js';

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A source file of `size` random bytes and empty outputs, in a directory removed afterwards. */
async function withFiles(size: number, outputs: string[], use: (dir: string, source: string, data: Buffer) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-copies-'));
  try {
    const data = randomBytes(size);
    await writeFile(join(dir, 'source'), data);
    for (const name of outputs) await writeFile(join(dir, name), Buffer.alloc(0));
    await use(dir, join(dir, 'source'), data);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('three ranges copied at once beside each other into one file land at their places, each with its own digest', () =>
  withFiles(9 << 20, ['out'], async (dir, source, data) => {
    const out = join(dir, 'out');
    const ranges = [
      { offset: 0, length: 3 << 20, position: 6 << 20 },
      { offset: 3 << 20, length: (3 << 20) - 5, position: 0 },
      { offset: 6 << 20, length: 3 << 20, position: 3 << 20 },
    ];
    const results = await Promise.all(
      ranges.map((r) => copyFileRangeHashed(source, r.offset, r.length, { path: out, position: r.position }, true).result),
    );
    const written = await readFile(out);
    for (const [i, r] of ranges.entries()) {
      const expected = data.subarray(r.offset, r.offset + r.length);
      assert.deepEqual(results[i], { digest: digestOf(expected), size: r.length });
      assert.ok(written.subarray(r.position, r.position + r.length).equals(expected), `range ${i} at its place`);
    }
  }));

test('a dropped copy rejects with the reason given while the copy beside it ends whole', () =>
  withFiles(64 << 20, ['a', 'b'], async (dir, source, data) => {
    const kept = copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'a'), position: 0 }, true);
    const dropped = copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'b'), position: 0 }, true);
    dropped.drop(new Error('stopped by the test'));
    await assert.rejects(dropped.result, /stopped by the test/);
    assert.deepEqual(await kept.result, { digest: digestOf(data), size: data.length });
    assert.ok((await readFile(join(dir, 'a'))).equals(data));
  }));

test('a stream hashed while copies run beside it gets its own digest (its pieces reach its own thread)', { timeout: 60_000 }, () =>
  withFiles(32 << 20, ['out'], async (dir, source, data) => {
    const stream = new Sha256Thread();
    const copies = [0, 1].map(
      (i) => copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'out'), position: i * data.length }, true).result,
    );
    for (let at = 0; at < data.length; at += 300_000) await stream.update(data.subarray(at, at + 300_000));
    assert.deepEqual(await stream.digest(), { digest: digestOf(data), size: data.length });
    for (const copy of await Promise.all(copies)) assert.deepEqual(copy, { digest: digestOf(data), size: data.length });
  }),
);
