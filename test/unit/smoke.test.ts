import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeDockerArchive, makeTar } from '../helpers/tar.js';
import { runCli } from '../helpers/cli.js';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('list reads a hand-made archive and reports a corrupt layer', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-test-'));
  const layer = await makeTar([{ name: 'a.txt', content: 'hello' }]);
  const good = await makeDockerArchive([layer]);
  await writeFile(join(dir, 'good.tar'), good.archive);
  const r = await runCli(['list', '--json', join(dir, 'good.tar')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout)[0].id, good.imageId);
  const bad = await makeDockerArchive([layer], { corruptLayer: 0 });
  await writeFile(join(dir, 'bad.tar'), bad.archive);
  const r2 = await runCli(['list', join(dir, 'bad.tar')]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /bad\.tar: layer .* corrupt/);
  console.log(r2.stderr, r.maxRss);
});
