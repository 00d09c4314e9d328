#!/usr/bin/env python3
"""Posts each review once and checks the verdict its file name promises.

usage: check_verdicts.py PORT DIR
Prints the counts by verdict; exits 1 on any mismatch.
"""
import collections
import http.client
import json
import os
import ssl
import sys

port, directory = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
counts = collections.Counter()
bad = 0
for name in sorted(os.listdir(directory)):
    want = name.rsplit("-", 1)[1].removesuffix(".json")
    with open(os.path.join(directory, name), "rb") as f:
        conn.request("POST", "/validate", f.read(), {"Content-Type": "application/json"})
    response = json.loads(conn.getresponse().read())["response"]
    got = "denied" if not response["allowed"] else "warned" if response.get("warnings") else "allowed"
    counts[got] += 1
    if got != want:
        bad += 1
        print(f"{name}: expected {want}, got {got}: {response}", file=sys.stderr)
print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
sys.exit(1 if bad else 0)
