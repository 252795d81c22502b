import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cliPath, fixturesDir, runCli } from '../helpers/cli.js';
import { makeDockerArchive, makeTar, sha256Hex } from '../helpers/tar.js';

interface Expected {
  imageId: string;
  diffIds: string[];
  tags: string[];
}
const expected = JSON.parse(await readFile(join(fixturesDir, 'expected.json'), 'utf8')) as Record<string, Expected[]>;
const fixture = (name: string) => join(fixturesDir, name);
const appImage = expected['docker-app.tar']![0]!;

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-bundle-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function listed(path: string): Promise<{ id: string; tags: string[]; layers: { diffId: string }[] }[]> {
  const r = await runCli(['list', '--json', path]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).images;
}

test('diff then load -o rebuilds the target from the base archive, with no engine', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'app.ddiff');
  const d = await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar'), '-o', bundle, '--json']);
  assert.equal(d.code, 0, d.stderr);
  const summary = JSON.parse(d.stdout);
  assert.equal(summary.included, 1, 'only the layer the base lacks');
  assert.deepEqual(summary.metadata.base.needed, appImage.diffIds.slice(0, 2));
  const out = join(dir, 'app.tar');
  const l = await runCli(['load', bundle, '--base', fixture('docker-base.tar'), '-o', out]);
  assert.equal(l.code, 0, l.stderr);
  const [image] = await listed(out);
  assert.equal(image!.id, appImage.imageId);
  assert.deepEqual(image!.tags, appImage.tags);
  assert.deepEqual(
    image!.layers.map((x) => x.diffId),
    appImage.diffIds,
  );
  assert.deepEqual((await readdir(dir)).sort(), ['app.ddiff', 'app.tar'], 'no temp files left');
});

test('the bundle is a tar whose first entry is the metadata', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'b.ddiff');
  assert.equal((await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar'), '-o', bundle])).code, 0);
  const names = spawnSync('tar', ['-tf', bundle], { encoding: 'utf8' }).stdout.trim().split('\n');
  assert.equal(names[0], 'ddiff-bundle.json');
  assert.equal(names.length, 3, `metadata + config + one layer: ${names.join(', ')}`);
});

test('the recorded base path is used when --base is not given; default name from the tag', async (t) => {
  const dir = await scratch(t);
  const d = await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar')], { cwd: dir });
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /Wrote app_1\.ddiff/);
  await stat(join(dir, 'app_1.ddiff'));
  const l = await runCli(['load', 'app_1.ddiff', '-o', 'out.tar'], { cwd: dir });
  assert.equal(l.code, 0, l.stderr);
  assert.equal((await listed(join(dir, 'out.tar')))[0]!.id, appImage.imageId);
});

test('targets read from gzip and from stdin give the same bundle contents', async (t) => {
  const dir = await scratch(t);
  const a = await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar.gz'), '-o', join(dir, 'a.ddiff'), '--json']);
  assert.equal(a.code, 0, a.stderr);
  const b = await runCli(['diff', fixture('docker-base.tar'), '-', '-o', join(dir, 'b.ddiff'), '--json'], {
    stdin: createReadStream(fixture('docker-app.tar')),
  });
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(JSON.parse(a.stdout).metadata.blobs, JSON.parse(b.stdout).metadata.blobs);
});

test('layers that arrive compressed are bundled byte for byte (gzip OCI target)', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'p.ddiff');
  const target = fixture('podman-app.oci-archive.tar');
  // Docker and Podman write different diffIDs for the same files: nothing is shared.
  // --no-delta: this is about the whole-layer path (the unrelated base would otherwise be a delta source).
  const d = await runCli(['diff', fixture('docker-base.tar'), target, '-o', bundle, '--json', '--no-delta']);
  assert.equal(d.code, 0, d.stderr);
  const [source] = (await listed(target)) as unknown as { id: string; layers: { digest: string; compression: string }[] }[];
  const blobs = new Set((JSON.parse(d.stdout).metadata.blobs as { digest: string }[]).map((b) => b.digest));
  for (const layer of source!.layers) {
    assert.equal(layer.compression, 'gzip');
    assert.ok(blobs.has(layer.digest), `stored gzip blob ${layer.digest} kept as is`);
  }
  const out = join(dir, 'p.tar');
  const l = await runCli(['load', bundle, '-o', out]);
  assert.equal(l.code, 0, l.stderr);
  assert.equal((await listed(out))[0]!.id, source!.id);
});

test('a bundle with one flipped byte is refused, naming the blob, and writes nothing', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'x.ddiff');
  assert.equal((await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar'), '-o', bundle])).code, 0);
  const bytes = await readFile(bundle);
  const layerHeader = bytes.lastIndexOf(Buffer.from('blobs/sha256/'));
  const flipAt = layerHeader + 512 + 100; // inside the last blob's data
  bytes[flipAt] = bytes[flipAt]! ^ 0xff;
  await writeFile(bundle, bytes);
  const out = join(dir, 'out.tar');
  const l = await runCli(['load', bundle, '--base', fixture('docker-base.tar'), '-o', out]);
  assert.equal(l.code, 1);
  assert.match(l.stderr.trim(), /^ddiff: error: .*x\.ddiff: blob sha256:[0-9a-f]{64} is corrupt/);
  assert.equal(l.stderr.trim().split('\n').length, 1);
  assert.deepEqual(await readdir(dir), ['x.ddiff']);
});

test('a base lacking the needed layers is named with the missing diffIDs', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'm.ddiff');
  assert.equal((await runCli(['diff', fixture('docker-base.tar'), fixture('docker-app.tar'), '-o', bundle])).code, 0);
  const unrelated = await makeDockerArchive([await makeTar([{ name: 'z.txt', content: 'unrelated' }])]);
  await writeFile(join(dir, 'other.tar'), unrelated.archive);
  const l = await runCli(['load', bundle, '--base', join(dir, 'other.tar'), '-o', join(dir, 'out.tar')]);
  assert.equal(l.code, 1);
  assert.match(l.stderr, /base .*other\.tar lacks 2 layer\(s\) the bundle needs: sha256:[0-9a-f]{64}, sha256:[0-9a-f]{64}/);
  for (const diffId of appImage.diffIds.slice(0, 2)) assert.ok(l.stderr.includes(diffId));
  assert.deepEqual((await readdir(dir)).sort(), ['m.ddiff', 'other.tar']);
});

test('a bundle of a newer format version is refused', async (t) => {
  const dir = await scratch(t);
  const meta = { format: 'ddiff-bundle', version: 99, base: { ids: [], needed: [] }, images: [], blobs: [] };
  await writeFile(join(dir, 'new.ddiff'), await makeTar([{ name: 'ddiff-bundle.json', content: JSON.stringify(meta) }]));
  const l = await runCli(['load', join(dir, 'new.ddiff'), '-o', join(dir, 'o.tar')]);
  assert.equal(l.code, 1);
  assert.match(l.stderr, /new\.ddiff: bundle format version 99 is newer than this ddiff supports/);
});

test('a target not derived from the base: every layer is bundled, with a warning', async (t) => {
  const dir = await scratch(t);
  const unrelated = await makeDockerArchive([await makeTar([{ name: 'z.txt', content: 'unrelated' }])]);
  await writeFile(join(dir, 'other.tar'), unrelated.archive);
  const d = await runCli(['diff', fixture('docker-base.tar'), join(dir, 'other.tar'), '-o', join(dir, 'o.ddiff'), '--json']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stderr, /warning: .*shares no layers with/);
  assert.equal(JSON.parse(d.stdout).included, 1);
});

/** Partly compressible bytes: random blocks between runs of text. */
function mixedData(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = (i >> 12) % 3 === 0 ? x & 0xff : 0x61 + ((i * 7 + (x & 3)) % 26);
  }
  return out;
}

test('bundle of a 3 MB layer on a 20 MB base is within 1.05x of gzip -6 of that layer', async (t) => {
  const dir = await scratch(t);
  const baseLayer = await makeTar([{ name: 'base.bin', content: mixedData(20 << 20, 1) }]);
  const newLayer = await makeTar([{ name: 'app.bin', content: mixedData(3 << 20, 2) }]);
  const base = await makeDockerArchive([baseLayer], { tag: 'bench/base:1' });
  const target = await makeDockerArchive([baseLayer, newLayer], { tag: 'bench/app:1' });
  await writeFile(join(dir, 'base.tar'), base.archive);
  await writeFile(join(dir, 'app.tar'), target.archive);
  await writeFile(join(dir, 'layer.tar'), newLayer);
  const gz = spawnSync('gzip', ['-6', '-c', join(dir, 'layer.tar')]);
  const gzipSize = gz.status === 0 ? gz.stdout.length : gzipSync(newLayer, { level: 6 }).length;
  const d = await runCli(['diff', join(dir, 'base.tar'), join(dir, 'app.tar'), '-o', join(dir, 'app.ddiff')]);
  assert.equal(d.code, 0, d.stderr);
  const bundleSize = (await stat(join(dir, 'app.ddiff'))).size;
  t.diagnostic(`bundle ${bundleSize} B, gzip -6 of the layer ${gzipSize} B, ratio ${(bundleSize / gzipSize).toFixed(4)}`);
  assert.ok(bundleSize <= 1.05 * gzipSize, `bundle ${bundleSize} > 1.05 x ${gzipSize}`);
});

test('diff -o - piped into load - (bundle through a pipe, as over ssh)', async (t) => {
  const dir = await scratch(t);
  const out = join(dir, 'piped.tar');
  const cli = cliPath;
  const r = spawnSync(
    'bash',
    [
      '-o',
      'pipefail',
      '-c',
      `node ${cli} diff "$1" "$2" -o - | node ${cli} load - --base "$1" -o "$3"`,
      'pipe',
      fixture('docker-base.tar'),
      fixture('docker-app.tar'),
      out,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal((await listed(out))[0]!.id, appImage.imageId);
  const empty = await runCli(['load', '-', '-o', join(dir, 'x.tar')], { stdin: Buffer.alloc(0) });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /<stdin>: input is empty/);
});

test('a gzip layer in a docker-archive whose contents do not match its diffID is never bundled', async (t) => {
  const dir = await scratch(t);
  const layer = await makeTar([{ name: 'a.txt', content: 'real contents' }]);
  const claimed = await makeTar([{ name: 'a.txt', content: 'claimed contents' }]);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(claimed)}`] },
  });
  const configName = `${sha256Hex(config)}.json`;
  const archive = await makeTar([
    { name: 'l.tar.gz', content: gzipSync(layer) },
    { name: configName, content: config },
    { name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: ['bad/gz:1'], Layers: ['l.tar.gz'] }]) },
  ]);
  await writeFile(join(dir, 'bad.tar'), archive);
  const d = await runCli(['diff', fixture('docker-base.tar'), join(dir, 'bad.tar'), '-o', join(dir, 'b.ddiff')]);
  assert.equal(d.code, 1, d.stderr);
  assert.match(d.stderr, /bad\.tar: layer 'l\.tar\.gz' is corrupt: its uncompressed bytes hash to sha256:[0-9a-f]{64}, not its diffID/);
  assert.deepEqual((await readdir(dir)).sort(), ['bad.tar']);
  // The same archive with the right diffID bundles the gzip bytes as they are.
  const goodConfig = config.replace(sha256Hex(claimed), sha256Hex(layer));
  const goodName = `${sha256Hex(goodConfig)}.json`;
  await writeFile(
    join(dir, 'good.tar'),
    await makeTar([
      { name: 'l.tar.gz', content: gzipSync(layer) },
      { name: goodName, content: goodConfig },
      { name: 'manifest.json', content: JSON.stringify([{ Config: goodName, RepoTags: ['good/gz:1'], Layers: ['l.tar.gz'] }]) },
    ]),
  );
  const g = await runCli(['diff', fixture('docker-base.tar'), join(dir, 'good.tar'), '-o', join(dir, 'g.ddiff'), '--json']);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(
    JSON.parse(g.stdout).metadata.blobs.find((b: { mediaType: string }) => b.mediaType.endsWith('+gzip')).digest,
    `sha256:${sha256Hex(gzipSync(layer))}`,
  );
});

test('diff -o FILE compresses layers straight into the bundle: the blobs and metadata -o - writes; a corrupt layer leaves nothing', async (t) => {
  const dir = await scratch(t);
  const baseLayer = await makeTar([{ name: 'base.txt', content: 'base' }]);
  // Several new layers, one of them past a compression piece (8 MiB), so that appends follow one another.
  const big = Buffer.alloc(9 << 20, 'the same text, over and over; ');
  const layers = [
    baseLayer,
    ...(await Promise.all([big, Buffer.from('a'), Buffer.alloc(70_000, 7)].map((c, i) => makeTar([{ name: `f${i}`, content: c }])))),
  ];
  const base = await makeDockerArchive([baseLayer], { tag: 'direct/base:1' });
  const target = await makeDockerArchive(layers, { tag: 'direct/app:1' });
  await writeFile(join(dir, 'base.tar'), base.archive);
  await writeFile(join(dir, 'app.tar'), target.archive);
  for (const method of ['zstd', 'gzip']) {
    const file = join(dir, `app-${method}.ddiff`);
    const written = await runCli(['diff', '--compress', method, join(dir, 'base.tar'), join(dir, 'app.tar'), '-o', file]);
    assert.equal(written.code, 0, written.stderr);
    const streamed = spawnSync(
      process.execPath,
      [cliPath, 'diff', '--compress', method, join(dir, 'base.tar'), join(dir, 'app.tar'), '-o', '-'],
      {
        maxBuffer: 1 << 26,
      },
    );
    assert.equal(streamed.status, 0, streamed.stderr.toString());
    await writeFile(join(dir, 'streamed.ddiff'), streamed.stdout);
    const entries = (path: string) => spawnSync('tar', ['-tvf', path], { encoding: 'utf8' }).stdout.trim().split('\n');
    const blobsOf = (path: string) =>
      entries(path)
        .filter((l) => l.includes('blobs/sha256/'))
        .map((l) => l.replace(/^.* (\d+) .* (blobs\/\S+)$/, '$2 $1'))
        .sort();
    assert.deepEqual(blobsOf(file), blobsOf(join(dir, 'streamed.ddiff')), `${method}: the same blobs, the same sizes`);
    assert.equal(blobsOf(file).length, 4, 'the config and three layers');
    const metadataOf = (path: string) => {
      const text = spawnSync('tar', ['-xOf', path, 'ddiff-bundle.json'], { encoding: 'utf8' }).stdout;
      const { created: _created, ...rest } = JSON.parse(text) as { created: string };
      return rest;
    };
    assert.deepEqual(metadataOf(file), metadataOf(join(dir, 'streamed.ddiff')), `${method}: the same metadata`);
    const loaded = await runCli(['load', file, '--base', join(dir, 'base.tar'), '-o', join(dir, 'out.tar')]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal((await listed(join(dir, 'out.tar')))[0]!.id, target.imageId);
  }
  const corrupt = await makeDockerArchive(layers, { tag: 'direct/app:1', corruptLayer: 1 });
  await writeFile(join(dir, 'corrupt.tar'), corrupt.archive);
  const before = (await readdir(dir)).sort();
  const failed = await runCli(['diff', join(dir, 'base.tar'), join(dir, 'corrupt.tar'), '-o', join(dir, 'never.ddiff')]);
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(
    failed.stderr,
    /^ddiff: error: .*corrupt\.tar: layer 'layer1\/layer\.tar' \(diffID sha256:[0-9a-f]{64}\) is corrupt: its bytes hash to/,
  );
  assert.equal(failed.stderr.trim().split('\n').length, 1, 'one line');
  assert.deepEqual((await readdir(dir)).sort(), before, 'no bundle, no temporary file');
});
