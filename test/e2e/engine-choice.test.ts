// Issue 12's engine findings: a Docker CLI whose daemon is down is an error, never a silent
// switch to Podman; a named engine's daemon being down is said as such, not as "no such image";
// ddiff says which engine it loaded into; docker-daemon: and containers-storage: pin the engine.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DockerApi, localDockerSocket } from '../../src/engine/docker-api.js';
import { DockerEngine } from '../../src/engine/docker.js';
import { Engine } from '../../src/engine/engine.js';
import { fixtureBundle, fixturesDir, runCli } from '../helpers/cli.js';
import { docker, podman } from './engines.js';
import { ready } from './support.js';

const base = join(fixturesDir, 'docker-base.tar');
const app = join(fixturesDir, 'docker-app.tar');
const appTag = 'ddiff-fixture/app:1';
const baseTag = 'ddiff-fixture/base:1';
const work = await mkdtemp(join(tmpdir(), 'ddiff-engine-choice-'));
const DEAD = 'unix:///nonexistent-ddiff-e2e/docker.sock';
const AUTO = { DDIFF_ENGINE: '', DDIFF_FORCE_PODMAN: '' };
after(async () => {
  await docker.cleanup();
  await podman.cleanup();
  await rm(work, { recursive: true, force: true });
});

const bundleOnce = fixtureBundle(work);

test('Docker CLI present, daemon down: load and diff say so (exit 125) instead of using Podman', async (t) => {
  if (!(await ready(t, [podman]))) return;
  const bundle = await bundleOnce;
  const loaded = await runCli(['load', bundle, '--base', base], { env: { ...AUTO, DOCKER_HOST: DEAD } });
  assert.equal(loaded.code, 125, loaded.stderr);
  assert.equal(loaded.stderr, `ddiff: error: docker daemon not reachable at ${DEAD} (is it running? start it, or pass --engine podman)\n`);
  assert.equal(loaded.stdout, '', 'nothing loaded into Podman');
  for (const engine of [[], ['--engine', 'docker']]) {
    const diffed = await runCli(['diff', ...engine, baseTag, appTag, '-o', join(work, 'x.ddiff')], { env: { ...AUTO, DOCKER_HOST: DEAD } });
    assert.equal(diffed.code, 125, diffed.stderr);
    assert.match(diffed.stderr, new RegExp(`^ddiff: error: docker daemon not reachable at ${DEAD} `));
    assert.doesNotMatch(diffed.stderr, /no such local image/);
  }
});

test('a Docker CLI that cannot start says why once, from every command, not as a missing image', async (t) => {
  // Whether the engine answers is asked beside the first real call, not before it: the answer
  // must still be the error, and nothing may be written.
  if (spawnSync('docker', ['--version']).status !== 0) return t.skip('no docker CLI on PATH');
  const bundle = await bundleOnce;
  const env = { ...AUTO, DOCKER_HOST: 'foo://not-a-host' };
  const out = join(work, 'never.ddiff');
  for (const args of [
    ['load', bundle],
    ['load', bundle, '--base', base],
    ['diff', baseTag, appTag, '-o', out],
    ['diff', base, appTag, '-o', out],
    ['have'],
    ['list', appTag],
  ]) {
    const r = await runCli(args, { env });
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ddiff: error: docker does not answer: .*foo:\/\/not-a-host\n$/, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  assert.equal(existsSync(out), false, 'no bundle written');
  // Whether Docker answers is asked once per command, however many inputs name it: the real CLI
  // behind a script that writes down each call.
  const bin = join(work, 'logging-bin');
  const log = join(work, 'docker-calls.log');
  const real = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'docker'), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  const r = await runCli(['diff', baseTag, appTag, '-o', out], { env: { ...env, PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(r.code, 125, r.stderr);
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(calls.filter((c) => c === 'version').length, 1, `docker calls: ${calls.join(', ')}`);
});

test('load says which engine it loaded into, and --engine podman is kept to', async (t) => {
  if (!(await ready(t, [docker, podman]))) return;
  const bundle = await bundleOnce;
  docker.track(appTag);
  podman.track(appTag);
  const toDocker = await runCli(['load', bundle, '--base', base], { env: AUTO });
  assert.equal(toDocker.code, 0, toDocker.stderr);
  assert.match(toDocker.stdout, /^Loaded 1 image\(s\) into docker \((full|fast-path)\)$/m);
  const toPodman = await runCli(['load', '--json', bundle, '--base', base, '--engine', 'podman'], { env: AUTO });
  assert.equal(toPodman.code, 0, toPodman.stderr);
  assert.equal((JSON.parse(toPodman.stdout) as { engine: string }).engine, 'podman');
  const quiet = await runCli(['load', '-q', bundle, '--base', base], { env: AUTO });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.doesNotMatch(quiet.stdout, /Loaded 1 image/, '-q silences the summary line');
});

test('docker-daemon:REF and containers-storage:REF read from the engine they name', async (t) => {
  if (!(await ready(t, [docker, podman]))) return;
  docker.track(appTag);
  podman.track(`localhost/${appTag}`);
  await docker.load(app);
  await podman.load(app);
  for (const [input, env] of [
    [`docker-daemon:${appTag}`, { DDIFF_ENGINE: 'podman' }],
    [`containers-storage:${appTag}`, { DDIFF_ENGINE: 'docker' }],
  ] as const) {
    const r = await runCli(['list', '--json', input], { env });
    assert.equal(r.code, 0, `${input}: ${r.stderr}`);
    const [image] = (JSON.parse(r.stdout) as { images: { source: string; layers: unknown[] }[] }).images;
    assert.equal(image!.source, `${input.startsWith('docker') ? 'docker' : 'podman'}:${appTag}`);
    assert.equal(image!.layers.length, 3);
  }
});

test('Docker on a local socket: ddiff asks its API what it asked the CLI, gets the same answers, and the same bundle from its save', async (t) => {
  if (!(await ready(t, [docker]))) return;
  const socket = localDockerSocket();
  if (socket === undefined) return t.skip(`DOCKER_HOST ${process.env.DOCKER_HOST} is not a local socket`);
  docker.track(appTag);
  docker.track(baseTag);
  await docker.load(base);
  await docker.load(app);
  const api = new DockerEngine(new DockerApi(socket));
  const cli = new Engine('docker');
  const appImage = await cli.inspect(appTag);
  for (const ref of [appTag, baseTag, appImage.id, appImage.id.slice(7, 19), `docker.io/${appTag}`]) {
    assert.deepEqual(await api.inspect(ref), await cli.inspect(ref), ref);
  }
  for (const engine of [api, cli]) {
    await assert.rejects(
      engine.inspect('ddiff-fixture/none:1'),
      /^EngineError: ddiff-fixture\/none:1: no such local image in docker \(.*No such image/,
    );
  }
  assert.deepEqual((await api.imageIds()).sort(), (await cli.imageIds()).sort());
  assert.equal(await api.hasClassicStore(), await cli.hasClassicStore());
  // The CLI is left the load alone (a diff by reference reads the target's save from the API
  // too): a script in front of it writes down each call.
  const bin = join(work, 'api-logging-bin');
  const log = join(work, 'api-docker-calls.log');
  const real = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'docker'), `#!/bin/sh\necho "$1" >> '${log}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  const logged = { ...AUTO, PATH: `${bin}:${process.env.PATH}` };
  const r = await runCli(['diff', baseTag, appTag, '-o', join(work, 'api.ddiff')], { env: logged });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(log), false, 'no docker CLI call for a diff by reference');
  const loaded = await runCli(['load', join(work, 'api.ddiff')], { env: logged });
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['load']);
  // The same diff through the CLI's save (a named context, as for a remote daemon): the same bundle, byte for byte.
  const config = join(work, 'docker-config');
  const contextEnv = { ...process.env, DOCKER_CONFIG: config, DOCKER_HOST: '' };
  const made = spawnSync('docker', ['context', 'create', 'same', '--docker', `host=unix://${socket}`], {
    env: contextEnv,
    encoding: 'utf8',
  });
  assert.equal(made.status, 0, made.stderr);
  const viaCli = await runCli(['diff', baseTag, appTag, '-o', join(work, 'cli.ddiff')], {
    env: { ...AUTO, PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: config, DOCKER_CONTEXT: 'same', DOCKER_HOST: '' },
  });
  assert.equal(viaCli.code, 0, viaCli.stderr);
  assert.ok(readFileSync(log, 'utf8').includes('save'), 'the named context went through the CLI');
  // The same bundle either way: every layer, blob and digest (only the name and creation time differ).
  const described = async (bundle: string) => {
    const shown = await runCli(['inspect', '--json', join(work, bundle)]);
    assert.equal(shown.code, 0, shown.stderr);
    return { ...(JSON.parse(shown.stdout) as object), bundle: undefined };
  };
  assert.deepEqual(await described('cli.ddiff'), await described('api.ddiff'));
});
