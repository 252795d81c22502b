/**
 * Mutations of image archives and bundles for the fuzzer: as plain data (so fast-check can print
 * and shrink them) and a deterministic `applyMutations` that turns a seed archive plus a list of
 * mutations into the hostile bytes.
 */
import fc from 'fast-check';
import type { TarFile } from '../helpers/tar.js';
import { makeTar } from '../helpers/tar.js';
import { BLOCK, fixChecksum, sha256Hex, tarEntries, tarFiles } from './tar-edit.js';

/** Header fields: [offset, length]. */
export const HEADER_FIELDS = {
  name: [0, 100],
  mode: [100, 8],
  size: [124, 12],
  checksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 8],
  prefix: [345, 155],
} as const;
export type HeaderField = keyof typeof HEADER_FIELDS;

export type Mutation =
  // Entry level (the archive is re-packed)
  | { kind: 'rename'; entry: number; name: string }
  | { kind: 'link'; entry: number; type: 'symlink' | 'link'; target: string }
  | { kind: 'drop'; entry: number }
  | { kind: 'duplicate'; entry: number; content: Uint8Array | null }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'content'; entry: number; content: Uint8Array }
  | { kind: 'json'; entry: number; path: number; value: unknown; remove: boolean; readdress: boolean }
  | { kind: 'add'; name: string; content: Uint8Array }
  // Byte level
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'flip-header'; entry: number; offset: number; mask: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'header-field'; entry: number; field: HeaderField; bytes: Uint8Array; fix: boolean };

/** Names and link targets a hostile archive would use; `@N` means "the name of entry N". */
const HOSTILE_NAMES = [
  '../evil',
  '/etc/passwd',
  'a/../../b',
  './manifest.json',
  'manifest.json',
  'index.json',
  'ddiff-bundle.json',
  'oci-layout',
  '.',
  '',
  '..',
  'blobs/sha256/',
  `blobs/sha256/${'0'.repeat(64)}`,
  `${'d/'.repeat(60)}long`,
  'x'.repeat(300),
  '@0',
  '@1',
  '@2',
  '@3',
  '@-1',
];

const entryIndex = fc.nat({ max: 63 });
const name = fc.oneof(fc.constantFrom(...HOSTILE_NAMES), fc.string({ maxLength: 40 }));

/** Small JSON values, with the values parsers trip on (huge numbers, wrong types, digests). */
const jsonValue = fc.oneof(
  fc.constantFrom(null, true, -1, 0, 1e300, Number.MAX_SAFE_INTEGER + 2, '', 'sha256:', `sha256:${'a'.repeat(64)}`, [], {}, [null], {
    digest: 7,
  }),
  fc.jsonValue({ maxDepth: 3 }),
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }), weight: 3 },
  {
    arbitrary: fc.record({
      kind: fc.constant('flip-header' as const),
      entry: entryIndex,
      offset: fc.nat({ max: 511 }),
      mask: fc.integer({ min: 1, max: 255 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('header-field' as const),
      entry: entryIndex,
      field: fc.constantFrom(...(Object.keys(HEADER_FIELDS) as HeaderField[])),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 12 }),
        fc
          .constantFrom(
            '77777777777\0',
            '00000000000\0',
            '-1\0',
            '1e9\0',
            '2',
            '1',
            '5',
            'x',
            'L',
            'g',
            'K',
            'ustar\0',
            '../../x\0',
            '/etc/passwd\0',
          )
          .map((s) => new Uint8Array(Buffer.from(s))),
        fc.constant(new Uint8Array([0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
      ),
      fix: fc.boolean(),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('rename' as const), entry: entryIndex, name }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('link' as const),
      entry: entryIndex,
      type: fc.constantFrom('symlink' as const, 'link' as const),
      target: name,
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('drop' as const), entry: entryIndex }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('duplicate' as const),
      entry: entryIndex,
      content: fc.option(fc.uint8Array({ maxLength: 64 })),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('swap' as const), a: entryIndex, b: entryIndex }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant('content' as const), entry: entryIndex, content: fc.uint8Array({ maxLength: 2048 }) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('json' as const),
      entry: entryIndex,
      path: fc.nat(),
      value: jsonValue,
      remove: fc.boolean(),
      readdress: fc.boolean(),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('add' as const), name, content: fc.uint8Array({ maxLength: 64 }) }), weight: 1 },
);

const isByteLevel = (m: Mutation) => m.kind === 'flip' || m.kind === 'flip-header' || m.kind === 'truncate' || m.kind === 'header-field';

function resolveName(files: TarFile[], candidate: string): string {
  if (!candidate.startsWith('@')) return candidate;
  const i = Number(candidate.slice(1));
  const file = files.at(i % Math.max(files.length, 1));
  return file?.name ?? 'missing';
}

/** Every path in a JSON document (as lists of keys), depth first, at most 200. */
function jsonPaths(doc: unknown): (string | number)[][] {
  const paths: (string | number)[][] = [];
  const walk = (value: unknown, path: (string | number)[]) => {
    if (paths.length >= 200) return;
    paths.push(path);
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(doc, []);
  return paths;
}

function setPath(doc: unknown, path: (string | number)[], value: unknown, remove: boolean): unknown {
  if (path.length === 0) return remove ? undefined : value;
  let parent = doc as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (remove) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else parent[last] = value;
  return doc;
}

const HEX_NAME = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/;

/**
 * Gives `files[index]` its new content and, when its name is content-addressed, the name of its
 * new digest; every JSON entry naming the old digest is rewritten too (and re-addressed in
 * turn), so the mutation gets past digest checks and reaches the parsers behind them.
 */
function readdress(files: TarFile[], index: number, depth = 0): void {
  const file = files[index]!;
  const match = HEX_NAME.exec(file.name);
  if (!match || depth > 4) return;
  const oldHex = match[1]!;
  const newHex = sha256Hex(Buffer.from(file.content ?? ''));
  if (oldHex === newHex) return;
  file.name = file.name.replace(oldHex, newHex);
  files.forEach((other, i) => {
    if (i === index || other.type !== 'file' || other.content === undefined) return;
    const text = Buffer.from(other.content).toString('utf8');
    if (!text.includes(oldHex)) return;
    other.content = text.replaceAll(oldHex, newHex);
    readdress(files, i, depth + 1);
  });
}

function applyEntryMutation(files: TarFile[], m: Mutation): TarFile[] {
  if (files.length === 0 && m.kind !== 'add') return files;
  const at = (i: number) => i % files.length;
  switch (m.kind) {
    case 'rename':
      files[at(m.entry)]!.name = resolveName(files, m.name);
      return files;
    case 'link': {
      const f = files[at(m.entry)]!;
      files[at(m.entry)] = { name: f.name, type: m.type, linkname: resolveName(files, m.target) };
      return files;
    }
    case 'drop':
      files.splice(at(m.entry), 1);
      return files;
    case 'duplicate': {
      const f = files[at(m.entry)]!;
      files.push({ ...f, ...(m.content ? { content: Buffer.from(m.content), type: 'file' as const } : {}) });
      return files;
    }
    case 'swap': {
      const [a, b] = [at(m.a), at(m.b)];
      [files[a], files[b]] = [files[b]!, files[a]!];
      return files;
    }
    case 'content':
      files[at(m.entry)] = { name: files[at(m.entry)]!.name, content: Buffer.from(m.content) };
      return files;
    case 'add':
      files.push({ name: resolveName(files, m.name), content: Buffer.from(m.content) });
      return files;
    case 'json': {
      // The m.entry-th entry that parses as JSON.
      const json = files
        .map((f, i) => ({ f, i }))
        .filter(
          ({ f }) =>
            f.type !== 'symlink' &&
            f.type !== 'link' &&
            f.content !== undefined &&
            /^\s*[{[]/.test(Buffer.from(f.content).subarray(0, 16).toString('latin1')),
        );
      if (json.length === 0) return files;
      const { f, i } = json[m.entry % json.length]!;
      let doc: unknown;
      try {
        doc = JSON.parse(Buffer.from(f.content!).toString('utf8'));
      } catch {
        return files;
      }
      const paths = jsonPaths(doc);
      const edited = setPath(doc, paths[m.path % paths.length]!, m.value, m.remove);
      f.content = edited === undefined ? '' : JSON.stringify(edited);
      if (m.readdress) readdress(files, i);
      return files;
    }
    default:
      return files;
  }
}

function applyByteMutation(bytes: Buffer, m: Mutation): Buffer {
  if (bytes.length === 0) return bytes;
  const entries = tarEntries(bytes);
  const headerAt = (i: number) => (entries.length ? entries[i % entries.length]!.headerOffset : 0);
  switch (m.kind) {
    case 'flip': {
      const copy = Buffer.from(bytes);
      copy[m.at % copy.length] = copy[m.at % copy.length]! ^ m.mask;
      return copy;
    }
    case 'flip-header': {
      const copy = Buffer.from(bytes);
      const pos = headerAt(m.entry) + m.offset;
      if (pos < copy.length) copy[pos] = copy[pos]! ^ m.mask;
      return copy;
    }
    case 'truncate':
      return bytes.subarray(0, m.at % bytes.length);
    case 'header-field': {
      const copy = Buffer.from(bytes);
      const offset = headerAt(m.entry);
      if (offset + BLOCK > copy.length) return copy;
      const [start, length] = HEADER_FIELDS[m.field];
      const value = Buffer.alloc(length);
      Buffer.from(m.bytes).copy(value, 0, 0, length);
      value.copy(copy, offset + start);
      if (m.fix && m.field !== 'checksum') fixChecksum(copy, offset);
      return copy;
    }
    default:
      return bytes;
  }
}

/** The seed with the mutations applied: entry-level ones (re-packing the tar) first, then byte-level ones. */
export async function applyMutations(seed: Buffer, mutations: Mutation[]): Promise<Buffer> {
  let bytes = seed;
  const entryLevel = mutations.filter((m) => !isByteLevel(m));
  if (entryLevel.length > 0) {
    let files = tarFiles(seed);
    for (const m of entryLevel) files = applyEntryMutation(files, m);
    try {
      bytes = await makeTar(files);
    } catch {
      bytes = seed; // a name tar-stream cannot encode: keep the seed for the byte-level mutations
    }
  }
  for (const m of mutations.filter(isByteLevel)) bytes = applyByteMutation(bytes, m);
  return bytes;
}
