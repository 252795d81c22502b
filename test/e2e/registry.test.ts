/**
 * `ddiff load --to docker://…` and `docker://` bases against a real registry (Debian's
 * docker-registry, the CNCF distribution registry) started here on 127.0.0.1 with its own
 * storage, behind a counting proxy that can also fail a request or cut an upload. Images are
 * crafted docker-archives (no engine needed to make them); skopeo and Podman read the result.
 * ddiff itself runs with no engine reachable: everything it sends comes from the bundle and the
 * base archive.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { type CliResult, runCli } from '../helpers/cli.js';
import { docker, MTIME, podman, runPrefix } from './engines.js';
import { type CountingProxy, needs, type Registry, registryReason, skopeoReason, startProxy, startRegistry } from './servers.js';
import { type Crafted, DOCKER_ENV, freshDirs, loadCrafted, NO_ENGINE, once, tarOf, writeDockerArchive } from './support.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-registry-'));
const fresh = freshDirs(work);
const started: { stop: () => Promise<void> }[] = [];

after(async () => {
  for (const server of started.reverse()) await server.stop();
  await podman.cleanup();
  await docker.cleanup();
  await rm(work, { recursive: true, force: true });
});

function show(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
}

async function ddiff(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env: { ...NO_ENGINE, ...env } });
}

async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await ddiff(args, env);
  assert.equal(r.code, 0, show(r));
  return r.stdout;
}

/** The one error line and exit 125 a registry failure must give, naming the registry and the step. */
function assertRegistryFailure(r: CliResult, host: string, step: RegExp): void {
  assert.equal(r.code, 125, show(r));
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one error line:\n${r.stderr}`);
  assert.match(lines[0]!, new RegExp(`^ddiff: error: registry ${host.replace(/\./g, '\\.')}: ${step.source}`));
}

function layer(label: string, bytes: number): { data: Buffer } {
  // Random bytes do not compress: the bundle's blobs are about this big, so a cut mid-upload is mid-blob.
  return { data: tarOf([{ name: `${label}.bin`, type: 'file', mode: 0o644, mtime: MTIME.getTime() / 1000, content: randomBytes(bytes) }]) };
}

interface Pair {
  dir: string;
  base: Crafted;
  app: Crafted;
  baseArchive: string;
  bundle: string;
  /** The bundle's blobs (its new layers and the config): digest → size. */
  blobs: Map<string, number>;
}

let pairCount = 0;
/** A base of one layer and an app adding two, as archives, and the bundle of the app against the base. */
async function makePair(): Promise<Pair> {
  pairCount += 1;
  const dir = await fresh('pair');
  const baseLayer = layer('base', 40_000);
  const baseArchive = join(dir, 'base.tar');
  const [base] = await writeDockerArchive(baseArchive, [{ tag: `${runPrefix}/base-${pairCount}:1`, layers: [baseLayer] }]);
  const appArchive = join(dir, 'app.tar');
  const [app] = await writeDockerArchive(appArchive, [
    { tag: `${runPrefix}/app-${pairCount}:1`, layers: [baseLayer, layer('one', 48_000), layer('two', 48_000)] },
  ]);
  const bundle = join(dir, 'app.ddiff');
  const summary = JSON.parse(await ok(['diff', '--json', baseArchive, appArchive, '-o', bundle])) as {
    metadata: { blobs: { digest: string; size: number }[] };
  };
  const blobs = new Map(summary.metadata.blobs.map((b) => [b.digest, b.size]));
  assert.equal(blobs.size, 3, 'two new layers and the config');
  return { dir, base: base!, app: app!, baseArchive, bundle, blobs };
}

const servers = once(async () => {
  const registry = await startRegistry(await fresh('registry'));
  started.push(registry);
  const proxy = await startProxy(registry.host);
  started.push(proxy);
  return { registry, proxy };
});

async function setUp(
  t: TestContext,
  extra: (string | undefined)[] = [],
): Promise<{ registry: Registry; proxy: CountingProxy } | undefined> {
  if (!needs(t, [registryReason(), skopeoReason(), ...extra])) return undefined;
  return servers();
}

function skopeo(args: string[]): string {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The config digest (image ID) the registry's manifest for `ref` names. */
function registryImageId(ref: string): string {
  return (JSON.parse(skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${ref}`])) as { config: { digest: string } }).config
    .digest;
}

test('a bundle loaded into an empty registry (base layers from the base archive) pulls as the target: skopeo copy and podman pull', async (t) => {
  const podmanReason = await podman.unavailableReason();
  const s = await setUp(t, [podmanReason === undefined ? undefined : `podman: ${podmanReason}`]);
  if (!s) return;
  const pair = await makePair();
  const ref = `${s.registry.host}/${runPrefix}/fresh:1`;
  const out = JSON.parse(await ok(['load', '--json', pair.bundle, '--base', pair.baseArchive, '--to', `docker://${ref}`])) as {
    mode: string;
    blobs: { uploaded: number; bytes: number; mounted: number; present: number };
  };
  assert.equal(out.mode, 'registry');
  const blobBytes = [...pair.blobs.values()].reduce((x, y) => x + y, 0);
  assert.deepEqual(
    { ...out.blobs, bytes: undefined },
    { uploaded: 4, bytes: undefined, mounted: 0, present: 0 },
    'base layer, two new layers, config',
  );
  assert.ok(out.blobs.bytes > blobBytes, 'the base layer was uploaded too');
  assert.equal(registryImageId(ref), pair.app.id);

  const copied = join(pair.dir, 'copied-oci.tar');
  skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `oci-archive:${copied}`]);
  const listed = (JSON.parse(await ok(['list', '--json', copied])) as { images: { id: string; layers: { diffId: string }[] }[] }).images;
  assert.equal(listed[0]?.id, pair.app.id);
  assert.deepEqual(
    listed[0]?.layers.map((l) => l.diffId),
    pair.app.diffIds,
  );

  podman.track(ref);
  podman.track(pair.app.id);
  await podman.must(['pull', '-q', '--tls-verify=false', ref]);
  assert.equal((await podman.inspect(ref))?.id, pair.app.id);
});

test('a registry that holds the base receives exactly the bundle blobs, the config and the manifest (mounted base, counted by the proxy)', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const pair = await makePair();
  // The site registry got the base earlier, under the base's own name.
  skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${pair.baseArchive}`, `docker://${s.registry.host}/${pair.base.tag}`]);
  const first = s.proxy.requests.length;
  const ref = `${s.proxy.host}/${runPrefix}/site-app:1`;
  const out = JSON.parse(await ok(['load', '--json', pair.bundle, '--to', `docker://${ref}`])) as {
    manifest: string;
    blobs: { uploaded: number; bytes: number; mounted: number; present: number };
  };
  const sent = s.proxy.requests.slice(first);
  const blobPuts = sent.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/'));
  const uploadedDigests = blobPuts.map((r) => new URL(r.path, 'http://x').searchParams.get('digest'));
  assert.deepEqual(new Set(uploadedDigests), new Set(pair.blobs.keys()), 'uploaded exactly the bundle blobs');
  assert.equal(blobPuts.length, pair.blobs.size, 'each once');
  for (const put of blobPuts) assert.equal(put.bodyBytes, pair.blobs.get(new URL(put.path, 'http://x').searchParams.get('digest')!));
  const manifestPuts = sent.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'));
  assert.equal(manifestPuts.length, 1);
  const blobBytes = [...pair.blobs.values()].reduce((a, b) => a + b, 0);
  const totalSent = sent.reduce((n, r) => n + r.bodyBytes, 0);
  assert.equal(totalSent, blobBytes + manifestPuts[0]!.bodyBytes, `bytes sent: ${JSON.stringify(sent)}`);
  assert.equal(sent.filter((r) => r.method === 'PATCH').length, 0);
  assert.equal(sent.filter((r) => r.path.includes('mount=')).length, 1, 'the base layer is mounted from the base repository');
  assert.deepEqual(out.blobs, { uploaded: 3, bytes: blobBytes, mounted: 1, present: 0 });
  assert.equal(registryImageId(`${s.registry.host}/${runPrefix}/site-app:1`), pair.app.id);

  // Loading it again sends no blob at all.
  const again = s.proxy.requests.length;
  await ok(['load', pair.bundle, '--to', `docker://${ref}`]);
  assert.equal(s.proxy.requests.slice(again).filter((r) => r.method === 'PUT' && r.path.includes('/blobs/')).length, 0);
});

test('docker:// bases: diff and have read only the manifest and config; an absent image is one error line, exit 125', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const pair = await makePair();
  const baseRef = `${s.registry.host}/${runPrefix}/remote-base:1`;
  skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${pair.baseArchive}`, `docker://${baseRef}`]);
  const first = s.proxy.requests.length;
  const viaProxy = `docker://${s.proxy.host}/${runPrefix}/remote-base:1`;
  const appArchive = join(pair.dir, 'app.tar');
  const bundle = join(pair.dir, 'remote.ddiff');
  const summary = JSON.parse(await ok(['diff', '--json', viaProxy, appArchive, '-o', bundle])) as {
    included: number;
    metadata: { base: { needed: string[]; ids: string[] } };
  };
  assert.equal(summary.included, 2);
  assert.deepEqual(summary.metadata.base.needed, pair.base.diffIds);
  assert.deepEqual(summary.metadata.base.ids, [pair.base.id]);
  const have = JSON.parse(await ok(['have', '--json', viaProxy])) as { images: { id: string; diffIds: string[] }[] };
  assert.deepEqual(
    have.images.map((i) => [i.id, i.diffIds]),
    [[pair.base.id, pair.base.diffIds]],
  );
  const reads = s.proxy.requests.slice(first).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
  assert.deepEqual(new Set(reads.map((r) => r.path.split('/').pop())), new Set([pair.base.id]), 'only the config blob is read');

  const missing = join(pair.dir, 'missing.ddiff');
  const r = await ddiff(['diff', `docker://${s.proxy.host}/${runPrefix}/absent:1`, appArchive, '-o', missing]);
  assertRegistryFailure(r, s.proxy.host, /reading manifest .*absent:1: HTTP 404/);
  await assert.rejects(access(missing), 'no bundle is left behind');
  assertRegistryFailure(await ddiff(['have', `docker://${s.proxy.host}/${runPrefix}/absent:1`]), s.proxy.host, /reading manifest/);
});

test('a registry answering 500, and one whose connection breaks mid-upload: one error line, exit 125; the retry sends nothing twice', async (t) => {
  const s = await setUp(t);
  if (!s) return;
  const pair = await makePair();
  const ref = `docker://${s.proxy.host}/${runPrefix}/flaky:1`;
  const load = () => ddiff(['load', pair.bundle, '--base', pair.baseArchive, '--to', ref]);
  try {
    s.proxy.fault = (method, path) => (method === 'PUT' && path.includes('/manifests/') ? { status: 500 } : undefined);
    assertRegistryFailure(await load(), s.proxy.host, /putting manifest .*flaky:1: HTTP 500/);

    // A fresh repository: the second blob's upload is cut after 8 KiB.
    const cutRef = `docker://${s.proxy.host}/${runPrefix}/cut:1`;
    let puts = 0;
    s.proxy.fault = (method, path) =>
      method === 'PUT' && path.includes('/blobs/uploads/') && ++puts === 2 ? { cutAfter: 8192 } : undefined;
    const first = s.proxy.requests.length;
    const broken = await ddiff(['load', pair.bundle, '--base', pair.baseArchive, '--to', cutRef]);
    assertRegistryFailure(broken, s.proxy.host, /uploading blob sha256:[0-9a-f]{64}: connection failed/);
    const done = s.proxy.requests
      .slice(first)
      .filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201)
      .map((r) => new URL(r.path, 'http://x').searchParams.get('digest'));
    assert.equal(done.length, 1, 'one blob was complete before the break');

    s.proxy.fault = () => undefined;
    const retry = s.proxy.requests.length;
    const r = await ddiff(['load', pair.bundle, '--base', pair.baseArchive, '--to', cutRef]);
    assert.equal(r.code, 0, show(r));
    const resent = s.proxy.requests
      .slice(retry)
      .filter((x) => x.method === 'PUT' && x.path.includes('/blobs/uploads/'))
      .map((x) => new URL(x.path, 'http://x').searchParams.get('digest'));
    assert.equal(resent.length, 3, 'the retry uploads the three blobs not yet there');
    assert.ok(!resent.includes(done[0]!), 'the blob completed before the break is not sent again');
    assert.equal(registryImageId(`${s.registry.host}/${runPrefix}/cut:1`), pair.app.id);
  } finally {
    s.proxy.fault = () => undefined;
  }
});

test('a registry that wants credentials: 401 without them (one line, exit 125), a push with them from REGISTRY_AUTH_FILE', async (t) => {
  if (!needs(t, [registryReason(), skopeoReason()])) return;
  const registry = await startRegistry(await fresh('auth-registry'), { htpasswd: true });
  started.push(registry);
  const pair = await makePair();
  const ref = `${registry.host}/${runPrefix}/private:1`;
  const args = ['load', pair.bundle, '--base', pair.baseArchive, '--to', `docker://${ref}`];
  const empty = join(pair.dir, 'empty-auth.json');
  await writeFile(empty, '{"auths":{}}');
  assertRegistryFailure(await ddiff(args, { REGISTRY_AUTH_FILE: empty }), registry.host, /connecting: HTTP 401/);

  const authFile = join(pair.dir, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('ddiff:ddiff-secret').toString('base64') } } }));
  await ok(args, { REGISTRY_AUTH_FILE: authFile });
  const raw = skopeo(['inspect', '--tls-verify=false', '--raw', '--creds', 'ddiff:ddiff-secret', `docker://${ref}`]);
  assert.equal((JSON.parse(raw) as { config: { digest: string } }).config.digest, pair.app.id);
});

test('a loopback registry with a self-signed certificate is used over TLS without a check, as Docker does', async (t) => {
  if (!needs(t, [registryReason(), skopeoReason()])) return;
  const registry = await startRegistry(await fresh('tls-registry'), { tls: true });
  started.push(registry);
  const pair = await makePair();
  const ref = `${registry.host}/${runPrefix}/tls:1`;
  await ok(['load', pair.bundle, '--base', pair.baseArchive, '--to', `docker://${ref}`]);
  assert.equal(registryImageId(ref), pair.app.id);
});

test('base layers the registry lacks stream from the local Docker image into the registry (PATCH as they pass)', async (t) => {
  const dockerReason = await docker.unavailableReason();
  const s = await setUp(t, [dockerReason === undefined ? undefined : `docker: ${dockerReason}`]);
  if (!s) return;
  const pair = await makePair();
  await loadCrafted(docker, pair.baseArchive, [pair.base]);
  await rm(pair.baseArchive); // else the archive recorded at diff time is the base
  const first = s.proxy.requests.length;
  const ref = `${s.proxy.host}/${runPrefix}/from-docker:1`;
  const out = JSON.parse(
    await ok(['load', '--json', pair.bundle, '--to', `docker://${ref}`], {
      ...DOCKER_ENV,
      PATH: process.env.PATH,
      DOCKER_HOST: process.env.DOCKER_HOST,
    }),
  ) as {
    baseSource: string;
    blobs: { uploaded: number };
  };
  assert.equal(out.blobs.uploaded, 4);
  const patched = s.proxy.requests.slice(first).filter((r) => r.method === 'PATCH');
  assert.equal(patched.length, 1, 'the one base layer of the save streamed up');
  assert.equal(registryImageId(`${s.registry.host}/${runPrefix}/from-docker:1`), pair.app.id);
});
