// Bundles the CLI into one file, dist/ddiff.mjs, the package's `ddiff`. Loaded module by module
// (about 100 of ddiff's own and 25 of its dependencies), `ddiff load` spent ~105 ms of its
// start-up resolving and loading them; as one file, ~15 ms. tsc's dist/src stays what the unit
// tests import. The hashbang of src/cli.ts (with its Node options) is kept as the first line.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const outfile = 'dist/ddiff.mjs';
await build({
  entryPoints: ['src/cli.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  outfile,
  // The CommonJS dependencies (commander, tar-stream) require Node's built-in modules.
  banner: { js: "import { createRequire as ddiffCreateRequire } from 'node:module';\nconst require = ddiffCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
