// Layer deltas round-trip byte for byte: layers made by GNU tar (pax and gnu formats) from a
// tree and its rebuilt, edited version, covering PAX headers, GNU long names, hardlinks,
// symlinks, duplicate paths, empty files, files with long zero runs, moved, deleted and added
// files, 0600 files and files bigger than a delta piece.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  BaseFileIndex,
  type DecodeResult,
  decodeLayerDelta,
  deserializeIndex,
  type EncodeStats,
  encodeLayerDelta,
  serializeIndex,
  SpooledBase,
} from '../../src/delta/index.js';
import { parseHeader } from '../../src/delta/header.js';
import { decodeHeader, type RawHeader } from '../../src/tar/header.js';
import type { Digest } from '../../src/util/digest.js';

/** Deterministic pseudo-random bytes (xorshift32). */
function noise(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function put(root: string, path: string, content: Buffer | string, mode?: number): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
  if (mode !== undefined) chmodSync(full, mode);
}

const LONG_DIR = `deep/${'a-rather-long-directory-name-'.repeat(4)}/${'and-another-one-'.repeat(5)}`;
const MB = 1024 * 1024;

/** The base tree: the layer an offline host already has. */
function writeBase(root: string): void {
  put(root, 'bin/tool', Buffer.concat([noise(1, 150_000), Buffer.from('version 1.0\n'), noise(2, 100_000)]), 0o755);
  put(root, 'etc/config', 'name = base\nmode = fast\n'.repeat(200));
  put(root, 'etc/secret', 'token=abc\n', 0o600);
  put(root, 'lib/libfoo.so.1', noise(3, 300_000));
  symlinkSync('libfoo.so.1', join(root, 'lib/libfoo.so'));
  put(root, 'share/doc/README', 'read me\n'.repeat(500));
  linkSync(join(root, 'share/doc/README'), join(root, 'share/doc/README.hardlink'));
  mkdirSync(join(root, 'zz'));
  linkSync(join(root, 'share/doc/README'), join(root, 'zz/README.far-hardlink'));
  put(root, `${LONG_DIR}/file-with-a-long-name-${'x'.repeat(80)}.txt`, 'long name content\n'.repeat(50));
  put(root, 'données/naïve-ünïcode.txt', 'accents\n'.repeat(30));
  put(root, 'empty', '');
  const zeros = Buffer.alloc(6 * MB);
  noise(4, 4096).copy(zeros, 5 * MB);
  put(root, 'var/zeros.img', zeros);
  put(root, 'var/big.bin', noise(5, 9 * MB));
  put(root, 'moved/src/old-location.txt', noise(6, 40_000));
  put(root, 'deleted.txt', 'gone soon\n'.repeat(100));
}

/** The rebuilt tree: every mtime new, a few files edited, one moved, one deleted, one added. */
function writeTarget(base: string, root: string): void {
  execFileSync('cp', ['-a', `${base}/.`, root]);
  const tool = readFileSync(join(root, 'bin/tool'));
  put(root, 'bin/tool', Buffer.concat([tool.subarray(0, 150_000), Buffer.from('version 1.1 (patched)\n'), tool.subarray(150_012)]));
  put(root, 'etc/config', 'name = base\nmode = safe\n'.repeat(200));
  execFileSync('mkdir', ['-p', join(root, 'new/place')]);
  execFileSync('mv', [join(root, 'moved/src/old-location.txt'), join(root, 'new/place/old-location.txt')]);
  rmSync(join(root, 'deleted.txt'));
  put(root, 'added.txt', noise(7, 20_000));
  const big = readFileSync(join(root, 'var/big.bin'));
  big.write('CHANGED', 6 * MB);
  put(root, 'var/big.bin', Buffer.concat([big, noise(8, MB)]));
  const zeros = readFileSync(join(root, 'var/zeros.img'));
  zeros.write('data', 2 * MB + 100);
  put(root, 'var/zeros.img', zeros);
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', '2026-03-01 12:00:00.5', '{}', '+']);
  utimesSync(join(root, 'etc/config'), new Date(1e12), new Date(1e12));
}

function gnuTar(dir: string, format: 'pax' | 'gnu', out: string, ...extra: string[]): string {
  execFileSync('tar', [`--format=${format}`, '--sort=name', '--numeric-owner', '-C', dir, '-cf', out, '.', ...extra]);
  return out;
}

function sha256File(path: string): Digest {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}

/** Encodes `target` against `bases`, decodes it again; returns what both said and the delta's size. */
async function roundTrip(
  work: string,
  bases: string[],
  target: string,
): Promise<{ stats: EncodeStats; decoded: DecodeResult; rebuilt: Buffer }> {
  const spool = await SpooledBase.create(work);
  try {
    for (const base of bases) await spool.addLayerFile(sha256File(base), base, { hash: false });
    const chunks: Buffer[] = [];
    const stats = await encodeLayerDelta(createReadStream(target), spool, collector(chunks));
    const delta = Buffer.concat(chunks);
    assert.equal(stats.bytesOut, delta.length);
    const out: Buffer[] = [];
    const decoded = await decodeLayerDelta(Readable.from([delta]), spool, collector(out));
    return { stats, decoded, rebuilt: Buffer.concat(out) };
  } finally {
    await spool.close();
  }
}

function collector(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
}

describe('layer delta round trips', () => {
  let work: string;
  let baseDir: string;
  let targetDir: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ddiff-delta-'));
    baseDir = join(work, 'base');
    targetDir = join(work, 'target');
    mkdirSync(baseDir);
    mkdirSync(targetDir);
    writeBase(baseDir);
    writeTarget(baseDir, targetDir);
  });
  after(() => rm(work, { recursive: true, force: true }));

  for (const [baseFormat, targetFormat] of [
    ['pax', 'pax'],
    ['gnu', 'gnu'],
    ['gnu', 'pax'],
  ] as const) {
    test(`rebuilt tree, base ${baseFormat} / target ${targetFormat}: byte-exact, refs, deltas and literals`, async () => {
      const base = gnuTar(baseDir, baseFormat, join(work, `base-${baseFormat}.tar`));
      const target = gnuTar(targetDir, targetFormat, join(work, `target-${targetFormat}.tar`));
      const expected = readFileSync(target);
      const { stats, decoded, rebuilt } = await roundTrip(work, [base], target);
      assert.ok(rebuilt.equals(expected), 'rebuilt layer differs from the target');
      assert.equal(stats.digest, sha256File(target));
      assert.equal(decoded.digest, stats.digest);
      assert.equal(stats.bytesIn, expected.length);
      assert.ok(stats.files.referenced >= 6, `referenced ${stats.files.referenced}`);
      assert.ok(stats.files.deltified >= 3, `deltified ${stats.files.deltified}`);
      assert.ok(stats.files.literal >= 1, `literal ${stats.files.literal}`);
      assert.ok(stats.bytesOut < 1.5 * MB, `delta of ${stats.bytesOut} bytes`);
      assert.deepEqual(stats.baseLayers, [sha256File(base)]);
    });
  }

  test('a moved file is referenced wherever it lies in any base layer', async () => {
    const baseA = join(work, 'layer-a');
    const baseB = join(work, 'layer-b');
    put(baseA, 'one/a.bin', noise(11, 70_000));
    put(baseB, 'two/b.bin', noise(12, 70_000));
    const tree = join(work, 'moved-target');
    put(tree, 'elsewhere/b-moved.bin', noise(12, 70_000));
    put(tree, 'x/y/a-moved.bin', noise(11, 70_000));
    const a = gnuTar(baseA, 'pax', join(work, 'a.tar'));
    const b = gnuTar(baseB, 'pax', join(work, 'b.tar'));
    const target = gnuTar(tree, 'pax', join(work, 'moved.tar'));
    const { stats, rebuilt } = await roundTrip(work, [a, b], target);
    assert.ok(rebuilt.equals(readFileSync(target)));
    assert.equal(stats.files.referenced, 2);
    assert.equal(stats.baseLayers.length, 2);
    assert.ok(stats.bytesOut < 2000, `delta of ${stats.bytesOut} bytes`);
  });

  test('duplicate paths (an appended entry) and an identical layer', async () => {
    const target = gnuTar(targetDir, 'pax', join(work, 'dup.tar'));
    execFileSync('tar', ['--format=pax', '-C', baseDir, '-rf', target, './etc/config', './etc/config']);
    const { rebuilt, stats } = await roundTrip(work, [gnuTar(baseDir, 'pax', join(work, 'dup-base.tar'))], target);
    assert.ok(rebuilt.equals(readFileSync(target)));
    assert.ok(stats.files.referenced >= 6);
    const same = gnuTar(baseDir, 'pax', join(work, 'same.tar'));
    const identical = await roundTrip(work, [same], same);
    assert.ok(identical.rebuilt.equals(readFileSync(same)));
    assert.equal(identical.stats.files.literal + identical.stats.files.deltified, 0);
  });

  test("the scans' header parser reads every header as tar/header.ts does, and refuses what it refuses", () => {
    for (const format of ['pax', 'gnu'] as const) {
      const tar = readFileSync(gnuTar(targetDir, format, join(work, `headers-${format}.tar`)));
      let headers = 0;
      // Every block of the first 2 MiB (most of the headers), then one in 17.
      for (let at = 0; at + 512 <= tar.length; at += at < 2 * MB ? 512 : 17 * 512) {
        const block = tar.subarray(at, at + 512);
        // A '9' in the size field, under a checksum that still matches.
        const broken = Buffer.from(block);
        broken[124 + (at % 11)] = 0x39;
        broken.fill(0x20, 148, 156);
        const sum = broken.reduce((total, byte) => total + byte, 0);
        broken.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
        for (const candidate of [block, broken]) {
          let expected: RawHeader | undefined;
          try {
            expected = decodeHeader(candidate);
          } catch {
            expected = undefined;
          }
          assert.deepEqual(parseHeader(candidate), expected, `block at ${at}`);
          if (expected !== undefined) headers++;
        }
      }
      assert.ok(headers > 20);
    }
  });

  test('bytes that are not a tar, and a tar with trailing garbage, come back as they were', async () => {
    const junk = join(work, 'junk.bin');
    writeFileSync(junk, noise(13, 100_000));
    assert.ok((await roundTrip(work, [], junk)).rebuilt.equals(readFileSync(junk)));
    const trailing = gnuTar(baseDir, 'gnu', join(work, 'trailing.tar'));
    writeFileSync(trailing, Buffer.concat([readFileSync(trailing), Buffer.from('trailing bytes')]));
    assert.ok((await roundTrip(work, [], trailing)).rebuilt.equals(readFileSync(trailing)));
  });

  test('a tar that ends inside a file is refused at encode', async () => {
    const whole = readFileSync(gnuTar(baseDir, 'pax', join(work, 'whole.tar')));
    const cut = join(work, 'cut.tar');
    writeFileSync(cut, whole.subarray(0, whole.indexOf('read me') + 100));
    await assert.rejects(roundTrip(work, [], cut), /ends inside the content/);
  });

  test('a have-list index (hashes only, no base bytes) gives references; the load side follows them', async () => {
    const base = gnuTar(baseDir, 'pax', join(work, 'have-base.tar'));
    const target = gnuTar(targetDir, 'pax', join(work, 'have-target.tar'));
    const full = new BaseFileIndex();
    await full.addLayer(sha256File(base), createReadStream(base), { hash: true });
    const haveList = serializeIndex(full);
    const index = await deserializeIndex(haveList);
    const facts = (i: BaseFileIndex) =>
      i.layers.map((l) => [l.diffId, l.size, l.files.map((f) => [f.size, f.offset, f.hash, f.head, f.pieces])]);
    assert.deepEqual(facts(index), facts(full)); // a hardlink shares an earlier offset
    assert.ok(full.layers[0]!.files.some((f, i) => i > 0 && f.offset < full.layers[0]!.files[i - 1]!.offset));
    assert.equal(full.layers[0]!.files.find((f) => f.size === 9 * MB)?.pieces?.length, 9, 'a piece hash per MiB of big.bin');
    const chunks: Buffer[] = [];
    const stats = await encodeLayerDelta(createReadStream(target), { index }, collector(chunks));
    assert.equal(stats.files.deltified, 0);
    assert.ok(stats.files.referenced >= 6);
    // big.bin (10 MiB, one MiB changed, one appended) is copied piece by piece from its hashes alone.
    assert.ok(stats.contentBytes.referenced >= 10 * MB, `referenced ${stats.contentBytes.referenced} bytes`);
    assert.ok(stats.bytesOut < 4 * MB, `delta of ${stats.bytesOut} bytes`);
    const spool = await SpooledBase.create(work);
    try {
      await spool.addLayerFile(sha256File(base), base, { hash: false });
      const out: Buffer[] = [];
      const decoded = await decodeLayerDelta(Readable.from(chunks), spool, collector(out));
      assert.ok(Buffer.concat(out).equals(readFileSync(target)));
      assert.equal(decoded.digest, sha256File(target));
    } finally {
      await spool.close();
    }
    await assert.rejects(deserializeIndex(Buffer.concat([haveList.subarray(0, 20), Buffer.alloc(8)])), /index/);
  });

  test('a base whose bytes come only as streams (openRange) serves encode and decode alike', async () => {
    const base = gnuTar(baseDir, 'gnu', join(work, 'streams-base.tar'));
    const target = gnuTar(targetDir, 'gnu', join(work, 'streams-target.tar'));
    const spool = await SpooledBase.create(work);
    try {
      await spool.addLayerFile(sha256File(base), base, { hash: false });
      const streamsOnly = {
        index: spool.index,
        bytes: { openRange: (layer: number, offset: number, length: number) => spool.openRange(layer, offset, length) },
      };
      const chunks: Buffer[] = [];
      const stats = await encodeLayerDelta(createReadStream(target), streamsOnly, collector(chunks));
      assert.ok(stats.files.deltified >= 3);
      const out: Buffer[] = [];
      await decodeLayerDelta(Readable.from(chunks), streamsOnly, collector(out));
      assert.ok(Buffer.concat(out).equals(readFileSync(target)));
    } finally {
      await spool.close();
    }
  });

  test('the same input gives the same delta, verifying its deltas or not', async () => {
    const base = gnuTar(baseDir, 'pax', join(work, 'det-base.tar'));
    const target = gnuTar(targetDir, 'pax', join(work, 'det-target.tar'));
    const spool = await SpooledBase.create(work);
    try {
      await spool.addLayerFile(sha256File(base), base, { hash: false });
      const runs: Buffer[] = [];
      for (const verifyDeltas of [false, true]) {
        const chunks: Buffer[] = [];
        await encodeLayerDelta(createReadStream(target), spool, collector(chunks), { verifyDeltas });
        runs.push(Buffer.concat(chunks));
      }
      assert.ok(runs[0]!.equals(runs[1]!));
    } finally {
      await spool.close();
    }
  });
});
