#!/usr/bin/env bash
# Fetches the third-party test corpora at the upstream commits paved's tests
# were written against, in the layout the tests read (see
# ../shared/corpus/README.md), for a clone of paved made anywhere else.
#
#   scripts/fetch-corpus.sh [DEST]     # DEST defaults to $PAVED_CORPUS, else ../shared/corpus
#
# Then run the tests with PAVED_CORPUS=DEST (not needed for the default).
# Needs git and network. Nothing in the corpora is edited; each keeps its
# upstream LICENSE. An existing DEST/<corpus> is left as it is.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${PAVED_CORPUS:-$here/../shared/corpus}}
github=${PAVED_CORPUS_GIT:-https://github.com}

# name | repository | commit | what to copy (upstream path -> corpus path), space separated
PINS=$(cat <<'PINS'
pod-security|kubernetes/pod-security-admission|8f84a87|test/testdata/baseline->baseline test/testdata/restricted->restricted LICENSE->LICENSE
gatekeeper-library|open-policy-agent/gatekeeper-library|5c441fb|library/general->general library/pod-security-policy->pod-security-policy LICENSE->LICENSE
k8s-api|kubernetes/api|10b39a3|testdata/HEAD->HEAD LICENSE->LICENSE
kyverno-policies|kyverno/policies|b9c4317|*-cel *-vpol *-mpol LICENSE->LICENSE
osv/golang-vulndb|golang/vulndb|a752ea5|data/osv->osv LICENSE->LICENSE
osv/pypa-advisory-database|pypa/advisory-database|3ccb612|vulns->vulns LICENSE->LICENSE
PINS
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

while IFS='|' read -r name repo commit copies; do
  if [ -e "$dest/$name" ]; then
    echo "$dest/$name: already there, left as it is"
    continue
  fi
  echo "$name: $repo @ $commit"
  src="$work/$(basename "$repo")"
  # A blobless clone: the history to find the short commit, blobs only for the checkout.
  git clone --quiet --filter=blob:none --no-checkout "$github/$repo.git" "$src"
  git -C "$src" checkout --quiet "$commit"
  out="$work/out/$name"
  mkdir -p "$out"
  for copy in $copies; do
    case "$copy" in
      *'->'*)
        from=${copy%%->*} to=${copy##*->}
        mkdir -p "$(dirname "$out/$to")"
        cp -R "$src/$from" "$out/$to"
        ;;
      *)
        # A glob of top-level folders (Kyverno's CEL categories).
        (cd "$src" && for d in $copy; do [ -d "$d" ] && cp -R "$d" "$out/"; done) || true
        ;;
    esac
  done
  mkdir -p "$(dirname "$dest/$name")"
  # Moved into place whole, so an interrupted fetch leaves no half corpus.
  mv "$out" "$dest/$name"
  rm -rf "$src"
done <<< "$PINS"

echo "corpora in $dest"
[ "$dest" = "$here/../shared/corpus" ] || echo "run the tests with PAVED_CORPUS=$dest"
