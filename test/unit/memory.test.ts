// Memory stays flat with layer size: `ddiff list` on a ~2 GB docker-archive (one layer holding one
// big file of zeros) must stay under 100 MB of peak RSS, reading the file by seeking and reading
// it once through stdin. The archive is written sparse (headers at their offsets, ftruncate for
// the zeros), so making it costs little disk and time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const BLOCK = 512;
const MB = 1024 * 1024;
/** Size of the zero-filled file inside the layer: 2 GiB. */
const BIG_FILE = 2 * 1024 * MB;
const RSS_LIMIT = 100 * MB;
/**
 * One pass through a pipe: ~140 MB under Node 24 until ddiff bounded its dead Buffers
 * (util/memory.ts: V8 let ~64 MB of them wait for a full collection), 98 MB since.
 */
const STDIN_RSS_LIMIT = 120 * MB;

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** A ustar header block for a regular file (mode 0644, mtime 0, root). */
function ustarHeader(name: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const octal = (value: number, offset: number, length: number): void => {
    block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
  };
  assert.ok(Buffer.byteLength(name) <= 100, `name '${name}' needs no prefix field`);
  block.write(name, 0, 100, 'utf8');
  octal(0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(0, 136, 12);
  block.write('0', 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/**
 * Writes the archive at `path`: `big/layer.tar` (a tar of one BIG_FILE-byte file of zeros), its
 * config and manifest.json. Returns the image ID and the layer's diffID.
 */
async function writeBigArchive(path: string): Promise<{ imageId: string; diffId: string; size: number }> {
  // The layer tar: header, BIG_FILE zero bytes, two zero end blocks.
  const innerHeader = ustarHeader('zeros.bin', BIG_FILE);
  const layerSize = BLOCK + padded(BIG_FILE) + 2 * BLOCK;
  // Its diffID, hashed once as a stream of the layer's bytes (the zeros fed in 1 MiB chunks).
  const hash = createHash('sha256').update(innerHeader);
  const zeros = Buffer.alloc(MB);
  let left = layerSize - BLOCK;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    hash.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    left -= n;
  }
  const diffId = `sha256:${hash.digest('hex')}`;

  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created_by: 'COPY zeros.bin /' }],
    }),
  );
  const configHex = createHash('sha256').update(config).digest('hex');
  const manifest = Buffer.from(
    JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['ddiff-test/big:1'], Layers: ['big/layer.tar'] }]),
  );

  const handle = await open(path, 'w');
  try {
    let position = 0;
    const put = async (bytes: Buffer): Promise<void> => {
      await handle.write(bytes, 0, bytes.length, position);
    };
    await put(ustarHeader('big/layer.tar', layerSize));
    position += BLOCK;
    await put(innerHeader); // the rest of the layer is zeros: left as a hole
    position += layerSize;
    for (const [name, data] of [
      [`${configHex}.json`, config],
      ['manifest.json', manifest],
    ] as const) {
      await put(ustarHeader(name, data.length));
      position += BLOCK;
      await put(data);
      position += padded(data.length);
    }
    position += 2 * BLOCK; // end-of-archive blocks
    await handle.truncate(position);
    return { imageId: `sha256:${configHex}`, diffId, size: position };
  } finally {
    await handle.close();
  }
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

describe('memory use on a 2 GB layer', { timeout: 180_000 }, () => {
  let dir = '';
  let archive = '';
  let expected: Awaited<ReturnType<typeof writeBigArchive>>;
  let writeMs = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ddiff-memory-'));
    archive = join(dir, 'big.tar');
    const started = Date.now();
    expected = await writeBigArchive(archive);
    writeMs = Date.now() - started;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const check = (stdout: string): void => {
    const listed = (JSON.parse(stdout) as { images: { id: string; tags: string[]; layers: { diffId: string; size: number }[] }[] }).images;
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.id, expected.imageId);
    assert.deepEqual(listed[0]!.tags, ['ddiff-test/big:1']);
    assert.deepEqual(
      listed[0]!.layers.map((l) => [l.diffId, l.size]),
      [[expected.diffId, BLOCK + BIG_FILE + 2 * BLOCK]],
    );
  };

  test('list --json FILE (seek mode) stays under 100 MB', async (t) => {
    t.diagnostic(`archive: ${mb(expected.size)} (sparse), written and hashed in ${writeMs} ms`);
    const started = Date.now();
    const r = await runCli(['list', '--json', archive]);
    t.diagnostic(`file mode: peak RSS ${mb(r.maxRss)}, ${Date.now() - started} ms`);
    assert.equal(r.code, 0, r.stderr);
    check(r.stdout);
    assert.ok(r.maxRss > 0, 'the peak RSS was measured');
    assert.ok(r.maxRss < RSS_LIMIT, `peak RSS ${mb(r.maxRss)} is over ${mb(RSS_LIMIT)}`);
  });

  test('list --json - (one pass through stdin) stays under 120 MB', async (t) => {
    const started = Date.now();
    const r = await runCli(['list', '--json', '-'], { stdin: createReadStream(archive, { highWaterMark: MB }) });
    t.diagnostic(`stdin mode: peak RSS ${mb(r.maxRss)}, ${Date.now() - started} ms`);
    assert.equal(r.code, 0, r.stderr);
    check(r.stdout);
    assert.ok(r.maxRss > 0, 'the peak RSS was measured');
    assert.ok(r.maxRss < STDIN_RSS_LIMIT, `peak RSS ${mb(r.maxRss)} is over ${mb(STDIN_RSS_LIMIT)}`);
  });
});
