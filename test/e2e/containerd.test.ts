/**
 * containerd through `ctr` (the private containerd of scripts/engines.sh, CONTAINERD_ADDRESS):
 * Docker-built images diffed, then loaded into containerd namespaces of their own, with the
 * same image ID (config digest) and name; `have` and `diff` reading references from containerd.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { type CliResult, runCli } from '../helpers/cli.js';
import { docker, type ImageInfo, randomContent, uniqueName } from './engines.js';
import { containerdImageId, containerdReason, ctr, dropNamespace, needs } from './servers.js';
import { freshDirs, once } from './support.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-containerd-'));
const fresh = freshDirs(work);
const namespaces: string[] = [];

after(async () => {
  for (const ns of namespaces) await dropNamespace(ns);
  await docker.cleanup();
  await rm(work, { recursive: true, force: true });
});

function namespace(): string {
  const ns = `ddiff-e2e-${randomBytes(4).toString('hex')}`;
  namespaces.push(ns);
  return ns;
}

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}

const DOCKER_ENV = { DDIFF_ENGINE: 'docker', DDIFF_FORCE_PODMAN: '' };

async function ok(args: string[], env: NodeJS.ProcessEnv = DOCKER_ENV): Promise<string> {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

async function ready(t: TestContext): Promise<boolean> {
  const dockerReason = await docker.unavailableReason();
  return needs(t, [containerdReason(), dockerReason === undefined ? undefined : `docker: ${dockerReason}`]);
}

interface Pair {
  base: ImageInfo & { tag: string };
  app: ImageInfo & { tag: string };
  baseArchive: string;
  bundle: string;
}

/** A Docker base and an app two layers on top, the base saved, and the app's bundle against it. */
const pair = once(async (): Promise<Pair> => {
  const dir = await fresh('pair');
  const baseTag = uniqueName('base');
  const appTag = uniqueName('app');
  const base = await docker.build(baseTag, 'FROM scratch\nCOPY a.txt /a.txt\n', { 'a.txt': randomContent('base') });
  const app = await docker.build(appTag, `FROM ${baseTag}\nCOPY b.txt /b.txt\nCOPY c.txt /c.txt\n`, {
    'b.txt': randomContent('b'),
    'c.txt': randomContent('c'),
  });
  const baseArchive = join(dir, 'base.tar');
  await docker.save([baseTag], baseArchive);
  const bundle = join(dir, 'app.ddiff');
  await ok(['diff', baseTag, appTag, '-o', bundle]);
  return { base: { ...base, tag: baseTag }, app: { ...app, tag: appTag }, baseArchive, bundle };
});

test('a Docker-built target loads into containerd holding the base: only the bundle crosses, same image ID and name', async (t) => {
  if (!(await ready(t))) return;
  const p = await pair();
  const ns = namespace();
  await ctr(ns, ['images', 'import', p.baseArchive]);
  const out = JSON.parse(await ok(['load', '--json', '--engine', 'containerd', '--namespace', ns, p.bundle])) as {
    mode: string;
    baseSource: string;
  };
  assert.equal(out.mode, 'fast-path', 'the archive names the base layer containerd holds instead of carrying it');
  assert.equal(await containerdImageId(ns, `docker.io/${p.app.tag}`), p.app.id);
  const have = JSON.parse(await ok(['have', '--json', '--engine', 'containerd', '--namespace', ns])) as {
    images: { id: string; tags: string[]; diffIds: string[] }[];
  };
  const app = have.images.find((i) => i.id === p.app.id);
  assert.deepEqual(app?.diffIds, p.app.diffIds);
  assert.deepEqual(app?.tags, [`docker.io/${p.app.tag}`]);
});

test('containerd without the base: the full image is rebuilt from --base and imported, same image ID', async (t) => {
  if (!(await ready(t))) return;
  const p = await pair();
  const ns = namespace();
  const out = JSON.parse(await ok(['load', '--json', '--engine', 'containerd', '--namespace', ns, '--base', p.baseArchive, p.bundle])) as {
    mode: string;
  };
  assert.equal(out.mode, 'full');
  assert.equal(await containerdImageId(ns, `docker.io/${p.app.tag}`), p.app.id);
  // Loading it again changes nothing and fails nothing.
  await ok(['load', '--engine', 'containerd', '--namespace', ns, '--base', p.baseArchive, p.bundle]);
  assert.equal(await containerdImageId(ns, `docker.io/${p.app.tag}`), p.app.id);
});

test('diff reads references from containerd (ctr images export); the bundle rebuilds the target', async (t) => {
  if (!(await ready(t))) return;
  const p = await pair();
  const ns = namespace();
  const dir = await fresh('from-containerd');
  const appArchive = join(dir, 'app.tar');
  await docker.save([p.app.tag], appArchive);
  await ctr(ns, ['images', 'import', p.baseArchive]);
  await ctr(ns, ['images', 'import', appArchive]);
  const bundle = join(dir, 'ctr.ddiff');
  const summary = JSON.parse(
    await ok(['diff', '--json', '--engine', 'containerd', '--namespace', ns, p.base.tag, p.app.tag, '-o', bundle]),
  ) as {
    included: number;
    metadata: { images: { id: string }[]; base: { needed: string[] } };
  };
  assert.equal(summary.included, 2);
  assert.deepEqual(summary.metadata.base.needed, p.base.diffIds);
  assert.equal(summary.metadata.images[0]?.id, p.app.id);
  const rebuilt = join(dir, 'rebuilt.tar');
  await ok(['load', bundle, '--base', p.baseArchive, '-o', rebuilt]);
  const listed = (JSON.parse(await ok(['list', '--json', rebuilt])) as { images: { id: string }[] }).images;
  assert.equal(listed[0]?.id, p.app.id);
});

test('--engine containerd with a namespace lacking the base and no --base: one error line, nothing imported', async (t) => {
  if (!(await ready(t))) return;
  const p = await pair();
  const ns = namespace();
  const r = await runCli(['load', '--engine', 'containerd', '--namespace', ns, p.bundle], { env: DOCKER_ENV });
  assert.equal(r.code, 1, show(r));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no local containerd images hold the base layers/);
  assert.equal((await ctr(ns, ['images', 'ls', '-q'])).trim(), '');
});
