// Unreadable, malformed or corrupt inputs: `ddiff list` must fail with exit code 1, say nothing on
// stdout, and print exactly one line on stderr that names the input and the problem.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, writeFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { makeDockerArchive, makeTar, sha256Hex } from '../helpers/tar.js';
import { fixturesDir, runCli, type CliResult } from '../helpers/cli.js';

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Exit 1, empty stdout, one stderr line that names `where` and matches `problem`. */
function assertFails(r: CliResult, where: string, problem: RegExp): void {
  assert.equal(r.code, 1, `exit code ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  // The test helper may leave a trailing newline of its own after the message: ignore those.
  const lines = r.stderr.replace(/\n+$/, '').split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got: ${JSON.stringify(r.stderr)}`);
  // With --json (as these runs pass) the one line is the JSON error: {"error":{"code","message"}}.
  const json = lines[0]!.startsWith('{') ? (JSON.parse(lines[0]!) as { error: { code: string; message: string } }) : undefined;
  if (json) assert.notEqual(json.error.code, 'usage');
  const line = json ? `ddiff: error: ${json.error.message}` : lines[0]!;
  assert.match(line, /^ddiff: error: /);
  assert.match(line, new RegExp(escape(where)), `the message names ${where}`);
  assert.match(line, problem);
  if (process.env.DDIFF_TEST_SHOW) console.log(line);
}

/** Offset of the second tar header of an archive whose first entry is a plain ustar file. */
function secondHeaderOffset(archive: Buffer): number {
  const size = parseInt(archive.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim(), 8);
  return 512 + Math.ceil(size / 512) * 512;
}

/** A layer tar of about `size` bytes of text (so a cut in the middle lands inside its data). */
async function bigLayer(size: number): Promise<Buffer> {
  return makeTar([{ name: 'data.bin', content: Buffer.alloc(size, 'x') }]);
}

/** A docker-archive tar: a config with `diffIds`, the stored `layers`, and a manifest naming `manifestLayers`. */
async function archiveWith(options: { diffIds: string[]; layers: Buffer[]; manifestLayers: string[] }): Promise<Buffer> {
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: options.diffIds },
    history: options.diffIds.map((_, i) => ({ created_by: `step ${i + 1}` })),
  });
  const configHex = sha256Hex(config);
  return makeTar([
    ...options.layers.map((content, i) => ({ name: `l${i}/layer.tar`, content })),
    { name: `${configHex}.json`, content: config },
    {
      name: 'manifest.json',
      content: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['bad/input:1'], Layers: options.manifestLayers }]),
    },
  ]);
}

/** Flips one byte in the middle of the largest gzip blob of an OCI layout directory; returns its name. */
async function flipByteInLargestGzipBlob(layoutDir: string): Promise<string> {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  let largest: { name: string; bytes: Buffer } | undefined;
  for (const name of await readdir(blobs)) {
    const bytes = await readFile(join(blobs, name));
    if (bytes[0] === 0x1f && bytes[1] === 0x8b && bytes.length > (largest?.bytes.length ?? 0)) largest = { name, bytes };
  }
  assert.ok(largest, `${layoutDir} holds no gzip blob`);
  largest.bytes[largest.bytes.length >> 1] ^= 0x01;
  await writeFile(join(blobs, largest.name), largest.bytes);
  return largest.name;
}

describe('bad input to ddiff list', () => {
  let dir = '';
  const file = (name: string): string => join(dir, name);
  let good: Awaited<ReturnType<typeof makeDockerArchive>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ddiff-bad-input-'));
    good = await makeDockerArchive([await bigLayer(200_000), await makeTar([{ name: 'b.txt', content: 'b' }])]);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the well-formed archive these cases start from is accepted', async () => {
    await writeFile(file('good.tar'), good.archive);
    const r = await runCli(['list', '--json', file('good.tar')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).images[0].id, good.imageId);
  });

  test('truncated archive (cut inside a layer), as a file', async () => {
    const cut = good.archive.subarray(0, 100_000); // inside the 200 kB layer's data
    await writeFile(file('truncated.tar'), cut);
    const r = await runCli(['list', '--json', file('truncated.tar')]);
    assertFails(r, file('truncated.tar'), /truncated/i);
  });

  test('truncated archive (cut inside a layer), through stdin', async () => {
    const r = await runCli(['list', '--json', '-'], { stdin: good.archive.subarray(0, 100_000) });
    assertFails(r, '<stdin>', /truncated/i);
  });

  test('truncated archive (cut inside a header), as a file', async () => {
    const second = secondHeaderOffset(good.archive);
    await writeFile(file('cut-header.tar'), good.archive.subarray(0, second + 100));
    const r = await runCli(['list', '--json', file('cut-header.tar')]);
    assertFails(r, file('cut-header.tar'), /truncated|ends inside a header/i);
  });

  test('a header with a bad checksum in the middle of the archive, as a file and through stdin', async () => {
    const bytes = Buffer.from(good.archive);
    bytes[secondHeaderOffset(bytes) + 10] ^= 0x01; // a name byte: the stored checksum no longer fits
    await writeFile(file('bad-checksum.tar'), bytes);
    const r = await runCli(['list', '--json', file('bad-checksum.tar')]);
    assertFails(r, file('bad-checksum.tar'), /checksum|bad header|not a (valid )?tar/i);
    const s = await runCli(['list', '--json', '-'], { stdin: bytes });
    assertFails(s, '<stdin>', /checksum|bad header|not a (valid )?tar/i);
  });

  test('an entry whose name climbs out of the archive, as a file and through stdin', async () => {
    const bytes = await makeTar([
      { name: '../escape.txt', content: 'x' },
      { name: 'manifest.json', content: '[]' },
    ]);
    await writeFile(file('escape.tar'), bytes);
    const r = await runCli(['list', '--json', file('escape.tar')]);
    assertFails(r, file('escape.tar'), /outside the archive/i);
    const s = await runCli(['list', '--json', '-'], { stdin: bytes });
    assertFails(s, '<stdin>', /outside the archive/i);
  });

  test('a layer symlink that points outside the archive', async () => {
    const layer = await makeTar([{ name: 'a.txt', content: 'a' }]);
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(layer)}`] },
    });
    const configHex = sha256Hex(config);
    const bytes = await makeTar([
      { name: 'l0/layer.tar', type: 'symlink', linkname: '../../etc/passwd' },
      { name: `${configHex}.json`, content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [], Layers: ['l0/layer.tar'] }]) },
    ]);
    await writeFile(file('symlink-escape.tar'), bytes);
    const r = await runCli(['list', '--json', file('symlink-escape.tar')]);
    assertFails(r, file('symlink-escape.tar'), /outside the archive/i);
  });

  test('empty file', async () => {
    await writeFile(file('empty.tar'), '');
    const r = await runCli(['list', '--json', file('empty.tar')]);
    assertFails(r, file('empty.tar'), /empty/i);
  });

  test('empty stdin', async () => {
    const r = await runCli(['list', '--json', '-'], { stdin: Buffer.alloc(0) });
    assertFails(r, '<stdin>', /empty/i);
  });

  test('random bytes', async () => {
    const bytes = randomBytes(64 * 1024);
    bytes[0] = 0x42; // not by chance a gzip/zstd/xz/bzip2 magic
    await writeFile(file('random.bin'), bytes);
    const r = await runCli(['list', '--json', file('random.bin')]);
    assertFails(r, file('random.bin'), /not a (valid )?tar/i);
  });

  test('random bytes through stdin', async () => {
    const bytes = randomBytes(64 * 1024);
    bytes[0] = 0x42;
    const r = await runCli(['list', '--json', '-'], { stdin: bytes });
    assertFails(r, '<stdin>', /not a (valid )?tar/i);
  });

  test('a JSON text file', async () => {
    await writeFile(file('manifest.json'), JSON.stringify([{ Config: 'x.json', RepoTags: [], Layers: [] }], null, 2).repeat(20));
    const r = await runCli(['list', '--json', file('manifest.json')]);
    assertFails(r, file('manifest.json'), /not a (valid )?tar/i);
  });

  test('a short text file (less than one tar block)', async () => {
    await writeFile(file('short.txt'), '{"hello": "world"}\n');
    const r = await runCli(['list', '--json', file('short.txt')]);
    assertFails(r, file('short.txt'), /not a (valid )?tar/i);
  });

  test('a tar that is not an image archive', async () => {
    await writeFile(file('plain.tar'), await makeTar([{ name: 'etc/hosts', content: '127.0.0.1 localhost\n' }]));
    const r = await runCli(['list', '--json', file('plain.tar')]);
    assertFails(r, file('plain.tar'), /not an image archive/i);
  });

  test('a tar that is not an image archive, through stdin', async () => {
    const r = await runCli(['list', '--json', '-'], { stdin: await makeTar([{ name: 'etc/hosts', content: 'x\n' }]) });
    assertFails(r, '<stdin>', /not an image archive/i);
  });

  test('an empty tar (end-of-archive blocks only)', async () => {
    await writeFile(file('empty-tar.tar'), Buffer.alloc(10240));
    const r = await runCli(['list', '--json', file('empty-tar.tar')]);
    assertFails(r, file('empty-tar.tar'), /not an image archive/i);
  });

  test('uncompressed docker-archive layer whose bytes do not match its diffID', async () => {
    const bad = await makeDockerArchive([await bigLayer(20_000)], { corruptLayer: 0 });
    await writeFile(file('corrupt.tar'), bad.archive);
    const r = await runCli(['list', '--json', file('corrupt.tar')]);
    assertFails(r, file('corrupt.tar'), /layer .*corrupt/i);
    assert.match(r.stderr, new RegExp(escape(bad.diffIds[0]!)), 'the message names the layer');
  });

  test('the same corrupt layer through stdin', async () => {
    const bad = await makeDockerArchive([await bigLayer(20_000)], { corruptLayer: 0 });
    const r = await runCli(['list', '--json', '-'], { stdin: bad.archive });
    assertFails(r, '<stdin>', /layer .*corrupt/i);
  });

  test('gzip OCI blob with one flipped byte (OCI layout directory)', async () => {
    const layout = file('oci-dir');
    await cp(join(fixturesDir, 'podman-app.oci-dir'), layout, { recursive: true });
    const before = await runCli(['list', '--json', layout]);
    assert.equal(before.code, 0, `the copied fixture is readable before the flip: ${before.stderr}`);
    const blob = await flipByteInLargestGzipBlob(layout);
    const r = await runCli(['list', '--json', layout]);
    assertFails(r, layout, /corrupt|does not match|hash/i);
    assert.match(r.stderr, new RegExp(blob.slice(0, 12)), 'the message names the blob');
  });

  test('gzip OCI blob with one flipped byte (oci-archive tar, file and stdin)', async () => {
    const source = await readFile(join(fixturesDir, 'podman-app.oci-archive.tar'));
    // Find the largest gzip blob entry from the tar headers and flip a byte in the middle of it.
    let best = { offset: 0, size: 0, name: '' };
    for (let pos = 0; pos + 512 <= source.length; ) {
      const header = source.subarray(pos, pos + 512);
      if (header.every((b) => b === 0)) break;
      const name = header.toString('latin1', 0, 100).replace(/\0.*$/s, '');
      const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
      if (/blobs\/sha256\/[0-9a-f]{64}$/.test(name) && source[pos + 512] === 0x1f && size > best.size) {
        best = { offset: pos + 512, size, name };
      }
      pos += 512 + Math.ceil(size / 512) * 512;
    }
    assert.ok(best.size > 0, 'the oci-archive fixture holds a gzip blob');
    const bytes = Buffer.from(source);
    bytes[best.offset + (best.size >> 1)] ^= 0x01;
    await writeFile(file('oci-flipped.tar'), bytes);
    const hex = best.name.slice(-64, -52);
    const r = await runCli(['list', '--json', file('oci-flipped.tar')]);
    assertFails(r, file('oci-flipped.tar'), /corrupt|does not match|hash/i);
    assert.match(r.stderr, new RegExp(hex), 'the message names the blob');
    const s = await runCli(['list', '--json', '-'], { stdin: bytes });
    assertFails(s, '<stdin>', /corrupt|does not match|hash/i);
    assert.match(s.stderr, new RegExp(hex), 'the message names the blob');
  });

  test('config whose diff_ids count differs from the layers', async () => {
    const layer = await makeTar([{ name: 'a.txt', content: 'a' }]);
    const diffId = `sha256:${sha256Hex(layer)}`;
    const archive = await archiveWith({ diffIds: [diffId, diffId], layers: [layer], manifestLayers: ['l0/layer.tar'] });
    await writeFile(file('count.tar'), archive);
    const r = await runCli(['list', '--json', file('count.tar')]);
    assertFails(r, file('count.tar'), /2 diff_ids .* 1 layer/i);
  });

  test('a layer file the manifest names is missing', async () => {
    const layer = await makeTar([{ name: 'a.txt', content: 'a' }]);
    const other = await makeTar([{ name: 'b.txt', content: 'b' }]);
    const archive = await archiveWith({
      diffIds: [`sha256:${sha256Hex(layer)}`, `sha256:${sha256Hex(other)}`],
      layers: [layer],
      manifestLayers: ['l0/layer.tar', 'l1/layer.tar'],
    });
    await writeFile(file('missing-layer.tar'), archive);
    const r = await runCli(['list', '--json', file('missing-layer.tar')]);
    assertFails(r, file('missing-layer.tar'), /l1\/layer\.tar.*missing/i);
    const s = await runCli(['list', '--json', '-'], { stdin: archive });
    assertFails(s, '<stdin>', /l1\/layer\.tar.*missing/i);
  });

  test('a nonexistent path', async () => {
    const path = file('does-not-exist.tar');
    const r = await runCli(['list', '--json', path]);
    assertFails(r, path, /no such file/i);
  });

  test('a truncated .tar.gz, as a file and through stdin', async () => {
    const gz = gzipSync(good.archive);
    const cut = gz.subarray(0, gz.length >> 1);
    await writeFile(file('truncated.tar.gz'), cut);
    const r = await runCli(['list', '--json', file('truncated.tar.gz')]);
    assertFails(r, file('truncated.tar.gz'), /truncated|unexpected end/i);
    const s = await runCli(['list', '--json', '-'], { stdin: cut });
    assertFails(s, '<stdin>', /truncated|unexpected end/i);
  });

  test('a .tar.gz whose content is not a tar', async () => {
    await writeFile(file('not-tar.tar.gz'), gzipSync(Buffer.from('just some text, not a tar archive\n'.repeat(100))));
    const r = await runCli(['list', '--json', file('not-tar.tar.gz')]);
    assertFails(r, file('not-tar.tar.gz'), /not a (valid )?tar/i);
  });

  test('a large truncated stream through stdin', async () => {
    // A large truncated stream must fail the same way as a small one (no hang, one line).
    const big = await makeDockerArchive([await bigLayer(8 << 20)]);
    const r = await runCli(['list', '--json', '-'], { stdin: createReadStreamOf(big.archive.subarray(0, 5 << 20), dir) });
    assertFails(r, '<stdin>', /truncated/i);
  });
});

/** A file-backed stream of `bytes` (so the CLI reads a real pipe in several chunks). */
function createReadStreamOf(bytes: Buffer, dir: string): NodeJS.ReadableStream {
  const path = join(dir, `stream-${process.hrtime.bigint()}.bin`);
  writeFileSync(path, bytes);
  return createReadStream(path);
}
