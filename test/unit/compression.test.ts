// The codecs: gzip and zstd in-process (node:zlib), compressed on every core in independent
// members/frames, read back whole (including zstd streams of many frames, which Node's own
// ZstdDecompress truncates), with no system `zstd` and in flat memory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { constants, createZstdDecompress, zstdCompressSync } from 'node:zlib';
import { ParallelCompressor, PIECE_BYTES, takeEngine, type CompressMethod } from '../../src/util/compress.js';
import { compressInto, outputBound } from '../../src/util/compress-into.js';
import { compressFileRange } from '../../src/util/compress-file.js';
import type { PieceProducer } from '../../src/util/inflate-file.js';
import { decompressor, detectCompression } from '../../src/util/compression.js';
import { ZstdFrameScanner } from '../../src/util/zstd-decompress.js';
import { fixturesDir, repoRoot, runCli } from '../helpers/cli.js';
import { makeTar, sha256Hex } from '../helpers/tar.js';

const MB = 1024 * 1024;

/** Partly compressible bytes: random blocks, text, zeros. */
function sample(size: number): Buffer {
  const quarter = size >> 2;
  return Buffer.concat([
    randomBytes(quarter),
    Buffer.alloc(quarter, 'layer text '),
    randomBytes(quarter),
    Buffer.alloc(size - 3 * quarter),
  ]);
}

/** `data` cut into chunks of 1..maxChunk bytes (copies, as a file stream would give them). */
function chunked(data: Buffer, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; ) {
    const n = 1 + Math.floor(Math.random() * maxChunk);
    chunks.push(Buffer.from(data.subarray(at, at + n)));
    at += n;
  }
  return chunks;
}

async function collect(source: Readable, ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline([source, ...stages, sink] as unknown as [Readable, Writable]);
  return Buffer.concat(out);
}

const compress = (method: CompressMethod, data: Buffer, pieceBytes?: number, maxChunk = 70_000) =>
  collect(Readable.from(chunked(data, maxChunk)), new ParallelCompressor(method, method === 'gzip' ? 6 : 3, pieceBytes));
const inflate = (method: CompressMethod, data: Buffer, maxChunk = 1 << 30) =>
  collect(Readable.from(chunked(data, maxChunk)), decompressor(method, 'test'));

/** Frames in a zstd stream, counted from their headers. */
function zstdFrames(data: Buffer): number {
  const scanner = new ZstdFrameScanner();
  scanner.split(data);
  assert.equal(scanner.endProblem(), undefined);
  return scanner.frames;
}

describe('round trips', () => {
  for (const method of ['zstd', 'gzip'] as const) {
    test(`${method}: one piece, many pieces, empty input; read whole by ddiff and by the system tool`, async () => {
      for (const [size, pieceBytes] of [
        [3 * MB + 12345, undefined],
        [3 * MB + 12345, 64 * 1024],
        [30_000, 1000],
      ] as const) {
        const data = sample(size);
        const packed = await compress(method, data, pieceBytes);
        assert.equal(detectCompression(packed), method);
        if (method === 'zstd') assert.equal(zstdFrames(packed), Math.ceil(data.length / (pieceBytes ?? PIECE_BYTES.zstd)));
        assert.ok((await inflate(method, packed)).equals(data), `${method}, pieces of ${pieceBytes ?? 'default'} bytes`);
        assert.ok((await inflate(method, packed, size > MB ? 70_000 : 7)).equals(data), `${method}, read in small pieces`);
        const tool = spawnSync(method, ['-d', '-c'], { input: packed, maxBuffer: 64 * MB });
        if (tool.error === undefined)
          assert.ok(tool.stdout.equals(data), `system ${method} -d reads the multi-${method === 'zstd' ? 'frame' : 'member'} stream whole`);
      }
      const empty = await compress(method, Buffer.alloc(0));
      assert.equal(detectCompression(empty), method, 'an empty input is still a valid compressed stream');
      assert.equal((await inflate(method, empty)).length, 0);
    });
  }

  test('several streams at once share the cores and each comes out whole', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => sample(MB + i * 1000));
    const outputs = await Promise.all(inputs.map((data, i) => compress(i % 2 ? 'gzip' : 'zstd', data, 100_000)));
    for (const [i, packed] of outputs.entries()) assert.ok((await inflate(i % 2 ? 'gzip' : 'zstd', packed)).equals(inputs[i]!));
  });

  test('a failing consumer stops the compressor and frees its slots', async () => {
    const failing = new Writable({ write: (_chunk, _encoding, callback) => callback(new Error('disk full')) });
    await assert.rejects(
      pipeline(Readable.from(chunked(sample(2 * MB), 65536)), new ParallelCompressor('zstd', 3, 100_000), failing),
      /disk full/,
    );
    // Slots are shared by the process: a leak would hang this one.
    const data = sample(MB);
    assert.ok((await inflate('zstd', await compress('zstd', data, 100_000))).equals(data));
  });
});

describe('zstd decompression', () => {
  const parts = [Buffer.from('hello '.repeat(1000)), randomBytes(3000), Buffer.alloc(500_000), Buffer.from('x')];
  const frame = (data: Buffer, checksum: number) =>
    zstdCompressSync(data, { params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: checksum } });
  const skippable = Buffer.concat([Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]), Buffer.from('skip!')]);
  const stream = Buffer.concat([skippable, frame(parts[0]!, 1), frame(parts[1]!, 0), skippable, frame(parts[2]!, 1), frame(parts[3]!, 0)]);
  const whole = Buffer.concat(parts);

  test("Node's own ZstdDecompress stops at the first frame when one write holds several (why ddiff cuts at frames)", async () => {
    const out = await collect(Readable.from([Buffer.concat([frame(parts[0]!, 1), frame(parts[1]!, 1)])]), createZstdDecompress());
    // If this starts to fail, Node reads concatenated frames itself (nodejs/node#64741 fixed).
    assert.equal(out.length, parts[0]!.length);
  });

  test('many frames and skippable frames, however the input is cut', async () => {
    for (const maxChunk of [1 << 30, 1, 7, 70_000])
      assert.ok((await inflate('zstd', stream, maxChunk)).equals(whole), `chunks up to ${maxChunk}`);
  });

  test('truncated data and trailing garbage are errors, not short output', async () => {
    await assert.rejects(
      inflate('zstd', stream.subarray(0, stream.length - 3)),
      /zstd decompression of test failed: the data ends inside frame 4 \(truncated\)/,
    );
    await assert.rejects(inflate('zstd', Buffer.concat([stream, Buffer.from([0x28, 0xb5])])), /ends with 2 stray bytes after frame 4/);
    await assert.rejects(inflate('zstd', Buffer.concat([stream, Buffer.from('garbage!')])), /not zstd data at byte \d+/);
    const corrupt = Buffer.from(frame(randomBytes(100_000), 1));
    corrupt[corrupt.length - 10]! ^= 0xff;
    await assert.rejects(inflate('zstd', corrupt), /zstd decompression of test failed/);
  });

  test("decompressor('zstd') needs no system zstd (PATH empty)", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ddiff-nozstd-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'in.zst'), stream);
    const module = pathToFileURL(join(repoRoot, 'dist', 'src', 'util', 'compression.js')).href;
    const script = `
      import { decompressor } from ${JSON.stringify(module)};
      import { createReadStream } from 'node:fs';
      import { createHash } from 'node:crypto';
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(${JSON.stringify(join(dir, 'in.zst'))}).pipe(decompressor('zstd', 'in.zst'))) hash.update(chunk);
      process.stdout.write(hash.digest('hex'));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: dir }, encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(spawnSync('sh', ['-c', 'command -v zstd'], { env: { PATH: dir } }).status !== 0, true, 'no zstd on that PATH');
    assert.equal(child.stdout, createHash('sha256').update(whole).digest('hex'));
  });
});

describe('bundles', () => {
  const base = join(fixturesDir, 'docker-base.tar');
  const app = join(fixturesDir, 'docker-app.tar');

  async function bundleBlobs(t: { after: (fn: () => Promise<void>) => void }, extra: string[], env?: NodeJS.ProcessEnv) {
    const dir = await mkdtemp(join(tmpdir(), 'ddiff-compress-test-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const bundle = join(dir, 'app.ddiff');
    const d = await runCli(['diff', base, app, '-o', bundle, '--json', ...extra], env ? { env } : {});
    assert.equal(d.code, 0, d.stderr);
    const { metadata } = JSON.parse(d.stdout) as {
      metadata: { blobs: { digest: string; mediaType: string; uncompressedSize?: number }[] };
    };
    const layers = metadata.blobs.filter((b) => b.mediaType.includes('layer'));
    const listing = spawnSync('tar', ['-xOf', bundle, `blobs/sha256/${layers[0]!.digest.slice(7)}`], { maxBuffer: 256 * MB });
    const out = join(dir, 'app.tar');
    const l = await runCli(['load', bundle, '--base', base, '-o', out, '--json']);
    assert.equal(l.code, 0, l.stderr);
    const listed = await runCli(['list', '--json', out]);
    const expected = JSON.parse(await readFile(join(fixturesDir, 'expected.json'), 'utf8'))['docker-app.tar'][0];
    assert.equal(JSON.parse(listed.stdout).images[0].id, expected.imageId, 'the loaded image has the target image ID');
    return { layers, firstLayer: listing.stdout as Buffer };
  }

  test('diff stores new layers as zstd by default, recording their uncompressed size', async (t) => {
    const { layers, firstLayer } = await bundleBlobs(t, []);
    assert.ok(layers.length > 0);
    for (const layer of layers) {
      assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
      assert.ok(Number.isSafeInteger(layer.uncompressedSize), 'uncompressedSize recorded');
    }
    assert.equal(detectCompression(firstLayer), 'zstd');
    assert.equal((await inflate('zstd', firstLayer)).length, layers[0]!.uncompressedSize);
  });

  test('--compress gzip still gives gzip layers', async (t) => {
    const { layers, firstLayer } = await bundleBlobs(t, ['--compress', 'gzip']);
    for (const layer of layers) assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(detectCompression(firstLayer), 'gzip');
    assert.equal((await inflate('gzip', firstLayer)).length, layers[0]!.uncompressedSize);
  });

  test('a zstd layer that arrives compressed (many frames) is kept byte for byte, its uncompressed size counted, and loads', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ddiff-zstd-target-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const layer = await makeTar([
      { name: 'big.bin', content: sample(600_000) },
      { name: 'etc/motd', content: 'zstd layer\n' },
    ]);
    const packed = await compress('zstd', layer, 100_000);
    assert.ok(zstdFrames(packed) > 1);
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(layer)}`] },
    });
    const configName = `${sha256Hex(config)}.json`;
    await writeFile(
      join(dir, 'zstd.tar'),
      await makeTar([
        { name: 'l.tar.zst', content: packed },
        { name: configName, content: config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: ['zstd/layer:1'], Layers: ['l.tar.zst'] }]) },
      ]),
    );
    const bundle = join(dir, 'z.ddiff');
    // --no-delta: this is about the zstd bytes as they are, not a delta against the base.
    const d = await runCli(['diff', base, join(dir, 'zstd.tar'), '-o', bundle, '--json', '--no-delta']);
    assert.equal(d.code, 0, d.stderr);
    const blob = (JSON.parse(d.stdout).metadata.blobs as { digest: string; mediaType: string; uncompressedSize?: number }[]).find(
      (b) => b.digest === `sha256:${sha256Hex(packed)}`,
    );
    assert.ok(blob, 'the zstd bytes are bundled as they are');
    assert.equal(blob.uncompressedSize, layer.length);
    const out = join(dir, 'out.tar');
    const l = await runCli(['load', bundle, '--base', base, '-o', out]);
    assert.equal(l.code, 0, l.stderr);
    const listed = (JSON.parse((await runCli(['list', '--json', out])).stdout) as { images: { id: string }[] }).images;
    assert.equal(listed[0]!.id, `sha256:${sha256Hex(config)}`);
  });

  test('diff works with no system zstd on PATH', async (t) => {
    const empty = await mkdtemp(join(tmpdir(), 'ddiff-empty-path-'));
    t.after(() => rm(empty, { recursive: true, force: true }));
    const { layers } = await bundleBlobs(t, [], { PATH: empty });
    for (const layer of layers) assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  });
});

describe('memory', () => {
  for (const method of ['zstd', 'gzip'] as const) {
    // zstd over 1 GiB; gzip (5x slower) over 256 MiB.
    const gib = method === 'zstd' ? 1 : 0.25;
    test(`${method}: ${gib} GiB through the compressor stays under 150 MB of peak RSS`, { timeout: 300_000 }, async (t) => {
      const module = pathToFileURL(join(repoRoot, 'dist', 'src', 'util', 'compress.js')).href;
      // The input comes from a ring of buffers larger than what the compressor may hold
      // (PIECE_BYTES per slot, a slot per core up to 8), so the generator itself makes no
      // garbage and the peak is the compressor's.
      const script = `
        import { availableParallelism } from 'node:os';
        import { Readable, Writable } from 'node:stream';
        import { pipeline } from 'node:stream/promises';
        import { randomBytes } from 'node:crypto';
        import { compressor, PIECE_BYTES } from ${JSON.stringify(module)};
        const method = ${JSON.stringify(method)};
        const CHUNK = 64 * 1024, TOTAL = ${gib} * 1024 * 1024 * 1024;
        const ringBytes = (Math.min(availableParallelism(), 8) + 2) * PIECE_BYTES[method];
        const ring = Array.from({ length: ringBytes / CHUNK }, () => Buffer.allocUnsafe(CHUNK));
        const text = Buffer.alloc(1 << 20, 'usr/share/doc/copyright\\n'), noise = randomBytes(1 << 20);
        let seed = 7, n = 0;
        function* chunks() {
          for (let done = 0; done < TOTAL; done += CHUNK) {
            const block = ring[n++ % ring.length];
            seed = (seed * 48271) % 2147483647;
            (seed & 1 ? text : noise).copy(block, 0, seed % ((1 << 20) - CHUNK));
            block.writeUInt32LE(done >>> 0, seed % 1000);
            yield block;
          }
        }
        let out = 0;
        await pipeline(Readable.from(chunks()), compressor(method), new Writable({ write(c, e, cb) { out += c.length; cb(); } }));
        process.stdout.write(JSON.stringify({ out, maxRss: process.resourceUsage().maxRSS * 1024 }));`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      const { out, maxRss } = JSON.parse(stdout) as { out: number; maxRss: number };
      assert.ok(out > gib * 128 * MB && out < gib * 1024 * MB, `compressed to ${out} bytes`);
      assert.ok(maxRss < 150 * MB, `peak RSS ${(maxRss / MB).toFixed(0)} MB`);
      t.diagnostic(`${gib} GiB -> ${(out / MB).toFixed(0)} MiB, peak RSS ${(maxRss / MB).toFixed(0)} MB`);
    });
  }
});

// Last: these hold tens of MB at once, which the peak-RSS tests above must not see.
describe('compressing a file range in place (compressFileRange)', () => {
  const ranged = async (data: Buffer, before: number, after: number) => {
    const dir = await mkdtemp(join(tmpdir(), 'ddiff-range-'));
    const path = join(dir, 'archive');
    await writeFile(path, Buffer.concat([randomBytes(before), data, randomBytes(after)]));
    return { dir, path };
  };
  /** What a producer lends, copied as the writers would write it before the buffer comes back. */
  const gather = async (produce: PieceProducer): Promise<Buffer> => {
    const pieces: Buffer[] = [];
    await produce(async (piece) => {
      await new Promise((resolve) => setImmediate(resolve)); // a sink that takes its time
      pieces.push(Buffer.from(piece));
    });
    return Buffer.concat(pieces);
  };
  const fromRange = (file: { path: string; offset: number; length: number }, method: CompressMethod) =>
    gather(compressFileRange(file, method));

  for (const method of ['zstd', 'gzip'] as const) {
    test(`${method}: the range's bytes, the same pieces as from a stream; an empty range; progress counts every byte`, async () => {
      const data = sample(2 * PIECE_BYTES[method] + 12345);
      const { dir, path } = await ranged(data, 777, 1000);
      try {
        let counted = 0;
        const packed = await gather(
          compressFileRange({ path, offset: 777, length: data.length }, method, undefined, (n) => (counted += n)),
        );
        assert.ok((await inflate(method, packed)).equals(data));
        assert.ok(packed.equals(await compress(method, data)), 'byte for byte what the stream compressor makes');
        assert.equal(counted, data.length);
        const empty = await fromRange({ path, offset: 5, length: 0 }, method);
        assert.equal(detectCompression(empty), method);
        assert.equal((await inflate(method, empty)).length, 0);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  for (const method of ['zstd', 'gzip'] as const) {
    test(`${method}: compressInto writes into the caller's buffer; output that outgrows it comes whole all the same`, async () => {
      const data = sample(3 * MB);
      const engine = takeEngine(method, 3, 'lent');
      try {
        const out = Buffer.alloc(outputBound(data.length));
        const packed = await compressInto(engine, method, data, out);
        assert.equal(packed.buffer, out.buffer, 'a view of the buffer given, not fresh memory');
        assert.ok((await inflate(method, packed)).equals(data));
        // The same compressor again, into a buffer far too small: a second, independent frame or member.
        const small = Buffer.alloc(1024);
        const again = await compressInto(engine, method, data, small);
        assert.notEqual(again.buffer, small.buffer);
        assert.ok((await inflate(method, again)).equals(data));
      } finally {
        engine.destroy();
      }
    });
  }

  test("a file that ends inside the range gives the bytes it has (the caller's digest then fails)", async () => {
    const data = sample(PIECE_BYTES.zstd + 5000);
    const { dir, path } = await ranged(data, 100, 0);
    try {
      const packed = await fromRange({ path, offset: 100, length: data.length + 3 * MB }, 'zstd');
      assert.ok((await inflate('zstd', packed)).equals(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('ranges compressed at once share the piece buffers; one stopped early gives its buffers back', async () => {
    const data = sample(3 * PIECE_BYTES.zstd + 1);
    const { dir, path } = await ranged(data, 0, 0);
    try {
      const file = { path, offset: 0, length: data.length };
      let lent = 0;
      const stopped = compressFileRange(
        file,
        'zstd',
      )(async () => {
        if (++lent === 2) throw new Error('disk full');
      });
      const others = [1, 2, 3].map(() => fromRange(file, 'zstd'));
      await assert.rejects(stopped, /disk full/);
      assert.equal(lent, 2, 'nothing is lent after a refusal');
      for (const packed of await Promise.all(others)) assert.ok((await inflate('zstd', packed)).equals(data));
      // The pool is the process's: buffers the stopped one held and never gave back would hang this.
      const again = await Promise.all([fromRange(file, 'zstd'), fromRange(file, 'zstd')]);
      for (const packed of again) assert.ok((await inflate('zstd', packed)).equals(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
