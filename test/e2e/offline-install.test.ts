// The two ways to carry ddiff to an offline host, tried as the README says, in a network
// namespace with no network (unshare -n): `npm install -g ./ddiff-X.tgz` (its dependencies ride
// in the tarball), and the single executable on a PATH that has no node. Each then runs
// `ddiff load BUNDLE --base BASE.tar -o out.tar`, which must give the target's image ID.
//
// The executable takes ~15 s to build (esbuild, then postject into a copy of node, 120 MB); it
// is cached under node_modules/.cache/ddiff-exe/, keyed by the sources, the lockfile, the build
// script and the node binary, so later runs reuse it.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fixtureBundle, fixturesDir, imageIdOf, repoRoot } from '../helpers/cli.js';

const base = join(fixturesDir, 'docker-base.tar');
const expected = JSON.parse(readFileSync(join(fixturesDir, 'expected.json'), 'utf8')) as Record<string, { imageId: string }[]>;
const appId = expected['docker-app.tar']![0]!.imageId;
const work = await mkdtemp(join(tmpdir(), 'ddiff-offline-'));
after(() => rm(work, { recursive: true, force: true }));

function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd ?? work, env: options.env ?? process.env, timeout: 300_000 });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what}: exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Skips when this machine cannot make a network namespace (not root, or a sandbox forbids it). */
function offlineOrSkip(t: TestContext): boolean {
  const probe = run('unshare', ['-n', 'true']);
  if (probe.status === 0) return true;
  t.skip(`unshare -n is not permitted here: ${probe.stderr.trim() || probe.error?.message}`);
  return false;
}

const bundleOnce = fixtureBundle(work);

test('npm install -g ./ddiff-X.tgz with no network, then ddiff load -o gives the target image', async (t) => {
  if (!offlineOrSkip(t)) return;
  const bundle = await bundleOnce;
  const packed = ok(run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: repoRoot }), 'npm pack')
    .trim()
    .split('\n')
    .at(-1)!;
  const prefix = join(work, 'prefix');
  // An empty npm cache: nothing may come from an earlier install.
  const env = { ...process.env, npm_config_cache: join(work, 'npm-cache'), npm_config_audit: 'false', npm_config_fund: 'false' };
  ok(run('unshare', ['-n', 'npm', 'install', '-g', '--prefix', prefix, `./${packed}`], { env }), 'npm install -g (offline)');
  const out = join(work, 'npm-out.tar');
  ok(run('unshare', ['-n', join(prefix, 'bin', 'ddiff'), 'load', bundle, '--base', base, '-o', out]), 'ddiff load (offline)');
  assert.equal(await imageIdOf(out), appId);
});

/** Every file under `dir`, as paths relative to the repo. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [relative(repoRoot, path)];
  });
}

/** The single executable, built by `scripts/build-exe.sh` (npm run build:exe) or taken from the cache. */
function singleExecutable(): string {
  const hash = createHash('sha256');
  const inputs = [...filesUnder(join(repoRoot, 'src')), 'package-lock.json', 'scripts/build-exe.sh'].sort();
  for (const file of inputs) hash.update(file).update(readFileSync(join(repoRoot, file)));
  hash.update(readFileSync(process.execPath));
  const exe = join(repoRoot, 'node_modules', '.cache', 'ddiff-exe', hash.digest('hex').slice(0, 16), 'ddiff-linux-x64');
  if (!existsSync(exe)) {
    // One cached executable (120 MB) at a time: those of older sources go.
    rmSync(dirname(dirname(exe)), { recursive: true, force: true });
    mkdirSync(dirname(exe), { recursive: true });
    ok(run('bash', [join(repoRoot, 'scripts', 'build-exe.sh'), `${exe}.partial`], { cwd: repoRoot }), 'scripts/build-exe.sh');
    ok(run('mv', [`${exe}.partial`, exe]), 'mv');
  }
  return exe;
}

test('the single executable runs ddiff load on a PATH without node, with no network', { timeout: 300_000 }, async (t) => {
  if (!offlineOrSkip(t)) return;
  const bundle = await bundleOnce;
  const bin = join(work, 'bin');
  mkdirSync(bin);
  copyFileSync(singleExecutable(), join(bin, 'ddiff'));
  spawnSync('chmod', ['+x', join(bin, 'ddiff')]);
  const clean = ['/usr/bin/env', '-i', `PATH=${bin}`];
  assert.equal(
    run('unshare', ['-n', ...clean, '/bin/sh', '-c', 'command -v node || echo none']).stdout.trim(),
    'none',
    'no node on that PATH',
  );
  const out = join(work, 'exe-out.tar');
  ok(
    run('unshare', ['-n', ...clean, 'ddiff', 'load', bundle, '--base', base, '-o', out]),
    'ddiff load with the single executable (offline)',
  );
  assert.equal(await imageIdOf(out), appId);
  assert.match(ok(run('unshare', ['-n', ...clean, 'ddiff', '--version']), 'ddiff --version'), /^ddiff \d+\.\d+\.\d+\nnode v\d+/);
});
