import { DdiffError } from '../errors.js';
import { formatPlatform, type Image, type Platform } from './image.js';

const NODE_TO_OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
};

export function hostPlatform(): Platform {
  return { os: 'linux', architecture: NODE_TO_OCI_ARCH[process.arch] ?? process.arch };
}

function matches(image: Platform, wanted: Platform): boolean {
  return (
    image.os === wanted.os &&
    image.architecture === wanted.architecture &&
    (wanted.variant === undefined || image.variant === wanted.variant)
  );
}

/**
 * The images of an archive that a command acts on. Variants of one image for several
 * platforms collapse to the wanted platform (the host's by default); an absent platform is an
 * error listing those present, never a silent fallback.
 */
export function selectImages(images: Image[], source: string, wanted?: Platform): Image[] {
  const groups = new Map<string, Image[]>();
  for (const image of images) {
    const key = image.tags.join(',');
    groups.set(key, [...(groups.get(key) ?? []), image]);
  }
  const selected: Image[] = [];
  for (const group of groups.values()) {
    const platforms = new Set(group.map((i) => formatPlatform(i.platform)));
    if (platforms.size <= 1 && !wanted) {
      selected.push(...group);
      continue;
    }
    const target = wanted ?? hostPlatform();
    const hit = group.filter((i) => matches(i.platform, target));
    if (hit.length === 0) {
      throw new DdiffError(
        `${source}: no image for platform ${formatPlatform(target)}; it has ${[...platforms].join(', ')} (choose with --platform)`,
      );
    }
    selected.push(...hit);
  }
  return selected;
}
