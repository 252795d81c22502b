#!/usr/bin/env bash
# The floors of the real image pairs, measured by hand (no ddiff): to sanity-check the bench and
# make-images.sh's reference figures on a quiet machine.
#
#   DOCKER_HOST=unix:///... bench/real-floors.sh [WORKDIR] [small|large|both] [RUNS]
#
# WORKDIR (default ../data/real-images next to the repo) holds archives/ as npm run bench saves
# them. Prints, per pair and step, each run's wall time and the median. Removes and reloads the
# target image in Docker (the base stays); leaves it loaded.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${1:-$HERE/../../data/real-images}
WHICH=${2:-both}
RUNS=${3:-3}
A=$W/archives
T=$(mktemp -d "${TMPDIR:-/tmp}/ddiff-floors-XXXXXX")
trap 'rm -rf "$T"' EXIT

wall() { # wall LABEL CMD...: runs CMD RUNS times, prints each wall time and the median
  local label=$1 i t times=()
  shift
  for ((i = 0; i < RUNS; i++)); do
    [ -z "${BEFORE:-}" ] || eval "$BEFORE"
    local s=$(date +%s.%N)
    eval "$@"
    t=$(echo "$(date +%s.%N) - $s" | bc)
    times+=("$t")
  done
  printf '%-48s %s  median %s\n' "$label" "$(printf '%6.2f ' "${times[@]}")" \
    "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p" | xargs printf '%.2f')"
}

pair() { # pair NAME BASE TARGET
  local name=$1 base=$2 target=$3 bt=$A/${2//:/_}.tar tt=$A/${3//:/_}.tar d=$T/$1
  mkdir -p "$d/new"
  local nbase
  nbase=$(docker image inspect --format '{{len .RootFS.Layers}}' "$base")
  mapfile -t layers < <(tar -xOf "$tt" manifest.json | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)[0]["Layers"]))')
  local excl=() l
  for l in "${layers[@]:0:nbase}"; do excl+=("--exclude=${l%%/*}"); done
  tar -xf "$tt" -C "$d/new" "${excl[@]}"
  (cd "$d/new" && tar -cf ../new-only.tar ./*)
  local files=()
  for l in "${layers[@]:nbase}"; do files+=("$d/new/$l"); done
  echo "== $name: $base -> $target; new layers $(cat "${files[@]}" | wc -c) bytes of tar; target archive $(stat -c %s "$tt") bytes"
  echo "gzip -6 size $(gzip -6 -c "${files[@]}" | wc -c); zstd -3 size $(zstd -3 -T0 -q -c "${files[@]}" | wc -c)"
  wall "zstd -3 -T0 of the new layers" 'zstd -3 -T0 -q -c "${files[@]}" >/dev/null'
  wall "gzip -6 of the new layers" 'gzip -6 -c "${files[@]}" >/dev/null'
  wall "docker save target >/dev/null" 'docker save "$target" >/dev/null'
  BEFORE='docker rmi "$target" >/dev/null 2>&1 || true'
  wall "docker load of the new layers only" 'docker load -q -i "$d/new-only.tar" >/dev/null'
  wall "docker load of the full target" 'docker load -q -i "$tt" >/dev/null'
  BEFORE='rm -f "$d/copy.tar"'
  wall "cp of the target archive" 'cp "$tt" "$d/copy.tar"'
  BEFORE=''
  rm -rf "$d"
}

case $WHICH in small | both) pair small bench-base:bookworm bench-target-small:v1 ;; esac
case $WHICH in large | both) pair large bench-base-large:bookworm bench-target-large:v1 ;; esac
