// The registry client's pure parts, and its bearer-token flow against a token server written
// here (no token server ships with the real registry the e2e tests run).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RegistryError } from '../../src/errors.js';
import { fixturesDir, runCli } from '../helpers/cli.js';
import { type Challenge, credentialsFor, parseChallenge } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { imageManifest } from '../../src/registry/push.js';
import { sha256 } from '../../src/util/digest.js';

test('WWW-Authenticate challenges are parsed with quoted and bare parameters', () => {
  const bearer: Challenge | undefined = parseChallenge(
    'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push"',
  );
  assert.deepEqual(bearer, {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'reg.example', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm=registry'), { scheme: 'basic', params: { realm: 'registry' } });
});

test('credentials come from REGISTRY_AUTH_FILE, matched by host whatever the key spells', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-auth-'));
  const saved = process.env.REGISTRY_AUTH_FILE;
  try {
    const file = join(dir, 'auth.json');
    await writeFile(
      file,
      JSON.stringify({
        auths: {
          'https://reg.example:5000/v1/': { auth: Buffer.from('alice:s3:cret').toString('base64') },
          'other.example': { username: 'bob', password: 'pw' },
        },
      }),
    );
    process.env.REGISTRY_AUTH_FILE = file;
    assert.deepEqual(credentialsFor('reg.example:5000'), { username: 'alice', password: 's3:cret' });
    assert.deepEqual(credentialsFor('other.example'), { username: 'bob', password: 'pw' });
    assert.equal(credentialsFor('nowhere.example'), undefined);
  } finally {
    if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
    else process.env.REGISTRY_AUTH_FILE = saved;
    await rm(dir, { recursive: true, force: true });
  }
});

test('the pushed manifest is OCI, with Docker layer media types renamed and the config digest kept', () => {
  const config = { digest: sha256('{}'), size: 2 };
  const { bytes, digest } = imageManifest(config, [
    { digest: sha256('a'), size: 1, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' },
    { digest: sha256('b'), size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' },
  ]);
  assert.equal(digest, sha256(bytes));
  const doc = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: { mediaType: string }[] };
  assert.equal(doc.config.digest, config.digest);
  assert.deepEqual(
    doc.layers.map((l) => l.mediaType),
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd'],
  );
});

/** A registry front that wants a bearer token, and the token server that hands it out. */
async function tokenProtected(handler: (req: IncomingMessage, res: ServerResponse, authorized: boolean) => void) {
  const scopes: string[][] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      scopes.push(url.searchParams.getAll('scope'));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: 'T0KEN' }));
      return;
    }
    const authorized = req.headers.authorization === 'Bearer T0KEN';
    if (!authorized) {
      const { port } = server.address() as AddressInfo;
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test"` }).end();
      return;
    }
    handler(req, res, authorized);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { host: `127.0.0.1:${port}`, scopes, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a bearer challenge is answered with a token for the challenge and every scope the push needs', async () => {
  const registry = await tokenProtected((req, res) => {
    if (req.url === '/v2/') res.writeHead(200).end('{}');
    else res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
  });
  try {
    const client = new RegistryClient(registry.host, { tlsVerify: true, scopes: ['repository:app:pull,push', 'repository:base:pull'] });
    await client.ping();
    assert.deepEqual(registry.scopes, [['repository:app:pull,push', 'repository:base:pull']]);
    assert.equal(await client.hasBlob('app', sha256('x')), false);
    await assert.rejects(client.getBlob('app', sha256('x')), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.exitCode, 125);
      assert.match(
        error.message,
        new RegExp(`^registry ${registry.host}: reading blob sha256:[0-9a-f]{64}: HTTP 404 \\(BLOB_UNKNOWN blob unknown to registry\\)$`),
      );
      return true;
    });
  } finally {
    await registry.close();
  }
});

test('a registry that cannot be reached is one error naming it and the step', async () => {
  const client = new RegistryClient('127.0.0.1:9', { tlsVerify: true, scopes: [] });
  await assert.rejects(client.ping(), /^RegistryError: registry 127\.0\.0\.1:9: connecting: connection failed: .*ECONNREFUSED/);
});

test('load --to: bad combinations are usage errors, an unreachable registry one line with exit 125; nothing is left behind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ddiff-to-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bundle = join(dir, 'app.ddiff');
  const made = await runCli(['diff', join(fixturesDir, 'docker-base.tar'), join(fixturesDir, 'docker-app.tar'), '-o', bundle]);
  assert.equal(made.code, 0, made.stderr);
  const cases: [string[], number, RegExp][] = [
    [['--base', 'docker://127.0.0.1:9/base:1'], 2, /a registry base serves only load --to/],
    [['--to', 'docker://127.0.0.1:9/app:1', '-o', join(dir, 'out.tar')], 2, /--to and -o exclude each other/],
    [['--to', `docker://127.0.0.1:9/app@sha256:${'a'.repeat(64)}`], 2, /name a tag, not a digest/],
    [['--to', 'docker://127.0.0.1:9/app:1'], 125, /^ddiff: error: registry 127\.0\.0\.1:9: connecting: connection failed: .*ECONNREFUSED/],
  ];
  for (const [args, code, message] of cases) {
    const r = await runCli(['load', bundle, ...args], { env: { DDIFF_TMPDIR: dir } });
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), message);
  }
  assert.deepEqual(await readdir(dir), ['app.ddiff']);
});
