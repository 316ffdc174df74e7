#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# usage-report: an empty ledger is an empty table (exit 0); bad flags exit 2;
# on a ledger seeded through Store::settle, totals, grouped rows and quotas
# equal an independent SQL query over the same store (sqlite3 or psql: a
# plain GROUP BY over the ledger table).
# store-backends: sqlite postgresql
source "$(dirname "$0")/common.sh"

# ---- empty ledger: fresh home, every format --------------------------------
expect_exit 0 "$CG" usage-report
for header in REQUESTS INPUT OUTPUT CACHE-READ CACHE-WRITE TOTAL; do
  expect_contains "$OUT" "$header"
done
grep -q '^TOTAL' <<<"$OUT" && fail "empty ledger shows a TOTAL line: $OUT"
[ "$(tail -n 1 <<<"$OUT")" = "$(grep REQUESTS <<<"$OUT")" ] || fail "rows after the header: $OUT"
expect_exit 0 "$CG" usage-report --by sub,day
[ "$(tail -n 1 <<<"$OUT")" = "$(grep REQUESTS <<<"$OUT")" ] || fail "rows after the header: $OUT"
expect_exit 0 "$CG" usage-report --format json --by sub
[ "$(json_get "$OUT" 'd["rows"] == [] and d["totals"]["requests"] == 0 and d["group_by"] == ["sub"]')" = True ] \
  || fail "empty JSON: $OUT"
expect_exit 0 "$CG" usage-report --format csv --by day
[ "$OUT" = "$(printf 'day,requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,total_tokens\r')" ] \
  || fail "empty CSV: $OUT"

# ---- usage errors --------------------------------------------------------------
expect_exit 2 "$CG" usage-report --by user
expect_contains "$ERR" 'unknown grouping key "user"'
expect_contains "$ERR" "sub, day or model"
expect_exit 2 "$CG" usage-report --by sub,day,sub
expect_contains "$ERR" "twice"
expect_exit 2 "$CG" usage-report --format yaml
expect_contains "$ERR" "table, json or csv"
expect_exit 2 "$CG" usage-report --since yesterday
expect_exit 2 "$CG" usage-report --since 2026-01-02 --until 2026-01-01
expect_contains "$ERR" "not before --until"
expect_exit 2 "$CG" usage-report --chart --format csv
expect_contains "$ERR" "--chart"

# ---- a seeded ledger -----------------------------------------------------------
SEED=${CLAUDEGATE_SEED_TOOL:-$(dirname "$CG")/../../bench/bench_report}
if [ ! -x "$SEED" ]; then
  echo "SKIPPED: seeding needs bench_report (cmake --build BUILD --target bench_report)"
  exit 77
fi
if [ "$STORE_BACKEND" = sqlite ]; then
  export CLAUDEGATE_DB=$SCRATCH/ledger.db
else
  CLAUDEGATE_DB=$(pg_new_database) # empty, as the SQLite file is
  export CLAUDEGATE_DB
fi
rows=5000
"$SEED" --seed-store "$CLAUDEGATE_DB" "$rows" 2>/dev/null

# SQL $1 over the seeded store, read-only, as CSV without a header.
# The dialects differ in a few functions: the UTC day of `at` and the larger of two.
if [ "$STORE_BACKEND" = sqlite ]; then
  sql() { sqlite3 -init /dev/null -batch -readonly -noheader -csv "$CLAUDEGATE_DB" "$1"; }
  day="date(at, 'unixepoch')"
  greatest=max
else
  sql() { PGOPTIONS='-c default_transaction_read_only=on' psql -Xq --csv -t -v ON_ERROR_STOP=1 "$CLAUDEGATE_DB" -c "$1"; }
  day="to_char(to_timestamp(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
  greatest=greatest
fi
tokens="input_tokens + output_tokens + cache_read_tokens + cache_write_tokens"
sums="COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), \
COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM($tokens), 0)"
report_totals='",".join(str(d["totals"][k]) for k in ("requests", "input_tokens", "output_tokens",
  "cache_read_tokens", "cache_write_tokens", "total_tokens"))'

now=$(date +%s)
today=$((now - now % 86400))
rfc3339() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# Totals of usage-report "$@" (JSON) must equal the ledger's sums WHERE $1.
check_totals() {
  local where=$1; shift
  expect_exit 0 "$CG" usage-report --format json "$@"
  local mine theirs
  mine=$(json_get "$OUT" "$report_totals")
  theirs=$(sql "SELECT $sums FROM usage_ledger WHERE $where")
  [ "$mine" = "$theirs" ] || fail "totals of usage-report $*: $mine, SQL: $theirs"
}

check_totals "at >= 0" --since 0 --until $((now + 86400))
[ "$(json_get "$OUT" 'd["totals"]["requests"]')" = "$rows" ] || fail "not every seeded row counted: $OUT"
check_totals "at >= $today AND at < $((today + 86400))"
check_totals "at >= $((today - 10 * 86400)) AND at < $today" --since $((today - 10 * 86400)) --until "$today"
since=$((now - 12 * 86400 + 777)) until=$((now - 3 * 86400 - 4321))
check_totals "at >= $since AND at < $until" --since "$(rfc3339 $since)" --until "$(rfc3339 $until)"
check_totals "at >= $((today - 5 * 86400)) AND at < $until AND subject = 'user-007'" \
  --since "$(date -u -d "@$((today - 5 * 86400))" +%Y-%m-%d)" --until "$until" --sub user-007 --by day
check_totals "at >= $since AND at < $now AND model = 'claude-haiku-4'" \
  --since "$since" --until "$now" --model claude-haiku-4 --by sub,model
check_totals "at >= 0 AND subject = 'nobody'" --since 0 --sub nobody

# Grouped rows, CSV against CSV: whole days (rollup) plus partial days (ledger).
# Usage: check_rows BY SQL-KEYS
check_rows() {
  expect_exit 0 "$CG" usage-report --format csv --since "$since" --until "$until" --by "$1"
  local keys mine theirs
  keys=$(($(tr -cd , <<<"$1" | wc -c) + 1))
  # The keys and the six counters; quota columns are checked below.
  mine=$(tail -n +2 <<<"$OUT" | tr -d '\r' | cut -d, -f1-$((keys + 6)))
  theirs=$(sql "SELECT $2, $sums FROM usage_ledger WHERE at >= $since AND at < $until \
    GROUP BY $2 ORDER BY $2" | tr -d '\r')
  [ -n "$mine" ] || fail "no rows for --by $1"
  [ "$mine" = "$theirs" ] || fail "rows of --by $1 differ from SQL:
$(diff <(echo "$mine") <(echo "$theirs") | head -n 20)"
}
check_rows sub "subject"
check_rows day "$day"
check_rows model,sub "model, subject"
check_rows sub,day,model "subject, $day, model"

# Today's limit (from each subject's latest request) and remaining quota.
expect_exit 0 "$CG" usage-report --format csv --since 0 --until $((now + 86400)) --by sub
mine=$(tail -n +2 <<<"$OUT" | tr -d '\r' | cut -d, -f1,8,9)
theirs=$(sql "WITH s AS (SELECT DISTINCT subject FROM usage_ledger), q AS (SELECT subject,
  (SELECT quota_limit FROM usage_ledger l WHERE l.subject = s.subject ORDER BY at DESC, id DESC LIMIT 1) AS lim,
  (SELECT COALESCE(SUM($tokens), 0) FROM usage_ledger l WHERE l.subject = s.subject
     AND at >= $today AND at < $((today + 86400))) AS used FROM s)
  SELECT subject, lim, CASE WHEN lim IS NOT NULL THEN $greatest(0, lim - used) END
  FROM q ORDER BY subject" | tr -d '\r')
[ "$mine" = "$theirs" ] || fail "quotas differ from SQL:
$(diff <(echo "$mine") <(echo "$theirs") | head -n 20)"
grep -q ',,$' <<<"$mine" || fail "expected unlimited subjects (empty limit) in: $mine"

# Table: a TOTAL line with thousands separators; unlimited subjects show ∞.
expect_exit 0 "$CG" usage-report --since 0 --by sub
total=$("$PY" -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$(sql "SELECT SUM($tokens) FROM usage_ledger")")
grep -q "^TOTAL .* $total\$" <<<"$OUT" || fail "TOTAL line without $total: $(grep '^TOTAL' <<<"$OUT")"
expect_contains "$OUT" "∞"
expect_contains "$OUT" "LEFT TODAY"

# Chart: one bar per row, lines fit $COLUMNS.
for columns in 80 50; do
  COLUMNS=$columns expect_exit 0 "$CG" usage-report --since "$since" --until "$until" --by sub,day --chart
  expect_contains "$OUT" "█"
  widest=$("$PY" -c 'import sys; print(max(len(l) for l in sys.stdin.read().splitlines()))' <<<"$OUT")
  [ "$widest" -le "$columns" ] || fail "chart line of $widest columns at COLUMNS=$columns"
done
groups=$(sql "SELECT COUNT(*) FROM (SELECT 1 FROM usage_ledger WHERE at >= $since AND at < $until \
  GROUP BY subject, $day) AS g")
[ "$(grep -c '█\|▏\|▎\|▍\|▌\|▋\|▊\|▉' <<<"$OUT")" = "$groups" ] || fail "expected $groups bars"
pass
