// Every command's --json output, and every example in the README's "JSON output" section, is
// checked against its JSON Schema in schemas/ (the documented contract for scripts).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fixturesDir, repoRoot, runCli } from '../helpers/cli.js';
import { assertMatchesSchema, schemaValidator, schemasDir } from '../helpers/schemas.js';

const base = join(fixturesDir, 'docker-base.tar');
const app = join(fixturesDir, 'docker-app.tar');
const work = await mkdtemp(join(tmpdir(), 'ddiff-schemas-'));
after(() => rm(work, { recursive: true, force: true }));

async function jsonOf(args: string[], expectCode = 0): Promise<{ stdout: unknown; stderr: string }> {
  const r = await runCli(args);
  assert.equal(r.code, expectCode, `${args.join(' ')}: ${r.stderr}`);
  return { stdout: r.stdout ? (JSON.parse(r.stdout) as unknown) : undefined, stderr: r.stderr };
}

test('every command prints JSON matching its schema, on stdout; errors as JSON on stderr', async () => {
  const bundle = join(work, 'app.ddiff');
  const cases: [string, string[]][] = [
    ['list', ['list', '--json', app, fixture('podman-app.oci-archive.tar')]],
    ['diff', ['diff', '--json', base, app, '-o', bundle]],
    ['inspect', ['inspect', '--json', bundle]],
    ['load', ['load', '--json', bundle, '--base', base, '-o', join(work, 'app.tar')]],
    ['verify', ['verify', '--json', bundle, '--base', base]],
    ['verify', ['verify', '--json', bundle]],
    ['have', ['have', '--json', base, app]],
    ['have', ['have', '--json', '--files', base]],
    ['version', ['version', '--json']],
  ];
  for (const [schema, args] of cases) {
    const { stdout, stderr } = await jsonOf(args);
    assertMatchesSchema(schema, stdout, args.join(' '));
    assert.equal(stderr, '', `${args.join(' ')}: nothing on stderr`);
  }
  const failed = await jsonOf(['verify', '--json', bundle, '--base', fixture('podman-app.docker-archive.tar')], 1);
  assertMatchesSchema('verify', failed.stdout, 'verify --json of a base lacking layers');
  assert.equal((failed.stdout as { ok: boolean }).ok, false);
  assertMatchesSchema('error', JSON.parse(failed.stderr), 'its error on stderr');
  for (const [args, code] of [
    [['list', '--json', join(work, 'nope.tar')], 'bad-input'],
    [['diff', '--json', '--bogus'], 'usage'],
    [['diff', '--json', app, base, '-o', join(work, 'x.ddiff')], 'refused'],
  ] as const) {
    const r = await runCli([...args]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    const error = JSON.parse(r.stderr) as { error: { code: string } };
    assertMatchesSchema('error', error, args.join(' '));
    assert.equal(error.error.code, code);
  }
});

function fixture(name: string): string {
  return join(fixturesDir, name);
}

test("the README's JSON examples match the schemas, and every schema has an example", () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const examples = [...readme.matchAll(/<!-- json-example: (\S+) -->\n```json\n([\s\S]*?)\n```/g)];
  const documented = new Set<string>();
  for (const [, name, text] of examples) {
    assertMatchesSchema(name!, JSON.parse(text!), `README example for ${name}`);
    documented.add(name!.split('#')[0]!);
  }
  const schemas = readdirSync(schemasDir).map((f) => f.replace(/\.schema\.json$/, ''));
  assert.deepEqual([...documented].sort(), schemas.sort());
});

test('a schema catches a changed shape (diff with layers as a count, as before)', () => {
  assert.equal(schemaValidator('diff')({ schemaVersion: 1, bundle: 'b', size: 1, layers: 3, included: 1, metadata: {} }), false);
  assert.equal(schemaValidator('load')({ schemaVersion: 1, images: [], base: null, mode: 'full', output: 'x', engine: null }), false);
});
