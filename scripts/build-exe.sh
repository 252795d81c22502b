#!/usr/bin/env bash
# Builds ddiff-linux-<arch>: one file holding Node and ddiff (Node's single executable
# application), to copy to a host that has no Node. Usage: scripts/build-exe.sh [OUTPUT]
#
# esbuild bundles the ESM sources (from program.ts: cli.ts only enables the compile cache, with a
# top-level await CommonJS cannot hold) into one CommonJS file (a SEA runs one CommonJS script and can
# require only Node's built-in modules); node --experimental-sea-config turns it into a blob;
# postject injects the blob into a copy of this node binary.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-ddiff-linux-$(node -p process.arch)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npx --no-install esbuild src/program.ts --bundle --platform=node --format=cjs --target=node22 \
  --outfile="$work/ddiff.cjs" --log-level=warning
# Node options the CLI's shebang gives (`#!/usr/bin/env -S node --opt …`) go into the executable too.
exec_argv="$(head -1 src/cli.ts | node -e '
  const line = require("fs").readFileSync(0, "utf8");
  const options = line.replace(/^#!.*?\bnode\b/, "").trim().split(/\s+/).filter(Boolean);
  console.log(JSON.stringify(options));')"
cat >"$work/sea-config.json" <<JSON
{ "main": "$work/ddiff.cjs", "output": "$work/ddiff.blob", "disableExperimentalSEAWarning": true,
  "useCodeCache": true, "execArgv": $exec_argv }
JSON
node --experimental-sea-config "$work/sea-config.json" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
cp "$(command -v node)" "$work/ddiff"
chmod u+w "$work/ddiff"
# postject warns about ELF note sections it does not name; its log is shown only if it fails.
npx --no-install postject "$work/ddiff" NODE_SEA_BLOB "$work/ddiff.blob" \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
mv "$work/ddiff" "$out"
echo "$out"
