#!/usr/bin/env bash
# Advisories (issue "Which vulnerable images run in this cluster", point 7):
#   1. `paved advisories import` of RECORDS OSV records from one zip dump
#      (streamed): wall time, peak RSS, index size;
#   2. matching an image of 2,000 Debian packages against that index, warm:
#      median time per image, and the peak RSS of the matching process, for
#      indexes of a tenth and of all the records (flat in the record count).
# Records are Go's real database (../shared/corpus/osv) repeated under new
# ids and module paths, and half Debian:12 records: one for each of
# pkg0..pkg3999 (the image has the even ones), the rest for other packages,
# so that a bigger index holds more records but the image matches the same.
# Release build; prints the figures.
#
#   bench/advisories.sh [RECORDS]      default 100000
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-100000}"
out=bench/out/advisories
rm -rf "$out" && mkdir -p "$out"
cargo build --release --quiet -p paved
cargo build --release --quiet -p paved-advisory --example bench_match
paved=target/release/paved
match=target/release/examples/bench_match

generate() { # COUNT ZIP
  python3 - "$1" "$2" <<'PY'
import json, os, sys, zipfile
count, path = int(sys.argv[1]), sys.argv[2]
go_dir = "../shared/corpus/osv/golang-vulndb/osv"
templates = [json.load(open(os.path.join(go_dir, f))) for f in sorted(os.listdir(go_dir)) if f.endswith(".json")]
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(count):
        if i % 2 == 0:
            r = {"id": f"BENCH-DEB-{i}", "modified": "2024-06-01T00:00:00Z", "aliases": [f"CVE-2024-{i}"],
                 "summary": "generated", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                 "affected": [{"package": {"ecosystem": "Debian:12", "name": f"pkg{i // 2}" if i // 2 < 4000 else f"other{i // 2}"},
                               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": f"1.{i % 50}-1"}]}]}]}
        else:
            r = dict(templates[i % len(templates)])
            r["id"] = f"BENCH-GO-{i}"
            suffix = f"/v{i // len(templates)}"
            r["affected"] = [dict(a, package=dict(a["package"], name=a["package"]["name"] + suffix)) for a in r.get("affected", [])]
        z.writestr(r["id"] + ".json", json.dumps(r))
PY
}

import() { # ZIP DIR
  /usr/bin/time -f "%e %M" -o "$out/time" "$paved" advisories import --advisories "$2" "$1" > "$out/import.log"
  read -r secs kib < "$out/time"
  echo "import $(basename "$1"): ${secs} s, peak RSS $((kib / 1024)) MiB, index $(( $(stat -c %s "$2/osv-index.bin") / 1024 / 1024 )) MiB ($(stat -c %s "$1" | awk '{printf "%.0f", $1/1048576}') MiB zip); $(cat "$out/import.log")"
}

match() { # DIR
  /usr/bin/time -f "%M" -o "$out/time" "$match" "$1" 2000
  echo "  matching peak RSS: $(( $(cat "$out/time") / 1024 )) MiB"
}

tenth=$((records / 10))
generate "$tenth" "$out/small.zip"
generate "$records" "$out/all.zip"
import "$out/small.zip" "$out/small"
match "$out/small"
import "$out/all.zip" "$out/all"
match "$out/all"
