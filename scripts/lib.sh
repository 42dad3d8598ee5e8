# Shared helpers for scripts/run and scripts/test (sourced, not executed).
# Everything lives under the git-ignored .local/ of the repository; nothing is installed by hand.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
PYMISP_VERSION="${PYMISP_VERSION:-2.5.34.4}"
PYTAXONOMIES_VERSION="${PYTAXONOMIES_VERSION:-2.1.2}"
PYMISPWARNINGLISTS_VERSION="${PYMISPWARNINGLISTS_VERSION:-1.7.0}"

log() { printf '\033[1m[cairn]\033[0m %s\n' "$*" >&2; }
die() { printf '[cairn] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return; }
  return 1
}

nats_bin() {
  for c in "${CAIRN_NATS_SERVER:-}" /usr/sbin/nats-server /usr/bin/nats-server "$(command -v nats-server 2>/dev/null)"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }
  done
  return 1
}

# Installs PostgreSQL and nats-server from the OS packages when missing.
ensure_packages() {
  local want=()
  pg_bindir >/dev/null || want+=(postgresql)
  nats_bin >/dev/null || want+=(nats-server)
  command -v curl >/dev/null || want+=(curl)
  # The C compiler links the binaries and builds mimalloc (ADR 0007).
  command -v cc >/dev/null || want+=(gcc libc6-dev)
  python3 -c 'import venv, ensurepip' 2>/dev/null || want+=(python3-venv)
  [ ${#want[@]} -eq 0 ] && return 0
  log "installing ${want[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q "${want[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q "${want[@]}" >/dev/null
  }
  pg_bindir >/dev/null || die "PostgreSQL binaries not found after installing"
  nats_bin >/dev/null || die "nats-server not found after installing"
}

# MISP reference data from the PyPI packages that ship it, unpacked into .local/data (never committed):
# pymisp (describeTypes.json, misp-objects templates), pytaxonomies (the misp-taxonomies) and
# pymispwarninglists (the misp-warninglists, among them the IANA TLD list freetext import uses).
ensure_data() {
  local data="$LOCAL/data"
  mkdir -p "$data/wheels"
  fetch_wheel_data pymisp "$PYMISP_VERSION" "pymisp/data/" "$data/pymisp"
  [ -f "$data/pymisp/describeTypes.json" ] || die "describeTypes.json missing from the pymisp wheel"
  fetch_wheel_data pytaxonomies "$PYTAXONOMIES_VERSION" "pytaxonomies/data/misp-taxonomies/" "$data/taxonomies"
  [ -f "$data/taxonomies/tlp/machinetag.json" ] || die "the tlp taxonomy is missing from the pytaxonomies wheel"
  fetch_wheel_data pymispwarninglists "$PYMISPWARNINGLISTS_VERSION" "pymispwarninglists/data/misp-warninglists/" "$data/warninglists"
  [ -f "$data/warninglists/lists/tlds/list.json" ] || die "the IANA TLD list is missing from the pymispwarninglists wheel"
}

# fetch_wheel_data PACKAGE VERSION PREFIX DEST: downloads the wheel from PyPI (once) and unpacks the
# files under PREFIX into DEST.
fetch_wheel_data() {
  local package="$1" version="$2" prefix="$3" dest="$4" stamp="$LOCAL/data/.$1-$2"
  [ -f "$stamp" ] && return 0
  log "fetching MISP reference data: $package $version (PyPI)"
  python3 -m pip download -q --no-deps --only-binary :all: "$package==$version" -d "$LOCAL/data/wheels" \
    || die "could not download $package from PyPI"
  python3 - "$LOCAL/data/wheels" "$package" "$version" "$prefix" "$dest" <<'PY'
import sys, zipfile, pathlib, shutil
wheels, package, version, prefix, dest = sys.argv[1:]
wheel = next(pathlib.Path(wheels).glob(f"{package}-{version}-*.whl"))
out = pathlib.Path(dest)
shutil.rmtree(out, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
  touch "$stamp"
}

# A Python venv under .local with the given pip requirements.
ensure_venv() { ensure_venv_in "$LOCAL/venv" "$@"; }

# ensure_venv_in DIR REQUIREMENT...: a Python venv in DIR with the given pip requirements (installed
# once per requirement set).
ensure_venv_in() {
  local venv="$1"; shift
  if [ ! -x "$venv/bin/python" ]; then
    log "creating Python venv in ${venv#"$ROOT"/}"
    python3 -m venv "$venv"
  fi
  local stamp="$venv/.req-$(printf '%s ' "$@" | sha256sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    log "installing $* into ${venv#"$ROOT"/}"
    "$venv/bin/pip" install -q "$@" || die "pip install failed"
    touch "$stamp"
  fi
  echo "$venv"
}

# misp-modules (MISP's enrichment server, from PyPI) in its own venv: its pymisp pin must not move
# the one the PyMISP tests use. dnspython is what its dns/reversedns modules need.
MISP_MODULES_VERSION="${MISP_MODULES_VERSION:-3.1.1}"
ensure_misp_modules() {
  ensure_venv_in "$LOCAL/venv-modules" "misp-modules==$MISP_MODULES_VERSION" "dnspython==2.9.2"
}

# misp_modules_start PORT PIDFILE LOGFILE: starts misp-modules on 127.0.0.1:PORT and waits for it.
misp_modules_start() {
  local port="$1" pidfile="$2" logfile="$3" venv
  venv=$(ensure_misp_modules)
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  "$venv/bin/misp-modules" -l 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  wait_started misp-modules "http://127.0.0.1:$port/healthcheck" "$pidfile" "$logfile" 600 0.1
}

# wait_started NAME URL PIDFILE LOGFILE TRIES PAUSE: waits until URL answers, dying (with the log's
# tail) if the process of PIDFILE exits first or TRIES pauses pass.
wait_started() {
  local name="$1" url="$2" pidfile="$3" logfile="$4" tries="$5" pause="$6"
  for _ in $(seq 1 "$tries"); do
    curl -sf "$url" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 20 "$logfile" >&2; die "$name exited (log: $logfile)"; }
    sleep "$pause"
  done
  die "$name did not answer at $url (log: $logfile)"
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# pg_start DATADIR PORT [fast]: initdb if needed, then start; as the postgres user when run as root.
pg_start() {
  local dir="$1" port="$2" fast="${3:-}" bin run=()
  bin=$(pg_bindir) || die "PostgreSQL is not installed"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "user postgres missing (install the postgresql package)"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    run=(runuser -u postgres --)
    # every parent must be traversable by postgres
    local p="$dir"; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale ${fast:+--no-sync} >/dev/null \
      || die "initdb failed in $dir"
  fi
  local opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300"
  if [ -n "$fast" ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  else
    # The platform's own server: PostgreSQL's defaults (128MB of buffers, a checkpoint every 1GB of
    # WAL) are sized for a small machine; bulk rebuilds and imports write GBs (docs/operations.md).
    opts="$opts -c shared_buffers=${CAIRN_PG_SHARED_BUFFERS:-1GB} -c max_wal_size=${CAIRN_PG_MAX_WAL_SIZE:-4GB}"
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 -o "$opts" start >/dev/null \
    || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start (log: $dir/server.log)"; }
}

pg_stop() {
  local dir="$1" bin run=()
  [ -f "$dir/postmaster.pid" ] || return 0
  bin=$(pg_bindir) || return 0
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

# nats_config CONFDIR STOREDIR CAIRNCTL: writes CONFDIR/nats.conf, the configuration nats-server runs
# with: nats/nats-server.conf with the JetStream store directory inside its `jetstream {` block
# (nats-server 2.9 refuses to reload a configuration whose store came from -sd, and feed credentials
# are issued by reloading), then nats/auth.conf, which includes CONFDIR/users.conf. The users file is
# created when missing (service user only) by the same code `cairnctl feed-credentials` writes it with.
nats_config() {
  local dir="$1" store="$2" cairnctl="$3"
  mkdir -p "$dir" "$store"
  case "$store" in *'"'*|*'|'*|*'\'*) die "the NATS store path may not contain \", | or \\: $store" ;; esac
  {
    echo "# Generated by scripts/run at every start from nats/nats-server.conf and nats/auth.conf: edit those."
    sed "s|^jetstream {|jetstream {\n  store_dir: \"$store\"|" "$ROOT/nats/nats-server.conf"
    cat "$ROOT/nats/auth.conf"
  } >"$dir/nats.conf.tmp"
  grep -q '^  store_dir: ' "$dir/nats.conf.tmp" || die "nats/nats-server.conf has no 'jetstream {' line"
  mv "$dir/nats.conf.tmp" "$dir/nats.conf"
  "$cairnctl" feed-credentials --init --users-file "$dir/users.conf" >/dev/null \
    || die "could not create the NATS users file $dir/users.conf"
}

# nats_start CONFIG PORT MONITORPORT PIDFILE LOGFILE (CONFIG from nats_config)
nats_start() {
  local conf="$1" port="$2" mport="$3" pidfile="$4" logfile="$5" bin
  bin=$(nats_bin) || die "nats-server is not installed"
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  "$bin" -c "$conf" -js -a 127.0.0.1 -p "$port" -m "$mport" >"$logfile" 2>&1 &
  echo $! >"$pidfile"
  wait_started nats-server "http://127.0.0.1:$mport/healthz" "$pidfile" "$logfile" 300 0.05
}

stop_pidfile() {
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# Builds the workspace binaries once (cargo is incremental; nothing is rebuilt when nothing changed).
build_bins() {
  local profile="$1"
  log "building ($profile)"
  if [ "$profile" = release ]; then
    (cd "$ROOT" && cargo build -q --release --workspace --bins) || die "build failed"
  else
    (cd "$ROOT" && cargo build -q --workspace --bins) || die "build failed"
  fi
}

wait_http() {
  local url="$1" tries="${2:-600}"
  for _ in $(seq 1 "$tries"); do curl -sf "$url" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
