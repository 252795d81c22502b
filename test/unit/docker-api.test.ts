// Which Docker daemon ddiff asks through the Engine API, and which it leaves to the CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DockerApi, imagePath, localDockerSocket } from '../../src/engine/docker-api.js';
import { EngineUnreachableError } from '../../src/errors.js';

const noContext = () => undefined;

test('a unix DOCKER_HOST is asked directly; any other host is left to the CLI', () => {
  assert.equal(localDockerSocket({ DOCKER_HOST: 'unix:///tmp/d.sock' }, noContext), '/tmp/d.sock');
  for (const host of ['tcp://127.0.0.1:2376', 'ssh://me@host', 'npipe:////./pipe/docker_engine', 'fd://', 'unix://', 'foo://x']) {
    assert.equal(localDockerSocket({ DOCKER_HOST: host }, noContext), undefined, host);
  }
});

test('without DOCKER_HOST: the default socket, unless a context other than default is chosen', () => {
  assert.equal(localDockerSocket({}, noContext), '/var/run/docker.sock');
  assert.equal(localDockerSocket({ DOCKER_CONTEXT: 'default' }, noContext), '/var/run/docker.sock');
  assert.equal(localDockerSocket({ DOCKER_CONTEXT: 'remote' }, noContext), undefined);
  assert.equal(
    localDockerSocket({}, () => 'remote'),
    undefined,
  );
  assert.equal(
    localDockerSocket({}, () => 'default'),
    '/var/run/docker.sock',
  );
  // DOCKER_HOST wins over a context, as in the CLI.
  assert.equal(
    localDockerSocket({ DOCKER_HOST: 'unix:///x.sock', DOCKER_CONTEXT: 'remote' }, () => 'remote'),
    '/x.sock',
  );
});

test("the CLI's current context is read from $DOCKER_CONFIG/config.json", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ddiff-docker-config-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: {}, currentContext: 'remote' }));
  assert.equal(localDockerSocket({ DOCKER_CONFIG: dir }), undefined);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: {} }));
  assert.equal(localDockerSocket({ DOCKER_CONFIG: dir }), '/var/run/docker.sock');
  writeFileSync(join(dir, 'config.json'), '{ not json');
  assert.equal(localDockerSocket({ DOCKER_CONFIG: dir }), '/var/run/docker.sock', 'an unreadable config is no context');
});

test('image references keep their slashes, colons and @ in the API path', () => {
  assert.equal(imagePath('localhost:5000/team/app:1'), '/images/localhost:5000/team/app:1/json');
  assert.equal(imagePath('app@sha256:abc'), '/images/app@sha256:abc/json');
  assert.equal(imagePath('a b?c#d'), '/images/a%20b%3Fc%23d/json');
});

test('a socket nobody listens on is "daemon not reachable", naming it as the CLI does', async () => {
  const socket = join(mkdtempSync(join(tmpdir(), 'ddiff-no-daemon-')), 'docker.sock');
  const api = new DockerApi(socket);
  await assert.rejects(api.ping(), (error: unknown) => {
    assert.ok(error instanceof EngineUnreachableError);
    assert.equal(error.message, `docker daemon not reachable at unix://${socket} (is it running? start it, or pass --engine podman)`);
    return true;
  });
});
