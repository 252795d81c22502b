import { RegistryClient } from './client.js';
import { readRemoteImage, type RemoteImage, parseRegistryReference } from './remote-image.js';

export interface RegistryOptions {
  /** false (`--tls-verify=false`): no certificate check; plain HTTP when the registry has no TLS. */
  tlsVerify?: boolean;
}

/** A client for the registry of `docker://HOST/REPO…`, checked with a first request. */
export async function connect(host: string, options: RegistryOptions, scopes: string[]): Promise<RegistryClient> {
  const client = new RegistryClient(host, { tlsVerify: options.tlsVerify !== false, scopes });
  await client.ping();
  return client;
}

/** `docker://HOST/REPO:TAG` read as a base: its manifest and config only. */
export async function inspectRegistryImage(text: string, options: RegistryOptions): Promise<RemoteImage> {
  const reference = parseRegistryReference(text);
  const client = await connect(reference.domain, options, [`repository:${reference.repository}:pull`]);
  return readRemoteImage(client, reference);
}
