import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { formatReference, type ImageReference, normalizedName, parseReference } from '../../src/image/reference.js';

test('references are split as Docker does: a first component with a dot, a colon or localhost is the registry', () => {
  const cases: [string, ImageReference][] = [
    ['alpine', { domain: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['team/app:1.2', { domain: 'docker.io', repository: 'team/app', tag: '1.2' }],
    ['127.0.0.1:5000/team/app:2', { domain: '127.0.0.1:5000', repository: 'team/app', tag: '2' }],
    ['localhost/app', { domain: 'localhost', repository: 'app', tag: 'latest' }],
    [`reg.example/app@sha256:${'a'.repeat(64)}`, { domain: 'reg.example', repository: 'app', digest: `sha256:${'a'.repeat(64)}` }],
  ];
  for (const [text, expected] of cases) assert.deepEqual(parseReference(text), expected, text);
});

test('normalized names are what containerd and Kubernetes look images up by', () => {
  assert.equal(normalizedName('alpine'), 'docker.io/library/alpine:latest');
  assert.equal(normalizedName('exp/app:1'), 'docker.io/exp/app:1');
  assert.equal(normalizedName('docker.io/exp/app:1'), 'docker.io/exp/app:1');
  assert.equal(formatReference(parseReference('127.0.0.1:5000/a/b:c')), '127.0.0.1:5000/a/b:c');
});

test('malformed references are usage errors', () => {
  for (const bad of ['Upper/case', 'app:', 'app@sha256:12', 'a//b', '']) assert.throws(() => parseReference(bad), UsageError, bad);
});
