// Big files through layer deltas: a file of more than 8 GiB (its base lies sparse on disk, the
// target is generated as a stream of mostly zeros: nothing holds it) round-trips exactly; and
// encoding and decoding a layer whose 1 GiB file changed in every piece stays under 140 MB of
// peak RSS (the budget is 150), each measured in a child process of its own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CHUNK } from '../../src/delta/format.js';
import { decodeLayerDelta, encodeLayerDelta, SpooledBase } from '../../src/delta/index.js';

const BLOCK = 512;
const MB = 1024 * 1024;
const GB = 1024 * MB;

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** A ustar header; sizes of 8 GiB and more in GNU base-256, as GNU tar writes them. */
function header(name: string, size: number, flag = '0'): Buffer {
  const block = Buffer.alloc(BLOCK);
  const octal = (value: number, offset: number, length: number): void => {
    block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
  };
  block.write(name, 0, 100, 'utf8');
  octal(0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  if (size < 8 ** 11) octal(size, 124, 12);
  else {
    block[124] = 0x80;
    for (let i = 11, rest = size; i > 0; i--, rest = Math.floor(rest / 256)) block[124 + i] = rest % 256;
  }
  octal(1_700_000_000, 136, 12);
  block.write(flag, 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** A PAX extended header carrying `size` (the form `tar --format=pax` uses for big files). */
function paxSize(size: number): Buffer {
  let record = '';
  for (let length = 10; ; length++) {
    record = `${length} size=${size}\n`;
    if (Buffer.byteLength(record) === length) break;
  }
  const data = Buffer.alloc(padded(record.length));
  data.write(record);
  return Buffer.concat([header('PaxHeaders/huge.img', record.length, 'x'), data]);
}

function noise(seed: number, length: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i * 64 < length; i++) parts.push(createHash('sha512').update(`${seed}:${i}`).digest());
  return Buffer.concat(parts).subarray(0, length);
}

const ZEROS = Buffer.alloc(MB);

interface Region {
  at: number;
  data: Buffer;
}

/** A file's content as 1 MiB chunks: zeros, except the regions (each within one chunk). */
function* content(size: number, regions: Region[]): Generator<Buffer> {
  for (let at = 0; at < size; at += MB) {
    const length = Math.min(MB, size - at);
    const here = regions.filter((r) => r.at >= at && r.at < at + length);
    if (here.length === 0) {
      yield ZEROS.subarray(0, length);
      continue;
    }
    const chunk = Buffer.alloc(length);
    for (const r of here) r.data.copy(chunk, r.at - at);
    yield chunk;
  }
}

function counting(): Writable & { size: number } {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      sink.size += chunk.length;
      callback();
    },
  }) as Writable & { size: number };
  sink.size = 0;
  return sink;
}

/**
 * Minutes of streaming (8 GiB of zeros, 1 GiB changed in every piece): kept out of `npm test`
 * (15-minute budget) and run with DDIFF_BIG_TESTS=1 (`npm run test:big`).
 */
const big = process.env.DDIFF_BIG_TESTS === '1' ? {} : { skip: 'slow (minutes); run with DDIFF_BIG_TESTS=1 (npm run test:big)' };

describe('big files', big, () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ddiff-delta-big-'));
  });
  after(() => rm(work, { recursive: true, force: true }));

  test('a file of more than 8 GiB, sparse in the base and streamed as zeros, round-trips exactly', async () => {
    const size = 8 * GB + 5 * MB + 123;
    const old: Region[] = [
      { at: 1 * GB + 4096, data: noise(1, 256 * 1024) },
      { at: size - 200_000, data: noise(2, 100_000) },
    ];
    // The base layer: header, content written only where it is not zero (the rest a hole), end.
    const basePath = join(work, 'base.tar');
    const handle = await open(basePath, 'w');
    await handle.write(header('huge.img', size));
    for (const r of old) await handle.write(r.data, 0, r.data.length, BLOCK + r.at);
    await handle.truncate(BLOCK + padded(size) + 2 * BLOCK);
    await handle.close();

    const changed = Buffer.from(old[0]!.data);
    changed.write('a few changed bytes', 1000);
    const regions = [{ at: old[0]!.at, data: changed }, old[1]!, { at: 4 * GB + 12_345, data: noise(3, 300_000) }];
    async function* target(): AsyncGenerator<Buffer> {
      yield header('hello.txt', 6);
      yield Buffer.concat([Buffer.from('hello\n'), Buffer.alloc(BLOCK - 6)]);
      yield paxSize(size);
      yield header('huge.img', 0);
      yield* content(size, regions);
      yield Buffer.alloc(padded(size) - size + 2 * BLOCK);
    }

    const spool = await SpooledBase.create(work);
    try {
      await spool.addLayerFile('sha256:0000000000000000000000000000000000000000000000000000000000000001', basePath, { hash: false });
      assert.equal(spool.index.layers[0]!.files[0]!.size, size);
      const deltaPath = join(work, 'huge.delta');
      const stats = await encodeLayerDelta(target(), spool, createWriteStream(deltaPath));
      assert.ok(stats.bytesIn > size);
      assert.ok(stats.bytesOut < 2 * MB, `delta of ${stats.bytesOut} bytes`);
      assert.equal(stats.files.literal, 1); // hello.txt; huge.img's zero pieces count with its delta pieces
      // The decode's own digest is over what it wrote; hashing 8 GiB a third time would add minutes.
      const sink = counting();
      const decoded = await decodeLayerDelta(createReadStream(deltaPath), spool, sink, { expectedSize: stats.bytesIn });
      assert.equal(decoded.size, stats.bytesIn);
      assert.equal(sink.size, stats.bytesIn);
      assert.equal(decoded.digest, stats.digest);
    } finally {
      await spool.close();
    }
  });

  test('encoding and decoding a 1 GiB file changed in every piece stays under 140 MB of peak RSS (the budget is 150)', async () => {
    const size = GB + 777;
    const basePath = join(work, 'mem-base.tar');
    const out = createWriteStream(basePath);
    const block = noise(9, MB);
    out.write(header('model.bin', size));
    for (let at = 0; at < size; at += MB) {
      const chunk = Buffer.from(block.subarray(0, Math.min(MB, size - at)));
      chunk.writeUInt32BE(at / MB, 0); // no two MiB alike
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    out.end(Buffer.alloc(padded(size) - size + 2 * BLOCK));
    await new Promise<void>((resolve) => out.on('finish', () => resolve()));

    const deltaModule = fileURLToPath(new URL('../../src/delta/index.js', import.meta.url));
    const memoryModule = fileURLToPath(new URL('../../src/util/memory.js', import.meta.url));
    // The child bounds its dead Buffers as ddiff's main does (program.ts).
    const child = `
      import { boundExternalMemory } from ${JSON.stringify(memoryModule)};
      boundExternalMemory();
      import { createReadStream, createWriteStream } from 'node:fs';
      import { Writable } from 'node:stream';
      import { createHash } from 'node:crypto';
      import { encodeLayerDelta, decodeLayerDelta, SpooledBase } from ${JSON.stringify(deltaModule)};
      const [mode, basePath, deltaPath, size] = process.argv.slice(1);
      const spool = await SpooledBase.create(${JSON.stringify(work)});
      await spool.addLayerFile('sha256:' + '0'.repeat(63) + '2', basePath, { hash: false });
      let result;
      if (mode === 'encode') {
        // The target: the base layer with 8 bytes changed 1000 bytes into every piece of the file.
        async function* target() {
          let at = 0;
          for await (const chunk of createReadStream(basePath)) {
            for (let k = 0; 512 + 1000 + k * ${CHUNK} + 8 <= 512 + Number(size); k++) {
              const p = 512 + 1000 + k * ${CHUNK};
              if (p >= at && p + 8 <= at + chunk.length) chunk.writeDoubleBE(k + 0.5, p - at);
            }
            at += chunk.length;
            yield chunk;
          }
        }
        result = await encodeLayerDelta(target(), spool, createWriteStream(deltaPath));
      } else {
        const hash = createHash('sha256');
        const sink = new Writable({ write(chunk, _e, cb) { hash.update(chunk); cb(); } });
        result = await decodeLayerDelta(createReadStream(deltaPath), spool, sink);
      }
      await spool.close();
      process.stdout.write(JSON.stringify({ ...result, maxRss: process.resourceUsage().maxRSS * 1024 }));
    `;
    const run = async (mode: string): Promise<{ maxRss: number; digest: string; files?: { deltified: number } }> => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--input-type=module', '-e', child, mode, basePath, join(work, 'mem.delta'), String(size)],
        {
          maxBuffer: 1 << 20,
        },
      );
      return JSON.parse(stdout) as { maxRss: number; digest: string; files?: { deltified: number } };
    };
    const encoded = await run('encode');
    const decoded = await run('decode');
    assert.equal(encoded.files?.deltified, 1);
    assert.equal(decoded.digest, encoded.digest);
    const limit = 140 * MB;
    assert.ok(encoded.maxRss < limit, `encode peak RSS ${(encoded.maxRss / MB).toFixed(0)} MB`);
    assert.ok(decoded.maxRss < limit, `decode peak RSS ${(decoded.maxRss / MB).toFixed(0)} MB`);
    console.log(`# peak RSS: encode ${(encoded.maxRss / MB).toFixed(0)} MB, decode ${(decoded.maxRss / MB).toFixed(0)} MB`);
  });
});
