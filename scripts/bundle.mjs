// Bundles the CLI, the package's `ddiff`: dist/ddiff.mjs, src/cli.ts as it is (the hashbang with
// its Node options, Node's compile cache enabled, then the CLI imported), and dist/ddiff-main.mjs,
// everything else as one file. Loaded module by module (about 100 of ddiff's own and 25 of its
// dependencies), `ddiff load` spent ~105 ms of its start-up resolving and loading them; as one
// file, ~15 ms. Imported by the launcher, the bundle is in the compile cache too (a file enables
// the cache only for what it loads after), and its whitespace and syntax are minified (names are
// kept: they are in error classes and stack traces): `ddiff --help` took 162 ms, now 145 ms
// (`node -e 0`: 84 ms). tsc's dist/src stays what the unit tests import.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { build, transform } from 'esbuild';

const main = 'ddiff-main.mjs';
await build({
  entryPoints: ['src/program.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  outfile: `dist/${main}`,
  minifyWhitespace: true,
  minifySyntax: true,
  // The CommonJS dependencies (commander, tar-stream) require Node's built-in modules.
  banner: { js: "import { createRequire as ddiffCreateRequire } from 'node:module';\nconst require = ddiffCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

const { code } = await transform(readFileSync('src/cli.ts', 'utf8'), { loader: 'ts', format: 'esm', target: 'node22' });
const launcher = code.replace(/(["'])\.\/program\.js\1/, `'./${main}'`);
if (launcher === code || !launcher.startsWith('#!')) throw new Error('src/cli.ts: no hashbang, or no import of ./program.js to point at the bundle');
writeFileSync('dist/ddiff.mjs', launcher);
chmodSync('dist/ddiff.mjs', 0o755);
