// File-to-file copies on the hashing threads (util/hash-worker.ts): several at once, spread over
// two threads where there are two cores, each lands at its place with its own digest, and one
// dropped copy leaves the others whole.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyFileRangeHashed } from '../../src/util/hash-worker.js';
import { Sha256Thread } from '../../src/util/sha256-thread.js';

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

test('three ranges copied at once into one file land at their places, each with its own digest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-copies-'));
  try {
    const source = join(dir, 'source');
    const data = randomBytes(9 << 20);
    await writeFile(source, data);
    const out = join(dir, 'out');
    await writeFile(out, Buffer.alloc(0));
    const ranges = [
      { offset: 0, length: 3 << 20, position: 6 << 20 },
      { offset: 3 << 20, length: (3 << 20) - 5, position: 0 },
      { offset: 6 << 20, length: 3 << 20, position: 3 << 20 },
    ];
    const results = await Promise.all(
      ranges.map((r) => copyFileRangeHashed(source, r.offset, r.length, { path: out, position: r.position }).result),
    );
    const written = await readFile(out);
    for (const [i, r] of ranges.entries()) {
      const expected = data.subarray(r.offset, r.offset + r.length);
      assert.deepEqual(results[i], { digest: digestOf(expected), size: r.length });
      assert.ok(written.subarray(r.position, r.position + r.length).equals(expected), `range ${i} at its place`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a dropped copy rejects with the reason given while the copy beside it ends whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-copies-'));
  try {
    const source = join(dir, 'source');
    const data = randomBytes(64 << 20);
    await writeFile(source, data);
    await writeFile(join(dir, 'a'), Buffer.alloc(0));
    await writeFile(join(dir, 'b'), Buffer.alloc(0));
    const kept = copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'a'), position: 0 });
    const dropped = copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'b'), position: 0 });
    dropped.drop(new Error('stopped by the test'));
    await assert.rejects(dropped.result, /stopped by the test/);
    assert.deepEqual(await kept.result, { digest: digestOf(data), size: data.length });
    assert.ok((await readFile(join(dir, 'a'))).equals(data));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stream hashed while copies run on the threads beside it gets its own digest (its pieces reach its own thread)', {
  timeout: 60_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-copies-'));
  try {
    const source = join(dir, 'source');
    const data = randomBytes(32 << 20);
    await writeFile(source, data);
    await writeFile(join(dir, 'out'), Buffer.alloc(0));
    const stream = new Sha256Thread();
    const copies = [0, 1].map(
      (i) => copyFileRangeHashed(source, 0, data.length, { path: join(dir, 'out'), position: i * data.length }).result,
    );
    for (let at = 0; at < data.length; at += 300_000) await stream.update(data.subarray(at, at + 300_000));
    assert.deepEqual(await stream.digest(), { digest: digestOf(data), size: data.length });
    for (const copy of await Promise.all(copies)) assert.deepEqual(copy, { digest: digestOf(data), size: data.length });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
