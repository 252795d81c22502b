import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finalBase, parseBuildArgs, substitute } from '../../src/build/dockerfile.js';
import { parseBuildCommand } from '../../src/commands/build.js';

test('single FROM', () => {
  assert.deepEqual(finalBase('FROM debian:12\nRUN true\n'), { image: 'debian:12' });
});

test('FROM scratch means every layer is new', () => {
  assert.deepEqual(finalBase('FROM scratch\nCOPY a /a\n'), {});
});

test('ARG default before FROM, and --build-arg override', () => {
  const text = 'ARG BASE=registry/base:1\nFROM ${BASE}\n';
  assert.deepEqual(finalBase(text), { image: 'registry/base:1' });
  assert.deepEqual(finalBase(text, new Map([['BASE', 'other:2']])), { image: 'other:2' });
});

test('$VAR, ${VAR:-default} and ${VAR:+alt} forms', () => {
  const vars = new Map([
    ['A', 'x'],
    ['EMPTY', ''],
  ]);
  assert.equal(substitute('$A/${A}:${MISSING:-def}:${A:+alt}:${EMPTY:+no}', vars), 'x/x:def:alt:');
  assert.deepEqual(finalBase('ARG TAG\nFROM img:${TAG:-latest}\n'), { image: 'img:latest' });
});

test('multi-stage: the final stage chains through earlier stages by name', () => {
  const text = [
    'ARG BASE=base:1',
    'FROM ${BASE} AS runtime',
    'RUN true',
    'FROM golang:1 AS build',
    'RUN make',
    'FROM runtime AS final',
    'COPY --from=build /out /out',
    'FROM final',
  ].join('\n');
  assert.deepEqual(finalBase(text, new Map([['BASE', 'cuda:12']])), { image: 'cuda:12' });
});

test('the last FROM wins even when an earlier stage has the same base', () => {
  assert.deepEqual(finalBase('FROM a:1 AS x\nFROM b:2\n'), { image: 'b:2' });
});

test('comments, continuations, --platform and case-insensitive keywords', () => {
  const text = [
    '# a comment',
    'ARG PLAT=linux/arm64',
    'from \\',
    '  # comment inside a continuation',
    '  --platform=${PLAT} \\',
    '  base:3 as Stage',
  ].join('\n');
  assert.deepEqual(finalBase(text), { image: 'base:3', platform: 'linux/arm64' });
});

test('escape parser directive changes the continuation character', () => {
  const text = '# escape=`\nFROM `\n  winbase:1\n';
  assert.deepEqual(finalBase(text), { image: 'winbase:1' });
});

test('a directive after a comment is just a comment', () => {
  const text = '# hello\n# escape=`\nFROM a:1\n';
  assert.deepEqual(finalBase(text), { image: 'a:1' });
});

test('ARG after the first FROM does not change FROM substitution', () => {
  assert.deepEqual(finalBase('ARG V=1\nFROM a:${V}\nARG V=2\nFROM b:${V}\n'), { image: 'b:1' });
});

test('errors: no FROM, empty expansion', () => {
  assert.throws(() => finalBase('RUN true\n'), /no FROM/);
  assert.throws(() => finalBase('ARG B\nFROM ${B}\n'), /empty image name/);
});

test('--build-arg NAME takes the value from the environment', () => {
  assert.deepEqual(
    [...parseBuildArgs(['A=1', 'B', 'C'], { B: 'two' })],
    [
      ['A', '1'],
      ['B', 'two'],
    ],
  );
});

test('docker build arguments: -f (working directory, else context), tags, build args, context', async (t) => {
  const { mkdtemp, mkdir, rm, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const ctx = await mkdtemp(join(tmpdir(), 'ddiff-ctx-'));
  t.after(() => rm(ctx, { recursive: true, force: true }));
  await mkdir(join(ctx, 'sub'));
  await writeFile(join(ctx, 'sub', 'Dockerfile.app'), 'FROM a\n');
  const parsed = parseBuildCommand(['-f', 'sub/Dockerfile.app', '-t', 'app:1', '--build-arg=BASE=b:2', '--no-cache', ctx]);
  assert.equal(parsed.context, ctx);
  assert.equal(parsed.dockerfile, join(ctx, 'sub', 'Dockerfile.app'));
  assert.deepEqual(parsed.tags, ['app:1']);
  assert.deepEqual(parsed.buildArgs, ['BASE=b:2']);
  assert.equal(parseBuildCommand(['--tag=x:1', '.']).dockerfile, 'Dockerfile');
});
