// The image model's writers and adapters: entry names and manifests derived from what was
// written, header renames for streamed layers, save-stream entry classification, the fast path.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { openArchive } from '../../src/archive/open.js';
import { readImages } from '../../src/archive/read.js';
import { ImageArchiveWriter, type ImageToWrite } from '../../src/archive/write-archive.js';
import type { BundleImage } from '../../src/bundle/format.js';
import type { EngineImage } from '../../src/engine/engine.js';
import { mayBeLayer } from '../../src/engine/save-stream.js';
import { blobPath } from '../../src/image/blob-names.js';
import type { Layer } from '../../src/image/layer.js';
import { contentStoreOmissions, fastPathOmissions } from '../../src/load/fast-path.js';
import { FileTarWriter } from '../../src/tar/file-writer.js';
import { decodeHeader, encodeFileHeader } from '../../src/tar/header.js';
import { sha256, type Digest } from '../../src/util/digest.js';
import { readAt } from '../../src/util/read-at.js';
import tar from 'tar-stream';
import { makeTar } from '../helpers/tar.js';

function collect(): { sink: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
    bytes: () => Buffer.concat(chunks),
  };
}

function memoryLayer(bytes: Buffer): Layer {
  const digest = sha256(bytes);
  return {
    diffId: digest,
    digest,
    size: bytes.length,
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    compression: 'none',
    source: 'memory',
    path: 'layer.tar',
    open: () => Readable.from([bytes]),
  };
}

function config(diffIds: Digest[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }));
}

test('encodeFileHeader: a valid ustar header (and base-256 sizes beyond 8 GiB)', () => {
  const header = decodeHeader(encodeFileHeader('blobs/sha256/abc', 1234));
  assert.equal(header.name, 'blobs/sha256/abc');
  assert.equal(header.size, 1234);
  assert.equal(header.type, 'file');
  assert.equal(decodeHeader(encodeFileHeader('x', 9 * 2 ** 30)).size, 9 * 2 ** 30);
});

test('readAt reads exact ranges and short at the end', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-readat-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f'), 'hello world');
  assert.equal((await readAt(join(dir, 'f'), 5, 6)).toString(), 'world');
  assert.equal((await readAt(join(dir, 'f'), 50, 6)).toString(), 'world');
});

test('save-stream entries are told apart by name, never by content', () => {
  for (const name of ['abc/layer.tar', `${'a'.repeat(64)}.tar`, `blobs/sha256/${'b'.repeat(64)}`]) assert.ok(mayBeLayer(name), name);
  for (const name of ['manifest.json', 'index.json', 'oci-layout', 'repositories', 'abc/json', 'abc/VERSION', `${'c'.repeat(64)}.json`]) {
    assert.ok(!mayBeLayer(name), name);
  }
});

test('the writer: layers under their digests, OCI half and manifest.json describe the same entries', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const layer = memoryLayer(Buffer.from(await makeTar([{ name: 'a.txt', content: 'a' }])));
  const cfg = config([layer.diffId]);
  const out = collect();
  const writer = new ImageArchiveWriter(out.sink);
  await writer.finish([{ id: sha256(cfg), configBytes: cfg, tags: ['x/y:1'], layers: [layer] }]);
  await writeFile(join(dir, 'a.tar'), out.bytes());
  const catalog = await openArchive(join(dir, 'a.tar'));
  assert.ok(catalog.has('index.json') && catalog.has('oci-layout') && catalog.has(blobPath(layer.digest)));
  const { images } = await readImages(catalog);
  assert.equal(images[0]!.id, sha256(cfg));
  assert.deepEqual(images[0]!.tags, ['x/y:1']);
});

test('the writer for Podman: a plain docker-archive, unless layers it holds are named only in the OCI half', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const layer = memoryLayer(Buffer.from(await makeTar([{ name: 'a.txt', content: 'a' }])));
  const held = memoryLayer(Buffer.from(await makeTar([{ name: 'b.txt', content: 'b' }])));
  const write = async (layers: ImageToWrite['layers'], name: string) => {
    const ids = layers.map((l) => l.diffId);
    const cfg = config(ids);
    const out = collect();
    await new ImageArchiveWriter(out.sink, { dockerArchiveOnly: true }).finish([
      { id: sha256(cfg), configBytes: cfg, tags: ['x/y:1'], layers },
    ]);
    await writeFile(join(dir, name), out.bytes());
    return openArchive(join(dir, name));
  };
  const full = await write([layer], 'full.tar');
  assert.ok(full.has('manifest.json') && !full.has('index.json') && !full.has('oci-layout'));
  assert.equal((await readImages(full)).images[0]!.layers[0]!.diffId, layer.diffId);
  const stored = { digest: held.diffId, size: held.size, mediaType: held.mediaType };
  const fast = await write([{ omitted: true, diffId: held.diffId, stored }, layer], 'fast.tar');
  assert.ok(fast.has('index.json') && !fast.has('manifest.json'));
});

test('the writer: a streamed layer into a pipe keeps a provisional name and no OCI half; into a file it is renamed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A layer whose first byte is '{' and a 0-byte layer: both are layers.
  const odd = Buffer.from(await makeTar([{ name: '{{cookiecutter.slug}}/x', content: 'x' }]));
  const empty = Buffer.alloc(0);
  for (const renamable of [false, true]) {
    // A pipe (the stream writer) cannot rename; a file (written in place) can.
    const file = join(dir, `r-${renamable}.tar`);
    const out = collect();
    const handle = await open(file, 'w');
    const writer = new ImageArchiveWriter(renamable ? new FileTarWriter(handle, file) : out.sink);
    const a = await writer.addStreamedLayer(Readable.from([odd]), odd.length, 'save', 'x/layer.tar');
    const b = await writer.addStreamedLayer(Readable.from([]), empty.length, 'save', 'y/layer.tar');
    assert.equal(b.diffId, sha256(empty));
    const cfg = config([a.diffId, b.diffId]);
    await writer.finish([{ id: sha256(cfg), configBytes: cfg, tags: ['x/y:1'], layers: [a, b] }]);
    await handle.close();
    if (!renamable) await writeFile(file, out.bytes());
    const catalog = await openArchive(file);
    assert.equal(catalog.has('index.json'), renamable);
    assert.equal(catalog.has(blobPath(a.digest)), renamable);
    const { images } = await readImages(catalog);
    assert.deepEqual(
      images[0]!.layers.map((l) => l.diffId),
      [a.diffId, b.diffId],
    );
    assert.ok((await readFile(file)).length > 0);
  }
});

test('fast path: base layers must come first and be a prefix of one local image', () => {
  const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}` as Digest;
  const image = (layers: [number, boolean][]): BundleImage => ({
    tags: [],
    id: d(9),
    platform: 'linux/amd64',
    layers: layers.map(([n, inBundle]) => (inBundle ? { diffId: d(n), blob: d(n) } : { diffId: d(n) })),
  });
  const local = (diffIds: number[]): EngineImage => ({
    id: d(8),
    tags: [],
    platform: { os: 'linux', architecture: 'amd64' },
    diffIds: diffIds.map(d),
  });
  const target = image([
    [1, false],
    [2, false],
    [3, true],
  ]);
  const omitted = (images: EngineImage[]) => new Set(fastPathOmissions([target], images)?.keys());
  assert.deepEqual(omitted([local([1, 2])]), new Set([d(1), d(2)]));
  assert.deepEqual(omitted([local([1, 2, 7])]), new Set([d(1), d(2)]));
  // Split base (b1 = [1], b2 = [4, 2]): no single image holds the chain 1,2.
  assert.equal(fastPathOmissions([target], [local([1]), local([4, 2])]), undefined);
  // A base layer after a bundled one: the archive must be complete.
  const gap = image([
    [1, false],
    [3, true],
    [2, false],
  ]);
  assert.equal(fastPathOmissions([gap], [local([1, 2])]), undefined);
});

test('containerd: base layers its content store holds are left out, and the OCI manifest names their blobs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const baseBytes = Buffer.from(await makeTar([{ name: 'base.txt', content: 'base' }]));
  const held = {
    digest: sha256('the gzip blob containerd holds'),
    size: 99,
    mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  };
  const baseDiffId = sha256(baseBytes);
  const local: EngineImage = {
    id: sha256('base config'),
    tags: [],
    platform: { os: 'linux', architecture: 'amd64' },
    diffIds: [baseDiffId],
    storedLayers: [held],
  };
  assert.equal(contentStoreOmissions([baseDiffId], [local], new Set()), undefined, 'a blob absent from the content store must be sent');
  const omit = contentStoreOmissions([baseDiffId], [local], new Set([held.digest]));
  assert.deepEqual(omit?.get(baseDiffId), { omitted: true, diffId: baseDiffId, stored: held });

  const layer = memoryLayer(Buffer.from(await makeTar([{ name: 'app.txt', content: 'app' }])));
  const cfg = config([baseDiffId, layer.diffId]);
  const out = collect();
  const writer = new ImageArchiveWriter(out.sink, { normalizeNames: true });
  await writer.finish([{ id: sha256(cfg), configBytes: cfg, tags: ['team/app:1'], layers: [omit!.get(baseDiffId)!, layer] }]);
  await writeFile(join(dir, 'c.tar'), out.bytes());
  const catalog = await openArchive(join(dir, 'c.tar'));
  assert.ok(!catalog.has(blobPath(held.digest)), 'the held blob is not in the archive');
  assert.ok(!catalog.has('manifest.json'), 'no manifest.json naming an absent entry');
  assert.ok(catalog.has(blobPath(layer.digest)));
  const index = (await catalog.readJson('index.json')) as { manifests: { digest: Digest; annotations: Record<string, string> }[] };
  assert.equal(index.manifests[0]!.annotations['io.containerd.image.name'], 'docker.io/team/app:1');
  const manifest = (await catalog.readJson(blobPath(index.manifests[0]!.digest))) as { layers: { digest: string; mediaType: string }[] };
  assert.deepEqual(
    manifest.layers.map((l) => [l.digest, l.mediaType]),
    [
      [held.digest, held.mediaType],
      [layer.digest, 'application/vnd.oci.image.layer.v1.tar'],
    ],
  );
});

test('encodeFileHeader writes the header tar-stream writes, byte for byte (so an archive written in place equals a streamed one)', async () => {
  for (const size of [0, 5, 8 ** 11 - 1, 8 ** 11, 2 ** 40 + 3]) {
    const pack = tar.pack();
    const first = once(pack, 'data') as Promise<[Buffer]>;
    pack.entry({
      name: 'blobs/sha256/abc',
      size,
      mode: 0o644,
      mtime: new Date(0),
      type: 'file',
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
    });
    const [header] = await first;
    pack.destroy();
    assert.deepEqual(encodeFileHeader('blobs/sha256/abc', size), header.subarray(0, 512), `size ${size}`);
  }
});

/** A layer lying in `file` at `offset`, as an uncompressed docker-archive's layers do. */
function fileLayer(bytes: Buffer, file: string, offset: number, digest = sha256(bytes)): Layer {
  return {
    ...memoryLayer(bytes),
    digest,
    diffId: digest,
    source: file,
    file: { path: file, offset },
    open: () => createReadStream(file, { start: offset, end: offset + bytes.length - 1 }),
  };
}

test('the writer into a file: entries written in place, layers at once, the bytes a stream gets', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const inFile = [randomBytes(3 << 20), randomBytes(1000)].map((b) => Buffer.from(b));
  const source = join(dir, 'source.bin');
  await writeFile(source, Buffer.concat([Buffer.alloc(777), ...inFile]));
  const streamed = memoryLayer(Buffer.from(await makeTar([{ name: 'a.txt', content: 'a'.repeat(70_000) }])));
  const layers = [fileLayer(inFile[0]!, source, 777), streamed, fileLayer(inFile[1]!, source, 777 + inFile[0]!.length), streamed];
  const cfg = config(layers.map((l) => l.diffId));
  const images: ImageToWrite[] = [{ id: sha256(cfg), configBytes: cfg, tags: ['x/y:1'], layers }];
  const out = collect();
  await new ImageArchiveWriter(out.sink).finish(images);
  const path = join(dir, 'in-place.tar');
  const file = await open(path, 'w');
  try {
    await new ImageArchiveWriter(new FileTarWriter(file, path)).finish(images);
  } finally {
    await file.close();
  }
  assert.ok((await readFile(path)).equals(out.bytes()), 'the same bytes as the streamed archive');
  const { images: read } = await readImages(await openArchive(path));
  assert.deepEqual(
    read[0]!.layers.map((l) => l.diffId),
    layers.map((l) => l.diffId),
  );
});

test('the writer into a file: a layer that is not what its digest says fails the archive and stops the other copies', {
  timeout: 20_000,
}, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-writer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bytes = randomBytes(2 << 20);
  const source = join(dir, 'source.bin');
  await writeFile(source, bytes);
  const corrupt = fileLayer(bytes, source, 0, sha256(Buffer.from('something else')));
  // A layer whose bytes never end: only the failure can stop its copy.
  const endless = new Readable({ read() {} });
  endless.push(Buffer.alloc(1000));
  const stuck: Layer = { ...memoryLayer(Buffer.alloc(5000)), open: () => endless };
  const cfg = config([stuck.diffId, corrupt.diffId]);
  const path = join(dir, 'out.tar');
  const file = await open(path, 'w');
  try {
    const writing = new ImageArchiveWriter(new FileTarWriter(file, path)).finish([
      { id: sha256(cfg), configBytes: cfg, tags: [], layers: [stuck, corrupt] },
    ]);
    await assert.rejects(writing, /is corrupt: its bytes hash to/);
    assert.ok(endless.destroyed, 'the copy still under way was stopped');
  } finally {
    await file.close();
  }
});
