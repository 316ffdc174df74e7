# SPDX-License-Identifier: Apache-2.0
"""Collect the benchmarks' RESULT lines into docs/PERFORMANCE.md (driven by scripts/bench.sh).

  summarize.py OUT --command CMD --date DATE --load LOAD --wall SECONDS
               [--methods FILE] [--notes FILE] PIECE...

Each PIECE is NAME:KIND:EXIT:FILE, the captured output of one benchmark (KIND md: its tables are
markdown; text: shown in a code block) and its exit status. A benchmark reports a target with

  RESULT <id> <figure> <unit> "<measured>" "<reference>"

(shell-quoted). The goals live here, once, in TARGETS: each names what is measured, the reference
it is measured against and the goal it must meet (numbered by area: 1 verify, 2 verify --batch,
3 issue, 4 proxy throughput and latency, 5 streams, 6 store, 7 cold start; then 16.N, the targets
table of issue #16, some reading the same RESULT as an older row with the issue's goal; its
targets 7 and 8 are tests, not rows; then 17.N, issue #17's benchmarks of replicas on PostgreSQL,
whose other targets are tests). A target with no
RESULT line, or whose benchmark exited non-zero, is "failed" (a target without a numeric goal whose
benchmark succeeded but printed nothing is "not measured"). Exits 1 when a row failed.
"""
import argparse
import os
import platform
import shlex
import subprocess
import sys

# (id, target, piece that measures it, goal operator, goal, unit); operator None: reported, no goal.
TARGETS = [
    ("verify.RS256", "1. verify RS256-2048, in process, revocation off", "bench_jose", ">=", 90, "%"),
    ("verify.ES256", "1. verify ES256, in process, revocation off", "bench_jose", ">=", 95, "%"),
    ("verify.EdDSA", "1. verify EdDSA, in process, revocation off", "bench_jose", ">=", 95, "%"),
    ("verify.revocation", "1. verify RS256, revocation on (SQLite, 100 000 revoked jtis)", "bench_jose", ">=",
     75, "%"),
    ("verify.cached", "1. verify RS256, cached (VerifiedCache), revocation on", "bench_jose", ">=", 75, "%"),
    ("batch.RS256", "2. `verify --batch --no-revocation`, 100 000 RS256 tokens, per core", "batch", ">=", 80,
     "%"),
] + [(f"issue.{alg}", f"3. issue {alg}", "bench_jose", ">=", 90, "%")
     for alg in ("HS256", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")] + [
    ("proxy.rps.32", "4. serve-local throughput / nginx proxy_pass, 32 connections", "proxy", ">=", 50, "%"),
    ("proxy.p99.32", "4. serve-local p99 − nginx p99, 32 connections", "proxy", "<=", 1, "ms"),
    ("proxy.rps.64", "4. serve-local throughput / nginx proxy_pass, 64 connections", "proxy", ">=", 50, "%"),
    ("proxy.p99.64", "4. serve-local p99 − nginx p99, 64 connections", "proxy", "<=", 1, "ms"),
    ("streams.completed", "5. concurrent streams that complete", "streams", ">=", 1000, "streams"),
    ("streams.first_event", "5. slowest first event (upstream send → client read)", "streams", "<=", 50, "ms"),
    ("streams.rss", "5. serve-local peak RSS during the streams", "streams", "<", 256, "MiB"),
    ("streams.short_p99", "5. short requests' p99 beside the streams − alone", "streams", "<=", 1, "ms"),
    ("store.report", "6. usage-report over 1 000 000 ledger rows (worst listed form)", "usage_report", "<",
     300, "ms"),
    ("store.prune", "6. `revoke --prune` over 1 000 000 rows", "prune", "<", 2000, "ms"),
    ("store.sqlite_share", "6. share of serve-local CPU time in SQLite", "proxy", None, None, "%"),
    ("coldstart", "7. `claudegate verify TOKEN` process / `openssl version` process", "cold_start", "<=", 2,
     "×"),
] + [row for conns in (32, 64) for row in (
    (f"proxy.rps.{conns}", f"16.1 throughput through serve-local / nginx `proxy_pass`, {conns} connections, every "
     "request verified, quota-checked and metered", "proxy", ">=", 50, "%"),
    (f"proxy.p99.{conns}", f"16.2 p99 through serve-local − nginx's p99, {conns} connections", "proxy", "<=", 1,
     "ms"),
    (f"proxy.cpu.{conns}", f"16.3 server CPU per request / nginx's, {conns} connections", "proxy", "<=", 2.5, "×"),
)] + [
    ("streams.completed", "16.4 9 000 concurrent streams (20 events 1 s apart), default settings: complete",
     "streams", ">=", 9000, "streams"),
    ("streams.first_event_p99", "16.4 9 000 concurrent streams: first-event p99 (upstream send → client read)",
     "streams", "<=", 50, "ms"),
    ("streams.rss", "16.4 9 000 concurrent streams: serve-local peak RSS", "streams", "<", 512, "MiB"),
    ("streams.short_p99", "16.5 short requests' p99 beside those streams − alone", "streams", "<=", 5, "ms"),
    ("idle.p99", "16.6 wrk p99 through serve-local beside 10 000 idle connections − without", "idle", "<=", 2,
     "ms"),
    ("idle.held", "16.6 idle connections (no token, a partial request head each) held while wrk ran", "idle",
     ">=", 10000, "connections"),
    ("idle.healthz", "16.6 `/healthz` probes answered while the idle connections are held", "idle", ">=", 100,
     "%"),
    ("replicas.rps.32", "17.1 throughput of 2 serve-local on one PostgreSQL / 1 serve-local on SQLite, 32 "
     "connections, every request verified, quota-leased and metered", "replicas", ">=", 80, "%"),
    ("replicas.report", "17.2 `usage-report` over 1 000 000 ledger rows on PostgreSQL (worst listed form)",
     "replicas", "<", 500, "ms"),
]

OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
SHOWN_OPS = {">=": "≥", "<=": "≤", "<": "<"}


def read_results(pieces):
    """{id: (figure, unit, measured, reference)} from every piece's RESULT lines."""
    results = {}
    for piece in pieces:
        for line in piece["lines"]:
            if line.startswith("RESULT "):
                ident, figure, unit, measured, reference = shlex.split(line)[1:6]
                results[ident] = (float(figure), unit, measured, reference)
    return results


def row(target, results, exits):
    """The table row for `target` and whether it failed."""
    ident, text, piece, op, goal, unit = target
    goal_text = f"{SHOWN_OPS[op]} {goal:g} {unit}" if op else "(reported, no numeric goal)"
    exited = exits.get(piece)
    if ident not in results:
        why = "not run" if exited is None else f"exited {exited}" if exited else "printed no result"
        if not op and exited == 0:
            return [text, "-", "-", "-", goal_text, "not measured"], False
        return [text, "-", "-", "-", goal_text, f"failed ({piece} {why})"], True
    figure, _, measured, reference = results[ident]
    verdict = "reported" if not op else "met" if OPS[op](figure, goal) else "not met"
    if exited:
        verdict = f"failed ({piece} exited {exited})"
    return [text, reference, measured, f"{figure:g} {unit}", goal_text, verdict], bool(exited)


def machine(load):
    model = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores, {model}; kernel {platform.release()} ({platform.machine()}); {ssl}; "
            f"load average at start {load}")


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
    return "\n".join(lines)


def details(piece):
    body = "\n".join(line for line in piece["lines"] if not line.startswith("RESULT ")).strip()
    status = "" if piece["exit"] == 0 else f" (exited {piece['exit']})"
    block = "(no output)" if not body else body if piece["kind"] == "md" else f"```\n{body}\n```"
    return f"### {piece['name']}{status}\n\n{block}\n"


def parse_piece(spec):
    name, kind, code, path = spec.split(":", 3)
    lines = open(path, errors="replace").read().splitlines() if os.path.exists(path) else []
    return {"name": name, "kind": kind, "exit": int(code), "lines": lines}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--command", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--load", required=True)
    parser.add_argument("--wall", required=True)
    parser.add_argument("--methods")
    parser.add_argument("--notes")
    parser.add_argument("pieces", nargs="*")
    args = parser.parse_intermixed_args()
    pieces = [parse_piece(spec) for spec in args.pieces]
    results = read_results(pieces)
    exits = {p["name"]: p["exit"] for p in pieces}
    rows = [row(t, results, exits) for t in TARGETS]
    out = ["# Performance against the targets", "",
           "Generated by `scripts/bench.sh`; every ratio is against a reference measured in the same run.", "",
           f"- machine: {machine(args.load)}", f"- command: `{args.command}`", f"- date (UTC): {args.date}",
           f"- wall time of the run: {args.wall} s", "", "## Targets", "",
           markdown_table(["target", "reference", "measured", "ratio / figure", "goal", "result"],
                          [r for r, _ in rows]), ""]
    for extra in (args.methods, args.notes):  # hand-written: how rows are measured, why some are not met
        if extra and os.path.exists(extra):
            out += [open(extra).read().strip(), ""]
    out += ["## Details", ""] + [details(p) for p in pieces]
    with open(args.out, "w") as f:
        f.write("\n".join(out))
    print(markdown_table(["target", "reference", "measured", "ratio / figure", "goal", "result"],
                         [r for r, _ in rows]))
    return 1 if any(failed for _, failed in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
