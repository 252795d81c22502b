import { execFile } from 'node:child_process';
import { isRecord } from '../util/json.js';

interface EngineVersion {
  name: 'docker' | 'podman';
  /** The CLI's version; null when it is not installed. */
  client: string | null;
  /** The daemon's version (Docker); null for Podman (no daemon) or when the daemon does not answer. */
  server: string | null;
  /** Why a version is missing. */
  error?: string;
}

function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 10_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, missing: (error as NodeJS.ErrnoException | null)?.code === 'ENOENT' });
    });
  });
}

function versionOf(part: unknown): string | null {
  return isRecord(part) && typeof part.Version === 'string' ? part.Version : null;
}

/** `docker version` / `podman version`, each answering or saying why not; never throws. */
export async function engineVersions(): Promise<EngineVersion[]> {
  return Promise.all(
    (['docker', 'podman'] as const).map(async (name): Promise<EngineVersion> => {
      const { stdout, stderr, missing } = await run(name, ['version', '--format', '{{json .}}']);
      if (missing) return { name, client: null, server: null, error: 'not installed' };
      let doc: unknown;
      try {
        doc = JSON.parse(stdout);
      } catch {
        doc = undefined;
      }
      const client = isRecord(doc) ? versionOf(doc.Client) : null;
      const server = name === 'docker' && isRecord(doc) ? versionOf(doc.Server) : null;
      const version: EngineVersion = { name, client, server };
      const complaint = stderr.trim().split('\n')[0];
      if ((client === null || (name === 'docker' && server === null)) && complaint) version.error = complaint;
      return version;
    }),
  );
}
