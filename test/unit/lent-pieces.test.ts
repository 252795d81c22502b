// Inflating zstd into reused buffers and writing lent pieces: the bytes are right whatever the
// frames and read sizes, a buffer is never written over while an output still holds it, and
// every failure (bad data, a truncated stream, a refusing output, a wrong size) is an error,
// through the CLI one line naming the bundle and the layer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { zstdCompressSync } from 'node:zlib';
import { ImageArchiveWriter } from '../../src/archive/write-archive.js';
import { blobPath } from '../../src/image/blob-names.js';
import type { Layer } from '../../src/image/layer.js';
import { FileTarWriter } from '../../src/tar/file-writer.js';
import { type TarOutput, TarWriter } from '../../src/tar/writer.js';
import { sha256 } from '../../src/util/digest.js';
import { fixtureBundle, fixturesDir, runCli } from '../helpers/cli.js';
import { repack } from '../hostile/tar-edit.js';
import { canInflateInPlace, inflateZstdFileRange, type PieceProducer } from '../../src/util/inflate-file.js';

const MB = 1024 * 1024;

async function inTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-lent-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Three frames, a skippable frame between two of them, and the plain bytes they hold. */
function frames(): { packed: Buffer; plain: Buffer } {
  const parts = [randomBytes(3 * MB + 17), Buffer.alloc(2 * MB, 'layer text '), randomBytes(70_001)];
  const skippable = Buffer.alloc(8 + 10);
  skippable.writeUInt32LE(0x184d2a50, 0);
  skippable.writeUInt32LE(10, 4);
  const packed = parts.map((p) => zstdCompressSync(p));
  return { packed: Buffer.concat([packed[0]!, skippable, packed[1]!, packed[2]!]), plain: Buffer.concat(parts) };
}

/** Copies each piece only when its write settles (a while later): a buffer reused early shows. */
function slowCollector(): { sink: (piece: Buffer) => Promise<void>; bytes: () => Buffer } {
  const settled: Buffer[] = [];
  return {
    sink: async (piece) => {
      const at = settled.push(Buffer.alloc(0)) - 1;
      await new Promise((resolve) => setTimeout(resolve, 2));
      settled[at] = Buffer.from(piece);
    },
    bytes: () => Buffer.concat(settled),
  };
}

describe('inflating zstd in place (inflateZstdFileRange)', { skip: !canInflateInPlace() && 'no native zstd handle' }, () => {
  test('every frame of a range in a file, skippable frames skipped; pieces stay whole until their write settles', async () => {
    const { packed, plain } = frames();
    await inTempDir(async (dir) => {
      const path = join(dir, 'bundle');
      await writeFile(path, Buffer.concat([randomBytes(999), packed, randomBytes(5000)]));
      const out = slowCollector();
      const hash = createHash('sha256');
      let counted = 0;
      await inflateZstdFileRange({ path, offset: 999, length: packed.length }, out.sink, {
        source: 'app.ddiff',
        hashed: async (piece) => void hash.update(piece),
        counted: (n) => (counted += n),
      });
      assert.ok(out.bytes().equals(plain));
      assert.equal(hash.digest('hex'), createHash('sha256').update(plain).digest('hex'));
      assert.equal(counted, plain.length);
    });
  });

  test('a stream cut inside a frame, and bytes that are not zstd, are errors naming the source', async () => {
    const { packed } = frames();
    await inTempDir(async (dir) => {
      const path = join(dir, 'bundle');
      await writeFile(path, Buffer.concat([packed, Buffer.from('not zstd at all')]));
      const drop = async () => undefined;
      await assert.rejects(
        inflateZstdFileRange({ path, offset: 0, length: packed.length - 100 }, drop, { source: 'app.ddiff' }),
        /zstd decompression of app\.ddiff failed: .*truncated/,
      );
      await assert.rejects(
        inflateZstdFileRange({ path, offset: packed.length, length: 15 }, drop, { source: 'app.ddiff' }),
        /zstd decompression of app\.ddiff failed: not zstd data/,
      );
    });
  });

  test("an output that refuses a piece stops the inflation with its error, and the pool's buffers come back", async () => {
    const { packed, plain } = frames();
    await inTempDir(async (dir) => {
      const path = join(dir, 'bundle');
      await writeFile(path, packed);
      const file = { path, offset: 0, length: packed.length };
      let pieces = 0;
      const refusing = async () => {
        if (++pieces === 2) throw new Error('disk full');
      };
      await assert.rejects(inflateZstdFileRange(file, refusing, { source: 'app.ddiff' }), /disk full/);
      // Buffers kept by the failed run would leave these waiting for ever.
      const runs = [slowCollector(), slowCollector(), slowCollector()];
      await Promise.all(runs.map((run) => inflateZstdFileRange(file, run.sink, { source: 'app.ddiff' })));
      for (const run of runs) assert.ok(run.bytes().equals(plain));
    });
  });
});

/** Lends `data` in pieces of `size` from one buffer, written over with junk as soon as each write settles. */
function lender(data: Buffer, size: number): PieceProducer {
  return async (sink) => {
    const buffer = Buffer.alloc(size);
    for (let at = 0; at < data.length; at += size) {
      const piece = buffer.subarray(0, data.copy(buffer, 0, at, at + size));
      await sink(piece);
      buffer.fill(0xee);
    }
  };
}

/** The archive `write` makes of the same entries, to compare byte for byte. */
async function streamedArchive(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const writer = new TarWriter(out);
  for (const { name, data } of entries) await writer.place(name, data.length).write(Readable.from([data]));
  await writer.finish();
  return Buffer.concat(chunks);
}

describe('writing lent pieces (writeLent)', () => {
  const entries = [
    { name: 'blobs/sha256/a', data: randomBytes(3 * MB + 5) },
    { name: 'manifest.json', data: Buffer.from('[]') },
  ];
  /** `close`: what the output holds open goes (a test that never reads the archive still ends clean). */
  const outputs: Record<
    string,
    (dir: string) => Promise<{ writer: TarOutput; written: () => Promise<Buffer>; close?: () => Promise<void> }>
  > = {
    'a stream to a file (lends)': async (dir) => {
      const path = join(dir, 'out.tar');
      const file = createWriteStream(path);
      return { writer: new TarWriter(file), written: () => readFile(path) };
    },
    'a PassThrough, which may keep chunks (copies)': async () => {
      const out: Writable & PassThrough = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (c: Buffer) => chunks.push(c));
      return { writer: new TarWriter(out), written: async () => Buffer.concat(chunks) };
    },
    'a file written in place (FileTarWriter)': async (dir) => {
      const path = join(dir, 'out.tar');
      const handle = await open(path, 'w');
      return {
        writer: new FileTarWriter(handle, path),
        written: async () => {
          await handle.close();
          return readFile(path);
        },
        close: () => handle.close(),
      };
    },
  };

  for (const [what, make] of Object.entries(outputs)) {
    test(`${what}: the bytes write() makes, though the lender writes over each piece once it is given back`, async () => {
      await inTempDir(async (dir) => {
        const { writer, written } = await make(dir);
        for (const { name, data } of entries) await writer.place(name, data.length).writeLent(lender(data, 64 * 1024 + 3));
        await writer.finish();
        assert.ok((await written()).equals(await streamedArchive(entries)));
      });
    });

    test(`${what}: more or fewer bytes than the entry's size is an error`, async () => {
      await inTempDir(async (dir) => {
        const one = await make(dir);
        await assert.rejects(one.writer.place('big', 10).writeLent(lender(Buffer.alloc(11), 4)), /at least 1[12] bytes for an entry of 10/);
        const other = await make(dir);
        await assert.rejects(other.writer.place('small', 10).writeLent(lender(Buffer.alloc(9), 4)), /9 bytes for an entry of 10/);
        for (const { writer, close } of [one, other]) {
          writer.destroy();
          await close?.();
        }
      });
    });
  }
});

describe('ImageArchiveWriter inflating zstd layers for an engine that cannot read them', () => {
  /** A zstd layer lying at an offset in a file (in place), or the same bytes only as a stream. */
  async function zstdLayer(dir: string, plain: Buffer, inFile: boolean, diffId = sha256(plain)): Promise<Layer> {
    const packed = zstdCompressSync(plain);
    const path = join(dir, `bundle-${inFile}`);
    await writeFile(path, Buffer.concat([Buffer.alloc(100), packed]));
    return {
      diffId,
      digest: sha256(packed),
      size: packed.length,
      uncompressedSize: plain.length,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
      compression: 'zstd',
      source: 'app.ddiff',
      path: blobPath(sha256(packed)),
      open: () => createReadStream(path, { start: 100 }),
      ...(inFile ? { file: { path, offset: 100 } } : {}),
    };
  }

  async function archive(dir: string, layer: Layer, name: string): Promise<Buffer> {
    const path = join(dir, name);
    const handle = await open(path, 'w');
    try {
      const configBytes = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
      const writer = new ImageArchiveWriter(new FileTarWriter(handle, path), { inflate: new Set(['zstd']) });
      await writer.finish([{ id: sha256(configBytes), configBytes, tags: ['app:1'], layers: [layer] }]);
    } finally {
      await handle.close();
    }
    return readFile(path);
  }

  test('a layer in a file (inflated in place) and one that streams give the same archive', async () => {
    const plain = frames().plain;
    await inTempDir(async (dir) => {
      const inPlace = await archive(dir, await zstdLayer(dir, plain, true), 'a.tar');
      const streamed = await archive(dir, await zstdLayer(dir, plain, false), 'b.tar');
      assert.ok(inPlace.equals(streamed));
      assert.ok(inPlace.includes(plain.subarray(0, 4096)), 'the layer is written uncompressed');
    });
  });

  for (const inFile of [true, false]) {
    test(`a layer that does not inflate to its diffID fails, naming it (${inFile ? 'in place' : 'streamed'})`, async () => {
      await inTempDir(async (dir) => {
        const layer = await zstdLayer(dir, randomBytes(2 * MB), inFile, sha256(Buffer.from('something else')));
        await assert.rejects(
          archive(dir, layer, 'c.tar'),
          /app\.ddiff.*its uncompressed bytes hash to sha256:[0-9a-f]{64}, not its diffID/,
        );
      });
    });
  }
});

describe('a bundle whose metadata misstates a zstd layer’s uncompressed size (CLI)', () => {
  /** The fixtures' bundle (zstd), its layer said to inflate to 512 bytes more than it does. */
  async function misstated(dir: string): Promise<string> {
    const good = await readFile(await fixtureBundle(dir));
    const bad = await repack(good, (files) => {
      const meta = files[0]!;
      const parsed = JSON.parse(String(meta.content)) as { blobs: { uncompressedSize?: number }[] };
      for (const blob of parsed.blobs) if (blob.uncompressedSize !== undefined) blob.uncompressedSize += 512;
      meta.content = JSON.stringify(parsed);
    });
    const path = join(dir, 'misstated.ddiff');
    await writeFile(path, bad);
    return path;
  }
  const base = join(fixturesDir, 'docker-base.tar');
  const problem =
    /^ddiff: error: .*misstated\.ddiff: layer 'blobs\/sha256\/[0-9a-f]{64}' \(diffID sha256:[0-9a-f]{64}\) is corrupt: it inflates to \d+ bytes, not the \d+ its metadata records\n$/;

  test('load -o FILE: one error line naming the bundle and the layer, exit 1, no output file', async () => {
    await inTempDir(async (dir) => {
      const bundle = await misstated(dir);
      const out = join(dir, 'out', 'image.tar');
      await mkdir(join(dir, 'out'));
      const r = await runCli(['load', bundle, '--base', base, '-o', out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, problem);
      assert.deepEqual(await readdir(join(dir, 'out')), []);
    });
  });

  test('load -o - (a pipe): the same one line, no stack trace, though the archive was half written', async () => {
    await inTempDir(async (dir) => {
      const r = await runCli(['load', await misstated(dir), '--base', base, '-o', '-']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, problem);
    });
  });
});
