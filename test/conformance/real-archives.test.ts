// Conformance over the real-tool corpus in ../shared/fixtures/real: every archive's image IDs and
// diffIDs, as PROVENANCE.md records them (computed from the files), must be what `ddiff list`
// reports, reading the file by seeking and reading it once from stdin.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { runCli, sharedRealDir } from '../helpers/cli.js';

interface Expected {
  imageIds: Set<string>;
  diffIds: Set<string>;
}

const DIGEST = 'sha256:[0-9a-f]{64}';
const DOCKER_CONFIG = new RegExp(`config digest \\(image ID\\) \\*\\*\`(${DIGEST})\`\\*\\*(.*)$`);
const OCI_CONFIG = new RegExp(`^\\s*- config \`(${DIGEST})\`(.*)$`);
const DIFF_ID = new RegExp(`diffID \`(${DIGEST})\``);

/** PROVENANCE.md's per-file sections (`### \`FILE\``): expected image IDs and diffIDs of each. */
function parseProvenance(text: string): Map<string, Expected> {
  const sections = new Map<string, Expected>();
  let current: Expected | undefined;
  for (const line of text.split('\n')) {
    const heading = /^### `([^`]+)`/.exec(line);
    if (heading) {
      current = { imageIds: new Set(), diffIds: new Set() };
      sections.set(heading[1]!, current);
      continue;
    }
    if (/^#{1,3} /.test(line)) {
      current = undefined; // a later top-level section (appendix) is no file's
      continue;
    }
    if (!current) continue;
    const config = DOCKER_CONFIG.exec(line) ?? OCI_CONFIG.exec(line);
    if (config) {
      // Attestation manifests (platform unknown/unknown) are not images.
      if (!/arch `unknown`/.test(config[2]!)) current.imageIds.add(config[1]!);
      continue;
    }
    const diff = DIFF_ID.exec(line);
    if (diff && !line.includes('application/vnd.in-toto+json')) current.diffIds.add(diff[1]!);
  }
  return sections;
}

interface Listed {
  id: string;
  layers: { diffId: string }[];
}

function checkListing(file: string, expected: Expected, stdout: string): void {
  const listed = (JSON.parse(stdout) as { images: Listed[] }).images;
  assert.ok(Array.isArray(listed) && listed.length > 0, `${file}: no images listed`);
  const ids = new Set(listed.map((i) => i.id));
  const diffIds = new Set(listed.flatMap((i) => i.layers.map((l) => l.diffId)));
  for (const id of expected.imageIds) assert.ok(ids.has(id), `${file}: image ${id} not listed (listed: ${[...ids].join(', ')})`);
  for (const id of ids) assert.ok(expected.imageIds.has(id), `${file}: listed image ${id} is not in PROVENANCE.md`);
  for (const d of expected.diffIds) assert.ok(diffIds.has(d), `${file}: diffID ${d} not listed`);
}

const provenancePath = join(sharedRealDir, 'PROVENANCE.md');
const present = existsSync(provenancePath);
const skip = present ? false : `the real-archive corpus is absent (${sharedRealDir}): conformance tests skipped`;

// Each case spawns the CLI; run them side by side (the suite's files still run one at a time).
describe('real archives (../shared/fixtures/real)', { skip, concurrency: Math.min(8, availableParallelism()) }, () => {
  if (!present) return;
  const sections = parseProvenance(readFileSync(provenancePath, 'utf8'));
  const files = readdirSync(sharedRealDir)
    .filter((f) => f.endsWith('.tar') || f.endsWith('.tar.gz'))
    .sort();

  test('PROVENANCE.md describes every archive, with image IDs and diffIDs', () => {
    assert.ok(files.length >= 30, `only ${files.length} archives found`);
    for (const file of files) {
      const expected = sections.get(file);
      assert.ok(expected, `${file} has no section in PROVENANCE.md`);
      assert.ok(expected.imageIds.size > 0, `${file}: no image IDs parsed from PROVENANCE.md`);
      assert.ok(expected.diffIds.size > 0, `${file}: no diffIDs parsed from PROVENANCE.md`);
    }
  });

  test('the PROVENANCE.md parser skips attestations and keeps both manifest forms', () => {
    const attested = sections.get('ext-snyk-docker-containerd-busybox-arm64-attestation.tar');
    assert.ok(attested);
    assert.deepEqual([...attested.imageIds], ['sha256:0f7981b59ce1b84d8ab35f636be2d5a3f94c83a9e1759ae8718f0b415285e402']);
    assert.ok(!attested.diffIds.has('sha256:4f62f95682318843696bbf8eb884d5c904c1f2fa70c0f0523bf2cac8f902db14'));
    const multi = sections.get('docker20-multi-base-a-b.tar');
    assert.equal(multi?.imageIds.size, 3);
    assert.equal(multi?.diffIds.size, 4);
  });

  for (const file of files) {
    const path = join(sharedRealDir, file);
    test(`list --json ${file}`, async () => {
      const expected = sections.get(file);
      assert.ok(expected, `${file} has no section in PROVENANCE.md`);
      const r = await runCli(['list', '--json', path]);
      assert.equal(r.code, 0, `${file}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', r.stderr);
      checkListing(file, expected, r.stdout);
    });
    test(`list --json - < ${file} (one pass)`, async () => {
      const expected = sections.get(file);
      assert.ok(expected, `${file} has no section in PROVENANCE.md`);
      const r = await runCli(['list', '--json', '-'], { stdin: createReadStream(path) });
      assert.equal(r.code, 0, `${file} via stdin: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', r.stderr);
      checkListing(`${file} (stdin)`, expected, r.stdout);
    });
  }
});
