/**
 * End-to-end round trips through real engines: `ddiff diff` → remove the target from the engine →
 * `ddiff load` → the engine holds the target again with the same image ID, tags and diffIDs.
 *
 * Docker: the private daemon of scripts/engines.sh (`eval "$(scripts/engines.sh start)"`).
 * Podman: the machine's own storage, as root. A test whose engine does not answer is skipped with
 * the reason (it fails instead when DDIFF_E2E_REQUIRE_ENGINES=1 or CI=true). Every image is built
 * FROM scratch with unique random file contents and a unique name, and removed in `after`.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { runCli, type CliResult } from '../helpers/cli.js';
import {
  bundleBlobs,
  docker,
  enginesRequired,
  normalizeTag,
  podman,
  randomContent,
  tarEntries,
  uniqueName,
  type ImageInfo,
  type TestEngine,
} from './engines.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-'));
let dirCount = 0;

after(async () => {
  await docker.cleanup();
  await podman.cleanup();
  await rm(work, { recursive: true, force: true });
});

/** An environment in which ddiff cannot reach any engine (no docker/podman on PATH). */
const NO_ENGINE: NodeJS.ProcessEnv = {
  PATH: '/nonexistent-ddiff-e2e',
  DOCKER_HOST: 'unix:///nonexistent-ddiff-e2e/docker.sock',
  DDIFF_ENGINE: '',
  DDIFF_FORCE_PODMAN: '',
};

/** A test that needs the given engines: skipped with the reason when one does not answer. */
function e2e(name: string, engines: TestEngine[], fn: (dir: string) => Promise<void>): void {
  test(name, { timeout: 120_000 }, async (t: TestContext) => {
    for (const engine of engines) {
      const reason = await engine.unavailableReason();
      if (reason === undefined) continue;
      if (enginesRequired) throw new Error(`${engine.name} is required here (CI) but not available: ${reason}`);
      t.skip(`${engine.name} not available: ${reason}`);
      return;
    }
    dirCount += 1;
    const dir = join(work, `t${dirCount}`);
    await mkdir(dir);
    await fn(dir);
  });
}

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

interface DiffSummary {
  bundle: string;
  size: number;
  included: number;
  metadata: { images: { id: string; tags: string[]; layers: { diffId: string; blob?: string }[] }[] };
}

interface LoadSummary {
  images: { id: string; tags: string[] }[];
  baseSource: string | null;
  mode: 'fast-path' | 'full';
  output: string;
}

async function diffJson(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DiffSummary & { stderr: string }> {
  const r = await runCli(['diff', ...args, '--json'], { env });
  assert.equal(r.code, 0, `ddiff diff ${args.join(' ')}: ${show(r)}`);
  return { ...(JSON.parse(r.stdout) as DiffSummary), stderr: r.stderr };
}

async function loadJson(args: string[], env: NodeJS.ProcessEnv = {}): Promise<LoadSummary> {
  const r = await runCli(['load', ...args, '--json'], { env });
  assert.equal(r.code, 0, `ddiff load ${args.join(' ')}: ${show(r)}`);
  return JSON.parse(r.stdout) as LoadSummary;
}

/** The layer blobs of a bundle file (every blob but the image configs). */
async function layerBlobs(bundle: string, configIds: string[]): Promise<string[]> {
  return (await bundleBlobs(bundle)).filter((b) => !configIds.includes(b));
}

/** The engine holds an image with the expected ID, diffIDs and (normalized) tags. */
async function assertSameImage(engine: TestEngine, expected: ImageInfo): Promise<void> {
  const got = await engine.inspect(expected.id);
  assert.ok(got, `${engine.name} has no image ${expected.id} after load`);
  assert.equal(got.id, expected.id);
  assert.deepEqual(got.diffIds, expected.diffIds, `${engine.name}: diffIDs of ${expected.id}`);
  assert.deepEqual(got.tags.map(normalizeTag).sort(), expected.tags.map(normalizeTag).sort(), `${engine.name}: tags of ${expected.id}`);
}

/** Removes an image from the engine and checks that its ID is gone. */
async function remove(engine: TestEngine, ref: string, id: string): Promise<void> {
  await engine.rmi(ref);
  assert.equal(await engine.has(id), false, `${engine.name} still has ${id} after rmi ${ref}`);
}

const baseDockerfile = 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n';
const files = (...names: string[]) => Object.fromEntries(names.map((n) => [n, randomContent(n)]));

/** A base of 2 COPY layers and a target FROM it with one more. */
async function basePlusOne(engine: TestEngine): Promise<{ base: string; target: string; baseInfo: ImageInfo; targetInfo: ImageInfo }> {
  const base = uniqueName('base');
  const target = uniqueName('target');
  const baseInfo = await engine.build(base, baseDockerfile, files('a.txt', 'b.txt'));
  const targetInfo = await engine.build(target, `FROM ${base}\nCOPY c.txt /c.txt\n`, files('c.txt'));
  assert.equal(baseInfo.diffIds.length, 2);
  assert.deepEqual(targetInfo.diffIds.slice(0, 2), baseInfo.diffIds, 'target is built on the base');
  assert.equal(targetInfo.diffIds.length, 3);
  return { base, target, baseInfo, targetInfo };
}

// 1
e2e('docker → docker by reference: 1-layer bundle, fast-path load, same image', [docker], async (dir) => {
  const { base, target, targetInfo } = await basePlusOne(docker);
  const bundle = join(dir, 'app.ddiff');
  // No --engine: the default (docker, as its daemon answers).
  const defaults = { DDIFF_ENGINE: '', DDIFF_FORCE_PODMAN: '' };
  const d = await diffJson([base, target, '-o', bundle], defaults);
  assert.equal(d.metadata.images[0]!.layers.length, 3);
  assert.equal(d.included, 1);
  assert.deepEqual(await layerBlobs(bundle, [targetInfo.id]), [d.metadata.images[0]!.layers[2]!.blob]);
  await remove(docker, target, targetInfo.id);
  const l = await loadJson([bundle], defaults);
  assert.equal(l.mode, 'fast-path');
  assert.equal(l.images[0]!.id, targetInfo.id);
  await assertSameImage(docker, targetInfo);
});

// 2
e2e('podman → podman by reference (--engine podman): fast-path load (and a full one), same image', [podman], async (dir) => {
  const { base, target, targetInfo } = await basePlusOne(podman);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([base, target, '-o', bundle, '--engine', 'podman']);
  assert.equal(d.included, 1);
  assert.equal((await layerBlobs(bundle, [targetInfo.id])).length, 1);
  await remove(podman, target, targetInfo.id);
  // The archive names the base layers by diffID and carries none of them: Podman reuses its own.
  const l = await loadJson([bundle, '--engine', 'podman']);
  assert.equal(l.mode, 'fast-path');
  await assertSameImage(podman, targetInfo);
  await remove(podman, target, targetInfo.id);
  const full = await loadJson([bundle, '--engine', 'podman', '--no-fast-path']);
  assert.equal(full.mode, 'full');
  await assertSameImage(podman, targetInfo);
});

/**
 * Archives saved by `from`, diffed with no engine; `to` gets the base by `load` (its archive is
 * then deleted, so ddiff must find the base among `to`'s images) and then the bundle.
 */
async function crossEngine(dir: string, from: TestEngine, to: TestEngine, mode: LoadSummary['mode']): Promise<void> {
  const { base, target, baseInfo, targetInfo } = await basePlusOne(from);
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  await from.save([base], baseTar);
  await from.save([target], targetTar);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1);
  to.track(baseInfo.id);
  to.track(targetInfo.id);
  assert.equal(await to.has(targetInfo.id), false);
  await to.load(baseTar);
  await rm(baseTar); // the recorded base path is gone: load must look in the engine
  const l = await loadJson([bundle, '--engine', to.name]);
  assert.equal(l.mode, mode);
  assert.ok(l.baseSource && [base, baseInfo.id].includes(normalizeTag(l.baseSource)), `base taken from ${to.name}, got ${l.baseSource}`);
  await assertSameImage(to, targetInfo);
}

// 3
e2e('docker-saved archives → podman: base found among podman images by diffIDs', [docker, podman], (dir) =>
  crossEngine(dir, docker, podman, 'fast-path'),
);

// 4
e2e('podman-saved archives → docker: base found among docker images', [docker, podman], (dir) =>
  crossEngine(dir, podman, docker, 'fast-path'),
);

// 5
e2e('archives only: ddiff uses no engine; docker and podman both load the rebuilt archive', [docker, podman], async (dir) => {
  const { base, target, targetInfo } = await basePlusOne(docker);
  const baseTar = join(dir, 'base.tar');
  const targetTar = join(dir, 'target.tar');
  await docker.save([base], baseTar);
  await docker.save([target], targetTar);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([baseTar, targetTar, '-o', bundle], NO_ENGINE);
  assert.equal(d.included, 1);
  const out = join(dir, 'out.tar');
  const l = await loadJson([bundle, '--base', baseTar, '-o', out], NO_ENGINE);
  assert.equal(l.mode, 'full');
  assert.equal(l.baseSource, baseTar);
  await remove(docker, target, targetInfo.id);
  await docker.load(out);
  await assertSameImage(docker, targetInfo);
  podman.track(targetInfo.id);
  await podman.load(out);
  await assertSameImage(podman, targetInfo);
});

// 6
e2e('a shared layer that is not a prefix of the base: only the new layer is bundled', [docker], async (dir) => {
  const shared = randomContent('b');
  const base = uniqueName('base');
  const target = uniqueName('target');
  const baseInfo = await docker.build(base, baseDockerfile, { 'a.txt': randomContent('a'), 'b.txt': shared });
  const targetInfo = await docker.build(target, 'FROM scratch\nCOPY b.txt /b.txt\nCOPY c.txt /c.txt\n', {
    'b.txt': shared,
    'c.txt': randomContent('c'),
  });
  assert.equal(targetInfo.diffIds[0], baseInfo.diffIds[1], 'same bytes and mtime give the b layer the same diffID');
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([base, target, '-o', bundle, '--engine', 'docker']);
  assert.doesNotMatch(d.stderr, /warning/);
  assert.equal(d.included, 1);
  const layers = d.metadata.images[0]!.layers;
  assert.equal(layers[0]!.blob, undefined);
  assert.equal(layers[1]!.diffId, targetInfo.diffIds[1]);
  assert.deepEqual(await layerBlobs(bundle, [targetInfo.id]), [layers[1]!.blob]);
  await remove(docker, target, targetInfo.id);
  const l = await loadJson([bundle, '--engine', 'docker']);
  assert.equal(l.mode, 'full');
  await assertSameImage(docker, targetInfo);
});

// 7
for (const engine of [docker, podman]) {
  e2e(`${engine.name}: a target with a repeated identical layer round-trips`, [engine], async (dir) => {
    // The same COPY twice in a row is a no-op in Docker 20.10 (an empty_layer, no diffID), so
    // d.txt is overwritten in between: layers X, Y, X, the 1st and 3rd with identical tars.
    const base = uniqueName('base');
    const target = uniqueName('target');
    await engine.build(base, 'FROM scratch\nCOPY a.txt /a.txt\n', files('a.txt'));
    const targetInfo = await engine.build(
      target,
      `FROM ${base}\nCOPY d.txt /d.txt\nCOPY e/d.txt /d.txt\nCOPY d.txt /d.txt\n`,
      files('d.txt', 'e/d.txt'),
    );
    assert.equal(targetInfo.diffIds.length, 4);
    assert.equal(targetInfo.diffIds[1], targetInfo.diffIds[3], 'the same file copied again gives the same diffID');
    assert.notEqual(targetInfo.diffIds[1], targetInfo.diffIds[2]);
    const bundle = join(dir, 'app.ddiff');
    const d = await diffJson([base, target, '-o', bundle, '--engine', engine.name]);
    assert.equal(d.included, 3);
    assert.equal((await layerBlobs(bundle, [targetInfo.id])).length, 2, 'the repeated layer is stored once');
    await remove(engine, target, targetInfo.id);
    const l = await loadJson([bundle, '--engine', engine.name]);
    assert.equal(l.mode, 'fast-path');
    await assertSameImage(engine, targetInfo);
  });
}

// 8
e2e(
  'base == target: refused, and with --allow-empty an empty bundle; load restores the image from the engine or an archive',
  [docker],
  async (dir) => {
    const base = uniqueName('same');
    const info = await docker.build(base, baseDockerfile, files('a.txt', 'b.txt'));
    const bundle = join(dir, 'same.ddiff');
    const refused = await runCli(['diff', base, base, '-o', bundle, '--engine', 'docker']);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /adds no layer to .*--allow-empty/);
    const d = await diffJson([base, base, '-o', bundle, '--engine', 'docker', '--allow-empty']);
    assert.equal(d.metadata.images[0]!.layers.length, 2);
    assert.equal(d.included, 0);
    assert.deepEqual(await layerBlobs(bundle, [info.id]), []);
    // The image is its own base: loading it again over itself works…
    const l1 = await loadJson([bundle, '--engine', 'docker']);
    assert.equal(l1.images[0]!.id, info.id);
    await assertSameImage(docker, info);
    // …and with the image removed, the base comes from its saved archive.
    const baseTar = join(dir, 'same.tar');
    await docker.save([base], baseTar);
    await remove(docker, base, info.id);
    const l2 = await loadJson([bundle, '--base', baseTar, '--engine', 'docker']);
    assert.equal(l2.mode, 'full');
    await assertSameImage(docker, info);
  },
);

// 9a
e2e('failure: a base lacking the layers (unrelated --base archive; base removed from the engine)', [docker], async (dir) => {
  const { base, target, baseInfo, targetInfo } = await basePlusOne(docker);
  const unrelated = uniqueName('unrelated');
  await docker.build(unrelated, 'FROM scratch\nCOPY u.txt /u.txt\n', files('u.txt'));
  const unrelatedTar = join(dir, 'unrelated.tar');
  await docker.save([unrelated], unrelatedTar);
  const bundle = join(dir, 'app.ddiff');
  await diffJson([base, target, '-o', bundle, '--engine', 'docker']);
  await remove(docker, target, targetInfo.id);

  const r1 = await runCli(['load', bundle, '--base', unrelatedTar, '--engine', 'docker']);
  assert.notEqual(r1.code, 0, show(r1));
  assert.match(r1.stderr, /unrelated\.tar/, show(r1));
  for (const diffId of baseInfo.diffIds) assert.ok(r1.stderr.includes(diffId), `stderr names ${diffId}: ${r1.stderr}`);
  assert.equal(await docker.has(targetInfo.id), false, 'nothing loaded');

  await remove(docker, base, baseInfo.id);
  const r2 = await runCli(['load', bundle, '--engine', 'docker']);
  assert.notEqual(r2.code, 0, show(r2));
  assert.ok(r2.stderr.includes(base), `stderr names the base tried (${base}): ${r2.stderr}`);
  for (const diffId of baseInfo.diffIds) assert.ok(r2.stderr.includes(diffId), `stderr names ${diffId}: ${r2.stderr}`);
  assert.equal(await docker.has(targetInfo.id), false, 'nothing loaded');
});

// 9b
e2e('failure: a bundle with a flipped byte in a layer blob is refused, naming the blob', [docker], async (dir) => {
  const { base, target, targetInfo } = await basePlusOne(docker);
  const bundle = join(dir, 'app.ddiff');
  const d = await diffJson([base, target, '-o', bundle, '--engine', 'docker']);
  const blob = d.metadata.images[0]!.layers[2]!.blob!;
  const bytes = await readFile(bundle);
  const entry = tarEntries(bytes).find((e) => e.name === `blobs/sha256/${blob.slice('sha256:'.length)}`);
  assert.ok(entry && entry.size > 20, `layer blob ${blob} in the bundle`);
  bytes[entry.offset + Math.floor(entry.size / 2)] ^= 0x01;
  await writeFile(bundle, bytes);
  await remove(docker, target, targetInfo.id);

  const r = await runCli(['load', bundle, '--engine', 'docker']);
  assert.notEqual(r.code, 0, show(r));
  assert.ok(r.stderr.includes(blob), `stderr names ${blob}: ${r.stderr}`);
  assert.equal(await docker.has(targetInfo.id), false, 'nothing loaded');

  const out = join(dir, 'out.tar');
  const r2 = await runCli(['load', bundle, '-o', out, '--engine', 'docker']);
  assert.notEqual(r2.code, 0, show(r2));
  await assert.rejects(access(out), 'no output file written');
});

// 9b'
e2e(
  'failure: a bundle whose layer blob matches its listed digest but inflates to other bytes than its diffID loads nowhere',
  [docker],
  async (dir) => {
    // The blob and the metadata's digest agree (verify passes): only the diffID check can catch
    // it. Docker makes it itself (ddiff does not hash inflated bytes twice for an engine); -o has
    // no engine behind it, so ddiff does.
    const { base, target, targetInfo } = await basePlusOne(docker);
    const bundle = join(dir, 'app.ddiff');
    const d = await diffJson([base, target, '-o', bundle, '--engine', 'docker']);
    const layer = d.metadata.images[0]!.layers[2]!;
    const unpacked = join(dir, 'unpacked');
    await mkdir(unpacked);
    execFileSync('tar', ['-xf', bundle, '-C', unpacked]);
    const blobFile = (digest: string) => join(unpacked, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const tarBytes = zstdDecompressSync(await readFile(blobFile(layer.blob!)));
    tarBytes[tarBytes.length - 1024 - 1] ^= 0x01; // inside the last file's padding: still a valid tar
    const forged = zstdCompressSync(tarBytes);
    const forgedDigest = `sha256:${createHash('sha256').update(forged).digest('hex')}`;
    await rm(blobFile(layer.blob!));
    await writeFile(blobFile(forgedDigest), forged);
    const metaPath = join(unpacked, 'ddiff-bundle.json');
    const meta = (await readFile(metaPath, 'utf8')).replaceAll(layer.blob!, forgedDigest);
    const parsed = JSON.parse(meta) as { blobs: { digest: string; size: number }[] };
    for (const blob of parsed.blobs) if (blob.digest === forgedDigest) blob.size = forged.length;
    await writeFile(metaPath, JSON.stringify(parsed));
    const forgedBundle = join(dir, 'forged.ddiff');
    execFileSync('tar', ['-cf', forgedBundle, '-C', unpacked, 'ddiff-bundle.json', 'blobs']);
    const v = await runCli(['verify', forgedBundle]);
    assert.equal(v.code, 0, `the forged bundle's blobs match their digests: ${show(v)}`);
    await remove(docker, target, targetInfo.id);

    for (const args of [[], ['--no-fast-path']]) {
      const r = await runCli(['load', forgedBundle, '--engine', 'docker', ...args]);
      assert.notEqual(r.code, 0, show(r));
      assert.match(r.stderr, /diffID/, show(r));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${show(r)}`);
      assert.equal(await docker.has(targetInfo.id), false, 'nothing loaded');
    }
    const out = join(dir, 'out.tar');
    const o = await runCli(['load', forgedBundle, '-o', out, '--engine', 'docker']);
    assert.notEqual(o.code, 0, show(o));
    assert.match(o.stderr, /forged\.ddiff.*not its diffID/, show(o));
    await assert.rejects(access(out), 'no output file written');
  },
);

// 9c
e2e('a target not derived from the base: warning, every layer bundled, still loads', [docker], async (dir) => {
  const base = uniqueName('base');
  const target = uniqueName('other');
  await docker.build(base, baseDockerfile, files('a.txt', 'b.txt'));
  const targetInfo = await docker.build(target, 'FROM scratch\nCOPY c.txt /c.txt\nCOPY d.txt /d.txt\n', files('c.txt', 'd.txt'));
  const bundle = join(dir, 'other.ddiff');
  const d = await diffJson([base, target, '-o', bundle, '--engine', 'docker']);
  assert.match(d.stderr, /warning/i);
  assert.equal(d.metadata.images[0]!.layers.length, 2);
  assert.equal(d.included, 2);
  assert.equal((await layerBlobs(bundle, [targetInfo.id])).length, 2);
  await remove(docker, target, targetInfo.id);
  await loadJson([bundle, '--engine', 'docker']);
  await assertSameImage(docker, targetInfo);
});
