#!/usr/bin/env python3
"""Latency of `paved lsp`: from a change to the diagnostics for it.

usage: bench/lsp.py [LINES] [EDITS]     default 2000 50

Opens a multi-document manifest of about LINES lines (bench/gen_manifests.py
objects), then makes EDITS incremental changes, each after the server's
debounce interval has passed (as a user pausing between keystrokes), and
measures the time from sending didChange to receiving publishDiagnostics for
that version. Prints the median, p95 and max, and the diagnostics count.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

lines_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
edits = int(sys.argv[2]) if len(sys.argv) > 2 else 50
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "paved")
subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, os.path.join(root, "bench", "gen_manifests.py"), "200", tmp, "200"],
                   check=True, stdout=subprocess.DEVNULL)
    text = open(os.path.join(tmp, sorted(os.listdir(tmp))[0])).read()
    text = "\n".join(text.split("\n")[:lines_wanted])
    # Cut at the last document boundary so every document is whole.
    text = text[: text.rfind("\n---")] + "\n"
    path = os.path.join(tmp, "big.yaml")
    open(path, "w").write(text)
    uri = "file://" + path
    proc = subprocess.Popen([binary, "lsp"], cwd=tmp, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def send(msg):
        body = json.dumps(msg).encode()
        proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        proc.stdin.flush()

    def recv():
        length = 0
        while True:
            line = proc.stdout.readline().decode().strip()
            if not line:
                break
            if line.startswith("Content-Length:"):
                length = int(line.split(":")[1])
        return json.loads(proc.stdout.read(length))

    def wait_diagnostics(version):
        while True:
            m = recv()
            if m.get("method") == "textDocument/publishDiagnostics" and m["params"].get("version") == version:
                return m["params"]["diagnostics"]

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    recv()
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    t0 = time.perf_counter()
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
          "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}})
    first = wait_diagnostics(1)
    open_ms = (time.perf_counter() - t0) * 1e3
    # Edit: flip the replica count on line 7 (0-based 6) back and forth.
    lines = text.split("\n")
    target = next(i for i, l in enumerate(lines) if l.strip().startswith("replicas:"))
    col = lines[target].index(":") + 2
    old = lines[target][col:]
    times = []
    for n in range(edits):
        time.sleep(0.12)  # past the debounce interval, like a pause in typing
        new = str(2 + n % 3)
        change = {"range": {"start": {"line": target, "character": col},
                            "end": {"line": target, "character": col + len(old)}}, "text": new}
        old = new
        t = time.perf_counter()
        send({"jsonrpc": "2.0", "method": "textDocument/didChange",
              "params": {"textDocument": {"uri": uri, "version": n + 2}, "contentChanges": [change]}})
        diags = wait_diagnostics(n + 2)
        times.append((time.perf_counter() - t) * 1e3)
    send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
    recv()
    send({"jsonrpc": "2.0", "method": "exit", "params": None})
    proc.wait(timeout=10)
    times.sort()
    print(f"{len(text.splitlines())} lines, {text.count(chr(10) + '---') + 1} documents, {len(first)} diagnostics")
    print(f"open: {open_ms:.1f} ms to first diagnostics")
    print(f"change -> diagnostics over {edits} edits: median {statistics.median(times):.1f} ms, "
          f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms, max {times[-1]:.1f} ms")
