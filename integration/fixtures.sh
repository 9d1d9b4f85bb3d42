#!/usr/bin/env bash
# Builds the fixture images minify is tested and benchmarked on. Every image is built from
# nothing on this machine (no registry needed): a debootstrap'ed Debian base, then classic
# `docker build`s FROM it. An image is only (re)built when it is missing or its sources changed.
#
# usage: integration/fixtures.sh [--big] [--rebuild] [--only NAME[,NAME...]]
#   --big      also build minify-fixture/big:1 (>= 700 MB, for benchmarks)
#   --rebuild  rebuild the fixture images even if present (the base image is kept)
#   --only     build only these fixtures (and the base), e.g. --only nginx for the demo
# env: MINIFY_DEBIAN_MIRROR (default http://deb.debian.org/debian)
# The flask and express fixtures also fetch their pinned packages on the host: PyPI wheels with
# `python3 -m pip download`, the npm tree with `npm ci` (and git makes the flask app's .git).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FIX="$HERE/fixtures"
MIRROR="${MINIFY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
BASE=minify-fixture/base:bookworm
BASE_REV=2   # bump when the way the base is made changes: forces a rebuild of everything
export DOCKER_BUILDKIT=0   # the classic builder works offline from a local base image

BIG=0
REBUILD=0
ONLY=""
want_only=0
for arg in "$@"; do
    if ((want_only)); then ONLY=",$arg,"; want_only=0; continue; fi
    case "$arg" in
        --big) BIG=1 ;;
        --rebuild) REBUILD=1 ;;
        --only) want_only=1 ;;
        --only=*) ONLY=",${arg#--only=}," ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "fixtures.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[fixtures] %s\n' "$*" >&2; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

TMPDIRS=()
cleanup() {
    local d
    for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
        # a debootstrap'ed tree may still have /proc etc. mounted if debootstrap was interrupted
        if [[ -d "$d/rootfs" ]]; then
            for m in proc sys dev/pts dev; do
                if mountpoint -q "$d/rootfs/$m" 2>/dev/null; then umount -l "$d/rootfs/$m" || true; fi
            done
        fi
        rm -rf --one-file-system "$d"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_tmp() { # VAR: sets VAR to a new temporary directory, removed on exit
    local d
    d="$(mktemp -d "${TMPDIR:-/var/tmp}/minify-fixture.XXXXXX")"
    TMPDIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# Content hash of a build context (file names, modes and contents), stored as a label so that a
# changed fixture source triggers a rebuild.
context_hash() {
    (docker image inspect -f '{{.Id}}' "$BASE" && cd "$1" && find . -type f -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum && find . -printf '%p %m\n' | LC_ALL=C sort) | sha256sum | cut -c1-16
}

up_to_date() { # NAME HASH
    [[ $REBUILD == 0 ]] || return 1
    have_image "$1" || return 1
    local h
    h="$(docker image inspect -f '{{index .Config.Labels "minify-fixture.source"}}' "$1" 2>/dev/null || true)"
    [[ "$h" == "$2" ]]
}

declare -A SECONDS_TAKEN=()
OLD_IDS=()   # images a rebuild untagged; removed at the end if nothing else uses them

remember_old() {
    local id
    id="$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)"
    [[ -n "$id" ]] && OLD_IDS+=("$id")
    return 0
}

remove_old() {
    local i id
    for ((i = ${#OLD_IDS[@]} - 1; i >= 0; i--)); do
        id="${OLD_IDS[$i]}"
        if [[ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" == 0 ]]; then
            if docker image rm "$id" >/dev/null 2>&1; then log "removed superseded image ${id:7:12}"; fi
        fi
    done
}

build_base() {
    local rev
    rev="$(docker image inspect -f '{{index .Config.Labels "minify-fixture.source"}}' "$BASE" 2>/dev/null || true)"
    if [[ "$rev" == "base-$BASE_REV" ]]; then
        log "$BASE: present"
        return
    fi
    command -v debootstrap >/dev/null || { log "debootstrap missing (run integration/setup.sh)"; exit 1; }
    local t0=$SECONDS tmp
    new_tmp tmp
    remember_old "$BASE"
    log "$BASE: debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
        tail -n 30 "$tmp/debootstrap.log" >&2
        log "debootstrap failed"
        exit 1
    }
    # drop caches debootstrap leaves behind; keep the image deterministic in content
    rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/cache/apt/*.bin \
        "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/log/* "$tmp"/rootfs/tmp/* \
        "$tmp"/rootfs/debootstrap
    printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$tmp/rootfs/etc/apt/sources.list"
    # like Docker's official debian images: no package caches left in image layers
    cat >"$tmp/rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    printf 'Acquire::Languages "none";\n' >"$tmp/rootfs/etc/apt/apt.conf.d/docker-no-languages"
    log "$BASE: docker import"
    tar --numeric-owner -C "$tmp/rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --change "LABEL minify-fixture.source=base-$BASE_REV" \
        --message "debootstrap --variant=minbase $SUITE" - "$BASE" >/dev/null
    SECONDS_TAKEN[$BASE]=$((SECONDS - t0))
    log "$BASE: built in ${SECONDS_TAKEN[$BASE]} s"
}

# docker_build NAME CONTEXT_DIR [DOCKERFILE [HASH]] (HASH: of the sources, when the context
# also holds fetched dependencies)
docker_build() {
    local name="$1" ctx="$2" dockerfile="${3:-}" h="${4:-}" t0=$SECONDS
    [[ -n "$h" ]] || h="$(context_hash "$ctx")"
    if up_to_date "$name" "$h"; then
        log "$name: present"
        return
    fi
    remember_old "$name"
    log "$name: docker build (context $ctx)"
    local args=(build --label "minify-fixture.source=$h" -t "$name")
    [[ -n "$dockerfile" ]] && args+=(-f "$dockerfile")
    local out
    new_tmp out
    out="$out/build.log"
    if ! docker "${args[@]}" "$ctx" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        log "$name: docker build failed"
        exit 1
    fi
    SECONDS_TAKEN[$name]=$((SECONDS - t0))
    log "$name: built in ${SECONDS_TAKEN[$name]} s"
}

build_static() {
    local ctx
    new_tmp ctx
    cp "$FIX/static/Dockerfile" "$ctx/"
    gcc -static -O2 -s -Wall -Wextra -Werror -o "$ctx/server" "$FIX/static/server.c"
    docker_build minify-fixture/static:1 "$ctx"
}

# A small git repository in an app tree, as `COPY . /app` of a checkout brings along: never
# runtime, so the slim image must neither need nor keep it. Fixed identity and dates; the
# fixture's up-to-date hash covers its sources, not these bytes.
make_git_dir() { # DIR
    command -v git >/dev/null || { log "git missing (run integration/setup.sh)"; exit 1; }
    (
        export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
            GIT_AUTHOR_NAME=fixture GIT_AUTHOR_EMAIL=fixture@minify.invalid \
            GIT_COMMITTER_NAME=fixture GIT_COMMITTER_EMAIL=fixture@minify.invalid \
            GIT_AUTHOR_DATE=2024-01-01T00:00:00Z GIT_COMMITTER_DATE=2024-01-01T00:00:00Z
        cd "$1" && git init -q -b main && git add -A && git commit -q -m "fixture app"
    ) || { log "git init in $1 failed"; exit 1; }
}

# Flask from PyPI: the pinned wheels of requirements.txt are fetched here on the host (the base
# image has no CA bundle for PyPI's https), then installed offline into the image's venv. The image is
# up to date when the sources (requirements.txt included) are: the wheels follow from them.
# flaskpkg is the same with the app packaged (built from its source by `pip install` offline).
build_pip_fixture() { # FIXTURE
    local fixture=$1 name="minify-fixture/$1:1" h ctx t0=$SECONDS
    h="$(context_hash "$FIX/$fixture")"
    if up_to_date "$name" "$h"; then log "$name: present"; return; fi
    new_tmp ctx
    cp -r "$FIX/$fixture/." "$ctx/"
    log "$name: pip download -r requirements.txt (wheels for CPython 3.11, manylinux2014_x86_64)"
    python3 -m pip download -q --disable-pip-version-check --no-cache-dir --only-binary=:all: \
        --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
        -r "$ctx/requirements.txt" -d "$ctx/wheels" \
        || { log "pip download failed (needs python3 -m pip and PyPI)"; exit 1; }
    [[ -d "$ctx/app" ]] && make_git_dir "$ctx/app"
    docker_build "$name" "$ctx" "" "$h"
    SECONDS_TAKEN[$name]=$((SECONDS - t0))   # with the download
}

# Express from npm: the locked tree (app/package-lock.json) is installed here on the host with
# `npm ci`; the image has Debian's nodejs and no npm. Up to date as for flask.
build_express() {
    local name=minify-fixture/express:1 h ctx t0=$SECONDS
    h="$(context_hash "$FIX/express")"
    if up_to_date "$name" "$h"; then log "$name: present"; return; fi
    command -v npm >/dev/null || { log "npm missing: the express fixture is installed with the host's npm"; exit 1; }
    new_tmp ctx
    cp -r "$FIX/express/." "$ctx/"
    log "$name: npm ci (app/package-lock.json)"
    (cd "$ctx/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
        || { log "npm ci failed (needs npm and the npm registry)"; exit 1; }
    mv "$ctx/app/node_modules" "$ctx/node_modules"
    docker_build "$name" "$ctx" "" "$h"
    SECONDS_TAKEN[$name]=$((SECONDS - t0))   # with the install
}

# The compose app is FROM the python fixture: its hash includes that image's id, so a rebuilt
# python fixture rebuilds it.
build_compose_app() {
    local h
    h="$( (context_hash "$FIX/compose"; docker image inspect -f '{{.Id}}' minify-fixture/python:1) | sha256sum | cut -c1-16)"
    docker_build minify-fixture/compose-app:1 "$FIX/compose" "" "$h"
}

wanted() { [[ -z "$ONLY" || "$ONLY" == *",$1,"* ]]; }

build_base
IMAGES=(minify-fixture/base:bookworm)
for f in nginx python apispec static redis cgi flask flaskpkg express php sinatra compose-app; do
    wanted "$f" || continue
    case $f in
        static) build_static ;;
        compose-app) build_compose_app ;;
        flask | flaskpkg) build_pip_fixture "$f" ;;
        express) build_express ;;
        *) docker_build "minify-fixture/$f:1" "$FIX/$f" ;;
    esac
    IMAGES+=("minify-fixture/$f:1")
done
if [[ $BIG == 1 ]]; then
    # same context as nginx (site + config), a different Dockerfile
    new_tmp ctx
    cp -r "$FIX/nginx/site" "$FIX/nginx/default.conf" "$ctx/"
    cp "$FIX/big/Dockerfile" "$ctx/"
    docker_build minify-fixture/big:1 "$ctx"
    IMAGES+=(minify-fixture/big:1)
fi

remove_old

printf '%-32s %10s %8s\n' IMAGE SIZE_MB BUILD_S
for img in "${IMAGES[@]}"; do
    size="$(docker image inspect -f '{{.Size}}' "$img")"
    printf '%-32s %10.1f %8s\n' "$img" "$(awk -v s="$size" 'BEGIN { print s / 1000000 }')" "${SECONDS_TAKEN[$img]:--}"
done
