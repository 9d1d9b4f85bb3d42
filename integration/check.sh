#!/usr/bin/env bash
# Runs a fixture image (or a minified version of it) and fetches every path of
# integration/requests/<fixture>.txt, printing one line per request: STATUS SHA256(BODY) PATH.
# With two images, runs both and diffs the answers (exit 1 on any difference).
#
# usage: integration/check.sh FIXTURE [IMAGE [IMAGE2]]
#   FIXTURE  nginx | python | static | flask | express | php | sinatra | big (big uses nginx.txt)
#   IMAGE    default minify-fixture/FIXTURE:1
# Containers get unique names and are always removed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixture="${1:?usage: $0 FIXTURE [IMAGE [IMAGE2]]}"
image="${2:-minify-fixture/$fixture:1}"
image2="${3:-}"
reqs="$HERE/requests/${fixture/big/nginx}.txt"
[[ -f "$reqs" ]] || { echo "no request list $reqs" >&2; exit 2; }

CONTAINERS=()
cleanup() {
    local c
    for c in "${CONTAINERS[@]+"${CONTAINERS[@]}"}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# answers IMAGE: prints STATUS SHA PATH for every request
answers() {
    local img="$1" name port hostport path code body tries
    name="minify-check-$fixture-$$-$RANDOM"
    CONTAINERS+=("$name")
    docker run -d -P --name "$name" "$img" >/dev/null
    port="$(docker image inspect -f '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}' "$img" | awk '{print $1}')"
    [[ -n "$port" ]] || { echo "$img exposes no port" >&2; return 1; }
    hostport=""
    for ((tries = 0; tries < 100; tries++)); do
        hostport="$(docker port "$name" "$port" 2>/dev/null | grep -m1 -E '^(0\.0\.0\.0|127\.0\.0\.1):' | sed 's/.*://' || true)"
        if [[ -n "$hostport" ]] && curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$hostport/"; then
            break
        fi
        if [[ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]]; then
            echo "$img: container exited; logs:" >&2
            docker logs "$name" 2>&1 | tail -n 20 >&2
            return 1
        fi
        sleep 0.2
    done
    ((tries < 100)) || { echo "$img: no answer on port $port after 20 s" >&2; docker logs "$name" 2>&1 | tail -n 20 >&2; return 1; }
    body="$(mktemp)"
    while IFS= read -r path || [[ -n "$path" ]]; do
        path="${path#"${path%%[![:space:]]*}"}"
        [[ -z "$path" || "$path" == \#* ]] && continue
        code="$(curl -s -o "$body" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$hostport$path" || true)"
        printf '%s %s %s\n' "$code" "$(sha256sum <"$body" | cut -c1-16)" "$path"
    done <"$reqs"
    rm -f "$body"
    docker rm -f "$name" >/dev/null
}

if [[ -z "$image2" ]]; then
    out="$(answers "$image")"
    printf '%s\n' "$out"
    # every request must get an HTTP answer (000 = no answer)
    if grep -q '^000 ' <<<"$out"; then
        echo "$image: some requests got no answer" >&2
        exit 1
    fi
else
    a="$(answers "$image")"
    b="$(answers "$image2")"
    if diff <(printf '%s\n' "$a") <(printf '%s\n' "$b"); then
        echo "same answers: $image and $image2 ($(wc -l <<<"$a") requests)"
    else
        echo "answers differ: < $image  > $image2" >&2
        exit 1
    fi
fi
