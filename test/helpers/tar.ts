import { createHash } from 'node:crypto';
import tar from 'tar-stream';

export interface TarFile {
  name: string;
  content?: Buffer | string;
  type?: 'file' | 'symlink' | 'link' | 'directory';
  linkname?: string;
}

/** Builds a tar archive in memory (for small hand-made test archives). */
export async function makeTar(files: TarFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  })();
  for (const file of files) {
    const content = typeof file.content === 'string' ? Buffer.from(file.content) : (file.content ?? Buffer.alloc(0));
    const header: tar.Header = {
      name: file.name,
      type: file.type ?? 'file',
      size: (file.type ?? 'file') === 'file' ? content.length : 0,
      mode: 0o644,
      mtime: new Date(0),
      linkname: file.linkname ?? '',
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    };
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, header.type === 'file' ? content : Buffer.alloc(0), (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A minimal docker-save archive of one image whose layers are the given layer tars. */
export async function makeDockerArchive(
  layers: Buffer[],
  options: { tag?: string; corruptLayer?: number } = {},
): Promise<{ archive: Buffer; imageId: string; diffIds: string[] }> {
  const diffIds = layers.map((l) => `sha256:${sha256Hex(l)}`);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((_, i) => ({ created_by: `layer ${i + 1}` })),
  });
  const configHex = sha256Hex(config);
  const files: TarFile[] = layers.map((layer, i) => {
    const content = Buffer.from(layer);
    if (options.corruptLayer === i) content[content.length - 1024 - 1] ^= 0xff;
    return { name: `layer${i}/layer.tar`, content };
  });
  files.push({ name: `${configHex}.json`, content: config });
  files.push({
    name: 'manifest.json',
    content: JSON.stringify([
      { Config: `${configHex}.json`, RepoTags: [options.tag ?? 'test/image:1'], Layers: layers.map((_, i) => `layer${i}/layer.tar`) },
    ]),
  });
  return { archive: await makeTar(files), imageId: `sha256:${configHex}`, diffIds };
}
