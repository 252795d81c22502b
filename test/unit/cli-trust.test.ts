// Issue 12's findings: commands that succeeded while doing the wrong thing, and the CLI's
// surface (usage errors, transports, common options, version, load -i, completion). Archives
// only: the engine findings are in test/e2e/engine-choice.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { VERSION } from '../../src/version.js';
import { cliPath, fixturesDir, imageIdOf, repoRoot, runCli } from '../helpers/cli.js';

const fixture = (name: string) => join(fixturesDir, name);
const base = fixture('docker-base.tar');
const app = fixture('docker-app.tar');
const expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Record<string, { imageId: string; tags: string[] }[]>;
const appId = expected['docker-app.tar']![0]!.imageId;
const work = await mkdtemp(join(tmpdir(), 'ddiff-trust-'));
after(() => rm(work, { recursive: true, force: true }));
let dirs = 0;
function dir(): string {
  const path = join(work, `t${++dirs}`);
  mkdirSync(path);
  return path;
}

/** Exit `code`, nothing on stdout, one `ddiff: error:` line on stderr matching `message`. */
function assertOneLineError(r: { code: number; stdout: string; stderr: string }, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit ${r.code}: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.replace(/\n+$/, '').split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^ddiff: error: /);
  assert.match(lines[0]!, message);
}

/** No `.tmp` file left in `path`, and only `names` there. */
function assertOnly(path: string, names: string[]): void {
  assert.deepEqual(readdirSync(path).sort(), [...names].sort());
}

const bundleOnce = (async () => {
  const path = join(work, 'app.ddiff');
  const r = await runCli(['diff', base, app, '-o', path]);
  assert.equal(r.code, 0, r.stderr);
  return path;
})();

test('swapped BASE and TARGET (the target adds no layer): an error naming --allow-empty, no bundle written', async () => {
  const d = dir();
  const r = await runCli(['diff', app, base, '-o', join(d, 'x.ddiff')]);
  assertOneLineError(r, 1, /docker-base\.tar: .*adds no layer to .*docker-app\.tar \(are BASE and TARGET swapped\?.*--allow-empty/);
  assertOnly(d, []);
  const allowed = await runCli(['diff', app, base, '-o', join(d, 'x.ddiff'), '--allow-empty']);
  assert.equal(allowed.code, 0, allowed.stderr);
  assertOnly(d, ['x.ddiff']);
});

test('a glob in the BASE slot matching several files is an error (not its first match)', async () => {
  const d = dir();
  const r = await runCli(['diff', join(fixturesDir, 'docker-*.tar'), app, '-o', join(d, 'x.ddiff')]);
  assertOneLineError(r, 2, /the base '.*docker-\*\.tar' matches \d+ files .*the base is one image/);
  assertOnly(d, []);
});

/** Runs ddiff with stdout (and stderr) on a pseudo-terminal, as a user at a shell. */
function inTerminal(args: string[]): { code: number; output: string } {
  const quoted = [process.execPath, cliPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', quoted, '/dev/null'], { encoding: 'latin1', env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, output: r.stdout };
}

test('-o - to a terminal is refused (as docker save does), for diff and load', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) return t.skip('script(1) (util-linux) is not installed');
  const bundle = await bundleOnce;
  for (const args of [
    ['diff', base, app, '-o', '-'],
    ['load', bundle, '--base', base, '-o', '-'],
  ]) {
    const r = inTerminal(args);
    assert.equal(r.code, 1, `${args[0]}: ${r.output}`);
    assert.match(r.output, /^ddiff: error: refusing to write the (bundle|image archive) to a terminal \(-o -\)/);
    assert.ok(!r.output.includes('ddiff-bundle.json') && !r.output.includes('manifest.json'), 'no binary data on the terminal');
  }
});

test('--json with -o -: stdout is the bundle alone (the summary goes to stderr)', async () => {
  const d = dir();
  const r = spawnSync(process.execPath, [cliPath, 'diff', '--json', base, app, '-o', '-'], { maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr.toString());
  const summary = JSON.parse(r.stderr.toString()) as { size: number };
  assert.equal(r.stdout.length, summary.size, 'stdout holds exactly the bundle bytes');
  const loaded = await runCli(['load', '-', '--base', base, '-o', join(d, 'out.tar')], { stdin: r.stdout });
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.equal(await imageIdOf(join(d, 'out.tar')), appId);
});

test("a write error names -o's path, not the temporary file", async () => {
  const d = dir();
  const bundle = await bundleOnce;
  const missing = join(d, 'no-such-dir', 'out');
  for (const args of [
    ['diff', base, app, '-o', `${missing}.ddiff`],
    ['load', bundle, '--base', base, '-o', `${missing}.tar`],
  ]) {
    const r = await runCli(args);
    assertOneLineError(r, 1, new RegExp(`^ddiff: error: ${missing}\\.(ddiff|tar): no such file or directory$`));
  }
});

test('load with no container engine installed suggests -o FILE', async () => {
  const d = dir();
  const bundle = await bundleOnce;
  const bin = join(d, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const r = await runCli(['load', bundle, '--base', base], { env: { PATH: bin, DDIFF_ENGINE: '', DDIFF_FORCE_PODMAN: '' } });
  assertOneLineError(r, 125, /no container engine found .*ddiff load BUNDLE -o FILE/);
});

test("skopeo's transports are read wherever an input is: list, diff, load --base", async () => {
  const d = dir();
  const list = async (input: string) => {
    const r = await runCli(['list', '--json', input]);
    assert.equal(r.code, 0, `${input}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { images: { id: string; tags: string[] }[] }).images;
  };
  assert.equal((await list(`docker-archive:${app}`))[0]!.id, appId);
  assert.equal((await list(`docker-archive:${app}:ddiff-fixture/app:1`))[0]!.id, appId);
  const idOf = (name: string) => expected[name]![0]!.imageId;
  assert.equal((await list(`oci-archive:${fixture('podman-app.oci-archive.tar')}`))[0]!.id, idOf('podman-app.oci-archive.tar'));
  assert.equal((await list(`oci:${fixture('podman-app.oci-dir')}`))[0]!.id, idOf('podman-app.oci-dir'));
  assert.equal((await list(`dir:${fixture('podman-app.docker-dir')}`))[0]!.id, idOf('podman-app.docker-dir'));
  const multi = await list(`docker-archive:${fixture('docker-multi.tar')}`);
  const one = await list(`docker-archive:${fixture('docker-multi.tar')}:${multi[1]!.tags[0]}`);
  assert.deepEqual(
    one.map((i) => i.id),
    [multi[1]!.id],
  );
  const wrong = await runCli(['list', `docker-archive:${app}:nope:1`]);
  assertOneLineError(wrong, 1, /docker-app\.tar: no image 'nope:1' in it \(it has ddiff-fixture\/app:1\)/);
  const bundle = join(d, 't.ddiff');
  const diffed = await runCli(['diff', `docker-archive:${base}`, `docker-archive:${app}`, '-o', bundle]);
  assert.equal(diffed.code, 0, diffed.stderr);
  const loaded = await runCli(['load', bundle, '--base', `docker-archive:${base}`, '-o', join(d, 'out.tar')]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.equal(await imageIdOf(join(d, 'out.tar')), appId);
  const tarball = await runCli(['list', 'tarball:layer.tar']);
  assertOneLineError(tarball, 2, /the tarball: transport is not read by ddiff/);
});

test('usage errors are one line in the documented form, exit 2', async () => {
  for (const [args, message] of [
    [['diff', '--bogus', base, app], /unknown option '--bogus' \(see ddiff diff --help\)$/],
    [['inspect'], /missing required argument 'bundle' \(see ddiff inspect --help\)$/],
    [['verify', 'a', 'b'], /too many arguments for 'verify'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ] as const) {
    assertOneLineError(await runCli([...args]), 2, message);
  }
});

test('-q, --engine and --json are accepted by every command', async () => {
  const d = dir();
  const bundle = await bundleOnce;
  const common = ['-q', '--json', '--engine', 'docker'];
  for (const args of [
    ['list', app],
    ['diff', base, app, '-o', join(d, 'c.ddiff')],
    ['load', bundle, '--base', base, '-o', join(d, 'c.tar')],
    ['inspect', bundle],
    ['verify', bundle],
    ['have', base],
    ['version'],
  ]) {
    const r = await runCli([args[0]!, ...common, ...args.slice(1)]);
    assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    assert.equal(typeof JSON.parse(r.stdout), 'object', args[0]);
  }
  const build = await runCli(['build', ...common]);
  assert.doesNotMatch(build.stderr, /unknown option/, 'build takes them too');
  const completion = await runCli(['completion', '-q', '--json', '--engine', 'docker', 'bash']);
  assert.equal(completion.code, 0, completion.stderr);
});

test('ddiff version and --version print ddiff, Node and engine versions', async () => {
  const packageVersion = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(VERSION, packageVersion);
  for (const flag of ['version', '--version', '-v']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ddiff ${VERSION.replace(/\./g, '\\.')}\nnode ${process.version}\ndocker .*\npodman .*\n$`));
  }
  const json = JSON.parse((await runCli(['version', '--json'])).stdout) as { ddiff: string; node: string; engines: { name: string }[] };
  assert.equal(json.ddiff, VERSION);
  assert.deepEqual(
    json.engines.map((e) => e.name),
    ['docker', 'podman'],
  );
});

test('load -i FILE, as docker load -i; BUNDLE and -i together are an error', async () => {
  const d = dir();
  const bundle = await bundleOnce;
  const r = await runCli(['load', '-i', bundle, '--base', base, '-o', join(d, 'out.tar')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await imageIdOf(join(d, 'out.tar')), appId);
  assertOneLineError(await runCli(['load', bundle, '-i', bundle, '-o', join(d, 'x.tar')]), 2, /give the bundle once/);
  assertOnly(d, ['out.tar']);
});

test('ddiff completion bash completes commands and options; zsh and fish scripts are printed', async () => {
  const script = (await runCli(['completion', 'bash'])).stdout;
  const complete = (words: string[]) => {
    const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ddiff; echo "\${COMPREPLY[*]}"`;
    const r = spawnSync('bash', ['-c', line], { encoding: 'utf8', cwd: repoRoot });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  assert.equal(complete(['ddiff', 'lo']), 'load');
  assert.equal(complete(['ddiff', 'load', '--ba']), '--base');
  assert.match(complete(['ddiff', 'diff', '--allow']), /--allow-empty/);
  const zsh = await runCli(['completion', 'zsh']);
  assert.match(zsh.stdout, /^#compdef ddiff\n[\s\S]*complete -o default -o filenames -F _ddiff ddiff/);
  const fish = await runCli(['completion', 'fish']);
  assert.match(fish.stdout, /complete -c ddiff -n __fish_use_subcommand -a load /);
  assert.match(fish.stdout, /__fish_seen_subcommand_from load' -l base/);
  assertOneLineError(await runCli(['completion', 'tcsh']), 2, /unknown shell 'tcsh'/);
  assert.ok(!existsSync(join(repoRoot, 'tcsh')));
});
