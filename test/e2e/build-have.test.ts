/**
 * End-to-end: `ddiff build --diff` (final FROM = ${BASE} through an ARG default and a
 * --build-arg override, multi-stage) and have-list round trips, through real engines.
 */
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { assertMatchesSchema } from '../helpers/schemas.js';
import { docker, enginesRequired, makeContext, normalizeTag, podman, randomContent, uniqueName, type TestEngine } from './engines.js';

const work = await mkdtemp(join(tmpdir(), 'ddiff-e2e-bh-'));

/** Untagged images (a multi-stage build's intermediate stages) present before these tests ran. */
async function danglingImages(engine: TestEngine): Promise<Set<string>> {
  if ((await engine.unavailableReason()) !== undefined) return new Set();
  const r = await engine.run(['images', '-q', '--no-trunc', '--filter', 'dangling=true']);
  return new Set(
    r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}
const danglingBefore = new Map<TestEngine, Set<string>>();
for (const engine of [docker, podman]) danglingBefore.set(engine, await danglingImages(engine));

after(async () => {
  await docker.cleanup();
  await podman.cleanup();
  for (const engine of [docker, podman]) {
    const before = danglingBefore.get(engine) ?? new Set();
    const ours = [...(await danglingImages(engine))].filter((id) => !before.has(id));
    if (ours.length > 0) await engine.run(['rmi', '-f', ...ours]);
  }
  await rm(work, { recursive: true, force: true });
});

function e2e(name: string, engine: TestEngine, fn: () => Promise<void>): void {
  test(name, { timeout: 120_000 }, async (t: TestContext) => {
    const reason = await engine.unavailableReason();
    if (reason !== undefined) {
      if (enginesRequired) throw new Error(`${engine.name} is required here but not available: ${reason}`);
      t.skip(`${engine.name} not available: ${reason}`);
      return;
    }
    await fn();
  });
}

async function ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, `ddiff ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

const files = (...names: string[]) => Object.fromEntries(names.map((n) => [n, randomContent(n)]));

for (const engine of [docker, podman]) {
  e2e(`${engine.name}: build --diff with ARG default, --build-arg override and stages → load → same image`, engine, async () => {
    const base = uniqueName('base');
    const baseInfo = await engine.build(base, 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n', files('a.txt', 'b.txt'));
    const target = uniqueName('built');
    const dockerfile = [
      '# syntax and comments are fine',
      'ARG BASE=ddiff-e2e-never/exists:1',
      'FROM scratch AS assets',
      'COPY asset.txt /asset.txt',
      '',
      'FROM ${BASE} AS runtime',
      'COPY --from=assets /asset.txt /asset.txt',
      'COPY app.txt \\',
      '     /app.txt',
    ].join('\n');
    const context = await makeContext(dockerfile, files('asset.txt', 'app.txt'));
    const bundle = join(work, `${engine.name}-built.ddiff`);
    const buildArgs =
      engine.name === 'docker'
        ? ['-q', '-t', target, '--build-arg', `BASE=${base}`, context]
        : ['-q', '--isolation=chroot', '--pull=never', '--layers', '-t', target, '--build-arg', `BASE=${base}`, context];
    engine.track(target);
    const out = await ok(['build', '--diff', '--json', '--engine', engine.name, '-o', bundle, '--', ...buildArgs], {
      DOCKER_BUILDKIT: '0',
    });
    await rm(context, { recursive: true, force: true });
    const summary = JSON.parse(out) as {
      metadata: { base: { reference: string; needed: string[] }; images: { id: string }[] };
      included: number;
    };
    assertMatchesSchema('diff', summary, 'build --diff --json');
    assert.equal(summary.metadata.base.reference, base, 'the base is the resolved final FROM');
    assert.deepEqual(summary.metadata.base.needed, baseInfo.diffIds);
    assert.equal(summary.included, 2, 'the COPY --from and COPY layers');
    const built = await engine.inspect(target);
    assert.ok(built);
    engine.track(built.id);
    assert.equal(summary.metadata.images[0]!.id, built.id);
    await engine.rmi(target);
    assert.equal(await engine.has(built.id), false);
    await ok(['load', bundle, '--engine', engine.name]);
    const loaded = await engine.inspect(built.id);
    assert.ok(loaded, 'loaded again');
    assert.deepEqual(loaded.diffIds, built.diffIds);
    assert.deepEqual(loaded.tags.map(normalizeTag), built.tags.map(normalizeTag));
  });

  e2e(`${engine.name}: have-list → diff --have → load finds the layers among local images → same image`, engine, async () => {
    const base = uniqueName('hbase');
    await engine.build(base, 'FROM scratch\nCOPY a.txt /a.txt\n', files('a.txt'));
    const target = uniqueName('htarget');
    const targetInfo = await engine.build(target, `FROM ${base}\nCOPY c.txt /c.txt\n`, files('c.txt'));
    const archive = join(work, `${engine.name}-target.tar`);
    await engine.save([target], archive);
    await engine.rmi(target);
    const have = join(work, `${engine.name}-have.json`);
    await writeFile(have, await ok(['have', '--json', '--engine', engine.name]));
    const bundle = join(work, `${engine.name}-have.ddiff`);
    const diff = JSON.parse(await ok(['diff', '--json', '--have', have, archive, '-o', bundle])) as {
      included: number;
      metadata: { base: { needed: string[] } };
    };
    assert.equal(diff.included, 1, 'only the layer the host lacks');
    assert.equal(diff.metadata.base.needed.length, 1);
    await ok(['load', bundle, '--engine', engine.name]);
    engine.track(targetInfo.id);
    const loaded = await engine.inspect(targetInfo.id);
    assert.ok(loaded);
    assert.deepEqual(loaded.diffIds, targetInfo.diffIds);
  });
}
