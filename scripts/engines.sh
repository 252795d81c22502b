#!/usr/bin/env bash
# Private container engines for ddiff's tests and fixtures.
#
#   eval "$(scripts/engines.sh start)"   # start (or reuse) a private dockerd and containerd, print exports
#   scripts/engines.sh stop              # stop the dockerd (and containerd) named in our own pidfiles
#   scripts/engines.sh status            # exit 0 when our dockerd is alive and answering (containerd reported)
#
# Everything lives under DIR = ${DDIFF_ENGINE_DIR:-/tmp/ddiff-engines}:
#   data/ exec/ dockerd.pid docker.sock dockerd.log [storage.conf podman/]
#   containerd/{root,state} containerd.toml containerd.pid containerd.sock containerd.log
# Only the exports go to stdout; progress and errors go to stderr.
#
# Docker: Debian's docker.io (20.10), classic store, vfs driver, no iptables, no bridge,
# listening on a private unix socket; it never touches /var/lib/docker or /run/docker.sock.
# Podman: uses the machine's default storage (/var/lib/containers, overlay) when that works.
# If it does not (e.g. overlay unsupported in a sandbox), a private vfs store under DIR is set
# up and `export CONTAINERS_STORAGE_CONF=...` is printed too. DDIFF_PODMAN_VFS=1 forces that.
# containerd (when installed): its own root, state, socket and config under DIR (CRI plugin
# off, so it needs no CNI); `export CONTAINERD_ADDRESS=...` is printed for `ctr` and ddiff.
set -euo pipefail

DIR="${DDIFF_ENGINE_DIR:-/tmp/ddiff-engines}"
PIDFILE="$DIR/dockerd.pid"
SOCK="$DIR/docker.sock"
LOG="$DIR/dockerd.log"
START_TIMEOUT="${DDIFF_ENGINE_START_TIMEOUT:-60}"
STOP_TIMEOUT="${DDIFF_ENGINE_STOP_TIMEOUT:-30}"

CPIDFILE="$DIR/containerd.pid"
CSOCK="$DIR/containerd.sock"
CLOG="$DIR/containerd.log"
CCONF="$DIR/containerd.toml"

log() { printf 'engines.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prefer the docker CLI that ships with the daemon (Debian's docker.io puts it in /usr/bin);
# a newer client elsewhere on PATH also works (it negotiates the API version down).
docker_cli() {
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

# Alive and not a zombie (a daemon reparented to a PID 1 that reaps slowly stays a zombie).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# PID from pidfile $1 if that process is alive and its command is $2; empty otherwise.
pid_from() {
  [ -s "$1" ] || return 0
  local pid
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] || return 0
  if alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
    echo "$pid"
  fi
}

# Our dockerd's PID, if it is alive.
our_pid() { pid_from "$PIDFILE" dockerd; }

docker_answers() {
  DOCKER_HOST="unix://$SOCK" timeout 10 "$(docker_cli)" version --format '{{.Server.Version}}' \
    >/dev/null 2>&1
}

wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  until docker_answers; do
    if ! alive "$pid"; then
      log "dockerd (pid $pid) exited during startup; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "dockerd (pid $pid) did not answer on $SOCK within ${START_TIMEOUT}s; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

start_docker() {
  command -v dockerd >/dev/null || die "dockerd not found (apt-get install -y docker.io)"
  mkdir -p "$DIR/data" "$DIR/exec"
  local pid
  pid="$(our_pid)"
  if [ -n "$pid" ]; then
    log "dockerd already running (pid $pid)"
    wait_ready "$pid"
    return 0
  fi
  rm -f "$PIDFILE" "$SOCK"
  # A dockerd killed hard leaves its managed containerd's pidfile; dockerd would take a live
  # unrelated process with that PID for containerd and never connect. Keep it only if it is one.
  local cpidf="$DIR/exec/containerd/containerd.pid" cpid
  if [ -s "$cpidf" ]; then
    cpid="$(tr -dc '0-9' <"$cpidf")"
    if [ -z "$cpid" ] || ! alive "$cpid" || [ "$(cat "/proc/$cpid/comm" 2>/dev/null)" != containerd ]; then
      rm -f "$cpidf"
    fi
  fi
  log "starting dockerd (log: $LOG)"
  # setsid: own session, so the daemon outlives the caller's shell/job control.
  setsid dockerd \
    --iptables=false --bridge=none --storage-driver=vfs \
    --data-root "$DIR/data" --exec-root "$DIR/exec" \
    --pidfile "$PIDFILE" --host "unix://$SOCK" \
    </dev/null >>"$LOG" 2>&1 &
  pid=$!
  wait_ready "$pid"
  log "dockerd ready (pid $pid, server $(DOCKER_HOST="unix://$SOCK" "$(docker_cli)" version --format '{{.Server.Version}}'))"
}

# Prints nothing when podman's default storage works; otherwise prints the export for a
# private vfs store under DIR.
setup_podman() {
  if ! command -v podman >/dev/null; then
    log "warning: podman not found (apt-get install -y podman); skipping podman setup"
    return 0
  fi
  local conf="$DIR/storage.conf"
  if [ "${DDIFF_PODMAN_VFS:-0}" != 1 ] && [ -z "${CONTAINERS_STORAGE_CONF:-}" ] &&
    podman info --format '{{.Store.GraphDriverName}}' >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$DIR/podman/root" "$DIR/podman/run"
  cat >"$conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$DIR/podman/root"
runroot = "$DIR/podman/run"
EOF
  if ! CONTAINERS_STORAGE_CONF="$conf" podman info --format '{{.Store.GraphDriverName}}' >/dev/null 2>&1; then
    CONTAINERS_STORAGE_CONF="$conf" podman info >&2 || true
    die "podman does not work, neither with default storage nor with vfs ($conf)"
  fi
  log "podman: using private vfs storage ($conf)"
  echo "export CONTAINERS_STORAGE_CONF=$conf"
}

# Our containerd's PID, if it is alive.
our_containerd_pid() { pid_from "$CPIDFILE" containerd; }

containerd_answers() {
  timeout 10 ctr --address "$CSOCK" version >/dev/null 2>&1
}

# Prints the export for a private containerd; nothing (and a warning) when it is not installed.
start_containerd() {
  if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    log "warning: containerd not found (apt-get install -y containerd); skipping containerd"
    return 0
  fi
  local pid
  pid="$(our_containerd_pid)"
  if [ -z "$pid" ]; then
    mkdir -p "$DIR/containerd/root" "$DIR/containerd/state"
    rm -f "$CPIDFILE" "$CSOCK"
    printf '%s\n' 'version = 2' "root = \"$DIR/containerd/root\"" "state = \"$DIR/containerd/state\"" \
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "  address = \"$CSOCK\"" \
      '[ttrpc]' "  address = \"$CSOCK.ttrpc\"" >"$CCONF"
    log "starting containerd (log: $CLOG)"
    setsid containerd --config "$CCONF" </dev/null >>"$CLOG" 2>&1 &
    pid=$!
    echo "$pid" >"$CPIDFILE"
  else
    log "containerd already running (pid $pid)"
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until containerd_answers; do
    if ! alive "$pid" || [ "$SECONDS" -ge "$deadline" ]; then
      log "containerd (pid $pid) did not answer on $CSOCK; last lines of $CLOG:"
      tail -n 30 "$CLOG" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "containerd ready (pid $pid)"
  echo "export CONTAINERD_ADDRESS=$CSOCK"
}

stop_containerd() {
  local pid
  pid="$(our_containerd_pid)"
  rm -f "$CPIDFILE"
  [ -n "$pid" ] || return 0
  log "stopping containerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  log "containerd stopped"
}

cmd_start() {
  start_docker
  local podman_exports
  podman_exports="$(setup_podman)"
  local containerd_exports
  containerd_exports="$(start_containerd)"
  echo "export DOCKER_HOST=unix://$SOCK"
  [ -z "$podman_exports" ] || echo "$podman_exports"
  [ -z "$containerd_exports" ] || echo "$containerd_exports"
}

# dockerd bind-mounts its data root onto itself (to make it a private mount) and undoes that on a
# clean exit; a hard kill leaves the mount behind. Only ever touches $DIR/data.
unmount_leftovers() {
  local n=0
  while mountpoint -q "$DIR/data" 2>/dev/null && [ "$n" -lt 10 ]; do
    umount "$DIR/data" 2>/dev/null || umount -l "$DIR/data" 2>/dev/null || true
    n=$((n + 1))
  done
}

cmd_stop() {
  stop_containerd
  local pid
  pid="$(our_pid)"
  if [ -z "$pid" ]; then
    log "no dockerd of ours running (pidfile $PIDFILE)"
    rm -f "$PIDFILE"
    unmount_leftovers
    return 0
  fi
  log "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "dockerd (pid $pid) still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDFILE"
  unmount_leftovers
  log "dockerd stopped"
}

cmd_status() {
  local pid cpid
  cpid="$(our_containerd_pid)"
  if [ -n "$cpid" ] && containerd_answers; then
    log "containerd running (pid $cpid) on $CSOCK"
  else
    log "containerd not running (pidfile $CPIDFILE)"
  fi
  pid="$(our_pid)"
  if [ -n "$pid" ] && docker_answers; then
    log "dockerd running (pid $pid) on unix://$SOCK"
    return 0
  fi
  log "dockerd not running (pidfile $PIDFILE)"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status   (DIR=\${DDIFF_ENGINE_DIR:-/tmp/ddiff-engines})" >&2
    exit 2
    ;;
esac
