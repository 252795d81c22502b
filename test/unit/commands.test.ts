import type { BundleMetadata } from '../../src/bundle/format.js';
import type { BundleSummary } from '../../src/commands/inspect.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir, runCli } from '../helpers/cli.js';

const fixture = (name: string) => join(fixturesDir, name);
const expected = JSON.parse(await readFile(join(fixturesDir, 'expected.json'), 'utf8')) as Record<
  string,
  { imageId: string; diffIds: string[]; tags: string[] }[]
>;

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-cmd-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON under test; the fields used are asserted
async function json(args: string[]): Promise<any> {
  const r = await runCli(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('two targets sharing a layer: the bundle stores it once, and both load', async (t) => {
  const dir = await scratch(t);
  const one = await json(['diff', fixture('docker-base.tar'), fixture('docker-app.tar'), '-o', join(dir, 'one.ddiff'), '--json']);
  // docker-multi.tar holds base, app and app2: app's and app2's layers plus the shared base layers
  const both = await json([
    'diff',
    '--json',
    '-o',
    join(dir, 'both.ddiff'),
    fixture('docker-base.tar'),
    fixture('docker-app.tar'),
    fixture('docker-multi.tar'),
  ]);
  const appLayer = expected['docker-app.tar']![0]!.diffIds[2]!;
  const blobsFor = (meta: BundleMetadata) => meta.images.flatMap((i) => i.layers.filter((l) => l.diffId === appLayer).map((l) => l.blob));
  const appBlobs = new Set(blobsFor(both.metadata));
  assert.equal(appBlobs.size, 1, 'app layer stored once though two targets hold it');
  assert.equal((both.metadata as BundleMetadata).blobs.filter((b) => appBlobs.has(b.digest)).length, 1);
  const multiOnly = await json(['diff', '--json', '-o', join(dir, 'multi.ddiff'), fixture('docker-base.tar'), fixture('docker-multi.tar')]);
  const blobBytes = (meta: BundleMetadata) => meta.blobs.reduce((n, b) => n + b.size, 0);
  assert.equal(blobBytes(both.metadata), blobBytes(multiOnly.metadata), 'adding app again adds no blob bytes');
  const entries = spawnSync('tar', ['-tf', join(dir, 'both.ddiff')], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n');
  assert.equal(entries.length, new Set(entries).size, 'no entry written twice');
  assert.equal(entries.length, 1 + both.metadata.blobs.length);
  assert.ok(one.size < both.size);
  for (const image of expected['docker-multi.tar']!) {
    const out = join(dir, `${image.imageId.slice(7, 19)}.tar`);
    const r = await runCli(['load', join(dir, 'both.ddiff'), '--image', image.tags[0]!, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const [loaded] = (await json(['list', '--json', out])).images;
    assert.equal(loaded.id, image.imageId);
  }
});

test('multi-platform OCI archive: --platform picks each; an absent platform lists those present', async (t) => {
  const dir = await scratch(t);
  const archive = fixture('podman-multi-platform.oci-archive.tar');
  const images = expected['podman-multi-platform.oci-archive.tar']!;
  const ids = new Set<string>();
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const out = await json(['diff', '--json', '--platform', platform, '-o', join(dir, 'p.ddiff'), fixture('docker-base.tar'), archive]);
    assert.equal(out.metadata.images.length, 1);
    assert.equal(out.metadata.images[0].platform, platform);
    ids.add(out.metadata.images[0].id);
  }
  assert.deepEqual([...ids].sort(), images.map((i) => i.imageId).sort());
  const r = await runCli(['diff', '--platform', 'linux/s390x', '-o', join(dir, 'x.ddiff'), fixture('docker-base.tar'), archive]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no image for platform linux\/s390x; it has linux\/amd64, linux\/arm64/);
  await assert.rejects(stat(join(dir, 'x.ddiff')));
});

test('have-list from archives, then diff --have, then load', async (t) => {
  const dir = await scratch(t);
  const haveList = await json(['have', '--json', fixture('docker-base.tar')]);
  assert.equal(haveList.format, 'ddiff-have');
  assert.deepEqual(haveList.images[0].diffIds, expected['docker-base.tar']![0]!.diffIds);
  await writeFile(join(dir, 'have.json'), JSON.stringify(haveList));
  const d = await json(['diff', '--have', join(dir, 'have.json'), fixture('docker-app.tar'), '-o', join(dir, 'h.ddiff'), '--json']);
  assert.equal(d.included, 1);
  const l = await runCli(['load', join(dir, 'h.ddiff'), '--base', fixture('docker-base.tar'), '-o', join(dir, 'o.tar')]);
  assert.equal(l.code, 0, l.stderr);
  assert.equal((await json(['list', '--json', join(dir, 'o.tar')])).images[0].id, expected['docker-app.tar']![0]!.imageId);
});

test('inspect and verify report sizes and checks as JSON', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'b.ddiff');
  await json(['diff', '--json', '-o', bundle, fixture('docker-base.tar'), fixture('docker-app.tar')]);
  const info = await json(['inspect', '--json', bundle]);
  assert.equal(info.size, (await stat(bundle)).size);
  assert.ok(info.fullSize > info.size);
  assert.equal(info.saved, info.fullSize - info.size);
  assert.deepEqual(
    (info as BundleSummary).images[0]!.layers.map((l) => l.included),
    [false, false, true],
  );
  assert.deepEqual(info.base.needed, expected['docker-app.tar']![0]!.diffIds.slice(0, 2));
  const ok = await json(['verify', '--json', bundle, '--base', fixture('docker-base.tar')]);
  assert.equal(ok.ok, true);
  assert.equal(ok.needed, 2);
  const bad = await runCli(['verify', bundle, '--base', fixture('docker-app2.tar').replace('app2', 'untagged')]);
  assert.equal(bad.code, 0, 'docker-untagged.tar is app itself: holds the base layers');
  const missing = await runCli(['verify', bundle, '--base', fixture('podman-app.docker-archive.tar')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /lacks 2 layer\(s\)/);
});

test('--json output of list, diff, load, inspect, verify and have parses', async (t) => {
  const dir = await scratch(t);
  const bundle = join(dir, 'j.ddiff');
  for (const args of [
    ['list', '--json', fixture('docker-app.tar')],
    ['diff', '--json', '-o', bundle, fixture('docker-base.tar'), fixture('docker-app.tar')],
    ['load', '--json', bundle, '-o', join(dir, 'j.tar')],
    ['inspect', '--json', bundle],
    ['verify', '--json', bundle],
    ['have', '--json', fixture('docker-base.tar')],
  ]) {
    const value = await json(args);
    assert.equal(typeof value, 'object', args[0]);
  }
});

test('glob patterns name several target archives', async (t) => {
  const dir = await scratch(t);
  const out = await json(['diff', '--json', '-o', join(dir, 'g.ddiff'), fixture('docker-base.tar'), join(fixturesDir, 'docker-app.tar*')]);
  assert.equal(out.metadata.images.length, 2, 'docker-app.tar and docker-app.tar.gz');
  assert.equal(out.metadata.blobs.length, 2, 'one config and one layer blob, shared by both targets');
});
