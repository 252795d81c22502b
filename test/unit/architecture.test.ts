// The shape of src/: no import cycles, small modules (a longer one says why at its top), and
// no export that nothing imports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers/cli.js';

const srcDir = join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const files = sourceFiles(srcDir);
const text = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));

/** Relative imports of a module (type-only imports included: they are coupling too), as file paths. */
function importsOf(file: string): string[] {
  const found = [...text.get(file)!.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'|import\('(\.{1,2}\/[^']+)'\)/g)];
  return found.map((m) => resolve(dirname(file), (m[1] ?? m[2])!.replace(/\.js$/, '.ts')));
}

test('src/ has no import cycle', () => {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((i) => text.has(i))]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(srcDir, f)).join(' → '));
      return;
    }
    state.set(file, 'open');
    for (const next of graph.get(file)!) visit(next, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});

test('src/ modules stay under ~200 lines, or say at their top why not', () => {
  const long = files.filter((f) => {
    const lines = text.get(f)!.split('\n');
    return lines.length > 220 && !/Longer than most modules because/.test(lines.slice(0, 15).join('\n'));
  });
  assert.deepEqual(
    long.map((f) => relative(srcDir, f)),
    [],
  );
});

test('every export of src/ is imported somewhere (src, test or bench)', () => {
  const everything = [
    ...text.values(),
    ...['test', 'bench'].flatMap((d) => sourceFiles(join(repoRoot, d)).map((f) => readFileSync(f, 'utf8'))),
  ].join('\n');
  const dead: string[] = [];
  for (const [file, body] of text) {
    for (const m of body.matchAll(/^export (?:async )?(?:function|const|class|interface|type|abstract class) (\w+)/gm)) {
      const name = m[1]!;
      const uses = everything.match(new RegExp(`\\b${name}\\b`, 'g'))?.length ?? 0;
      const ownUses = body.match(new RegExp(`\\b${name}\\b`, 'g'))?.length ?? 0;
      if (uses - ownUses === 0) dead.push(`${relative(srcDir, file)}: ${name}`);
    }
  }
  assert.deepEqual(dead, []);
});

test('node:http and node:https are reached through util/node-http.ts, never imported as values', () => {
  // An ES import of either loads undici on every command's start-up (see that module).
  const offenders = files.filter((f) => /^import\s+(?!type\b)[^;]*from\s+'node:https?'/m.test(text.get(f)!));
  assert.deepEqual(
    offenders.map((f) => relative(srcDir, f)),
    [],
  );
});
