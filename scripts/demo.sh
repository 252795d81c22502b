#!/usr/bin/env bash
# The main job on the repo's own fixtures, with no container engine: diff a base and a target
# archive, rebuild the target from the base plus the bundle, and check the rebuilt image's ID.
set -euo pipefail
cd "$(dirname "$0")/.."
ddiff() { dist/ddiff.mjs "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "+ ddiff diff fixtures/docker-base.tar fixtures/docker-app.tar -o app.ddiff"
ddiff diff fixtures/docker-base.tar fixtures/docker-app.tar -o "$work/app.ddiff"
echo "+ ddiff load app.ddiff --base fixtures/docker-base.tar -o app.tar"
ddiff load "$work/app.ddiff" --base fixtures/docker-base.tar -o "$work/app.tar"
echo "+ ddiff list app.tar"
ddiff list "$work/app.tar"

id_of() { ddiff list --json "$1" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).images[0].id))'; }
want=$(id_of fixtures/docker-app.tar)
got=$(id_of "$work/app.tar")
printf '\ntarget  %s\nrebuilt %s\n' "$want" "$got"
if [ "$want" = "$got" ]; then echo "OK: same image ID (bundle $(stat -c %s "$work/app.ddiff") bytes, target archive $(stat -c %s fixtures/docker-app.tar) bytes)"; else echo "MISMATCH"; exit 1; fi
