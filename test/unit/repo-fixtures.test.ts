// The repository's engine-made fixtures (fixtures/make-fixtures.sh): `ddiff list --json` must
// report exactly the images fixtures/expected.json records — IDs, tags and diffIDs, in order.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fixturesDir, runCli } from '../helpers/cli.js';

interface ExpectedImage {
  imageId: string;
  tags: string[];
  diffIds: string[];
  platform?: string;
}

interface ListedImage {
  id: string;
  tags: string[];
  platform: string;
  layers: { diffId: string }[];
}

/** What `list --json` says, reduced to the fields expected.json records (platform when it does). */
function reduce(listed: ListedImage[], expected: ExpectedImage[]): ExpectedImage[] {
  return listed.map((image, i) => {
    const reduced: ExpectedImage = { imageId: image.id, tags: image.tags, diffIds: image.layers.map((l) => l.diffId) };
    if (expected[i]?.platform !== undefined) reduced.platform = image.platform;
    return reduced;
  });
}

function normalize(expected: ExpectedImage[]): ExpectedImage[] {
  return expected.map((e) => {
    const image: ExpectedImage = { imageId: e.imageId, tags: e.tags, diffIds: e.diffIds };
    if (e.platform !== undefined) image.platform = e.platform;
    return image;
  });
}

// Read when the tests are defined (at test time): make-fixtures.sh may have just rewritten it.
const expectedPath = join(fixturesDir, 'expected.json');
const expected = JSON.parse(readFileSync(expectedPath, 'utf8')) as Record<string, ExpectedImage[]>;

describe('repository fixtures (fixtures/expected.json)', { concurrency: Math.min(8, availableParallelism()) }, () => {
  test('expected.json lists the fixtures', () => {
    const names = Object.keys(expected);
    assert.ok(names.length >= 10, `expected.json has only ${names.length} entries`);
    for (const name of names) {
      assert.ok(Array.isArray(expected[name]) && expected[name]!.length > 0, `${name}: no images recorded`);
      assert.ok(existsSync(join(fixturesDir, name)), `${name} is in expected.json but not in fixtures/`);
    }
  });

  for (const [name, images] of Object.entries(expected)) {
    const path = join(fixturesDir, name);
    const want = normalize(images);
    test(`list --json ${name}`, async () => {
      const r = await runCli(['list', '--json', path]);
      assert.equal(r.code, 0, `${name}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', r.stderr);
      assert.deepEqual(reduce((JSON.parse(r.stdout) as { images: ListedImage[] }).images, want), want);
    });
    const isFile = existsSync(path) && statSync(path).isFile();
    if (isFile) {
      test(`list --json - < ${name} (one pass)`, async () => {
        const r = await runCli(['list', '--json', '-'], { stdin: createReadStream(path) });
        assert.equal(r.code, 0, `${name} via stdin: exit ${r.code}: ${r.stderr}`);
        assert.equal(r.stderr.trim(), '', r.stderr);
        const listed = (JSON.parse(r.stdout) as { images: (ListedImage & { source: string })[] }).images;
        assert.ok(listed.every((image) => image.source.startsWith('<stdin>')));
        assert.deepEqual(reduce(listed, want), want);
      });
    }
  }
});
