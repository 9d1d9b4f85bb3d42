#!/usr/bin/env bash
# Demo: prepares the machine (integration/setup.sh), minifies the nginx fixture and shows the
# image sizes before and after. Run as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/integration/setup.sh" --demo

echo
echo "=== before"
docker image ls 'minify-fixture/nginx*'

echo
echo "=== cargo run --release -- build minify-fixture/nginx:1"
t0=$SECONDS
cargo run --release -- build minify-fixture/nginx:1
echo "minify took $((SECONDS - t0)) s"

echo
echo "=== after"
docker image ls 'minify-fixture/nginx*'

# compare the answers of the original and of every minified nginx image found
for img in $(docker image ls --format '{{.Repository}}:{{.Tag}}' 'minify-fixture/nginx*'); do
    [[ "$img" == minify-fixture/nginx:1 ]] && continue
    echo
    echo "=== answers: minify-fixture/nginx:1 vs $img (integration/requests/nginx.txt)"
    "$ROOT/integration/check.sh" nginx minify-fixture/nginx:1 "$img" || true
done
