#!/usr/bin/env bash
# Builds the Data Refinery images in dependency order (base first), from
# the repository root as build context, and pushes them when REGISTRY is set.
#
#   REGISTRY   registry/namespace to tag and push to, for example
#              123456789012.dkr.ecr.us-east-1.amazonaws.com
#              (empty: build local images only, named refinery-<image>)
#   TAG        image tag (default: the short git commit, "-dirty" if the
#              work tree has changes; "dev" outside git)
#   PUSH       1 to push, 0 not to (default: 1 when REGISTRY is set)
#   IMAGES     images to build after base, space-separated
#              (default: "downloaders transcriptome foreman")
#
# Images: <REGISTRY>/refinery-<image>:<TAG>.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${TAG:-}" ]; then
  if TAG="$(git rev-parse --short HEAD 2>/dev/null)"; then
    if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
      TAG="${TAG}-dirty"
    fi
  else
    TAG="dev"
  fi
fi
REGISTRY="${REGISTRY:-}"
REGISTRY="${REGISTRY%/}"
if [ -n "$REGISTRY" ]; then
  PUSH="${PUSH:-1}"
  prefix="${REGISTRY}/refinery-"
else
  PUSH="${PUSH:-0}"
  prefix="refinery-"
fi
IMAGES="${IMAGES:-downloaders transcriptome foreman}"

image() {
  printf '%s%s:%s' "$prefix" "$1" "$TAG"
}

built=()

echo "==> building $(image base)"
docker build --file docker/base/Dockerfile --tag "$(image base)" \
  ${REFINERY_EXTRAS:+--build-arg "REFINERY_EXTRAS=${REFINERY_EXTRAS}"} .
built+=("$(image base)")

for name in $IMAGES; do
  if [ ! -f "docker/${name}/Dockerfile" ]; then
    echo "build.sh: no docker/${name}/Dockerfile" >&2
    exit 2
  fi
  echo "==> building $(image "$name")"
  docker build --file "docker/${name}/Dockerfile" \
    --build-arg "BASE_IMAGE=$(image base)" \
    --tag "$(image "$name")" .
  built+=("$(image "$name")")
done

if [ "$PUSH" = "1" ]; then
  if [ -z "$REGISTRY" ]; then
    echo "build.sh: PUSH=1 needs REGISTRY" >&2
    exit 2
  fi
  for ref in "${built[@]}"; do
    echo "==> pushing ${ref}"
    docker push "$ref"
  done
fi

printf 'built:\n'
printf '  %s\n' "${built[@]}"
