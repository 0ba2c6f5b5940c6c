"""The scorer benchmark's baseline: DuckDB doing the bare classification of a run's reminders
over its journal files, as a competent analyst would write it.

`python -m bench.score_duckdb <journal_dir>` prints one JSON object: owed, unsettled, the
outcome counts, duplicates, unmatched, cancelled, opted_out, continuity. It reads every
`*.jsonl` file once with `read_ndjson` and explicit columns (the raw requests and the scenario
are never materialised), correlates each send to its reminder by client reference, else by the
`ref` of the scenario's body pattern, and applies harness/judging.py's rules to what the
synthetic journal holds: early, wrong recipient (by national number), on time or late by
`send_by` (SMS), filtered, unreachable; the first correct copy in the inbox decides; cancelled
(repaid) and opted-out (STOP, or opted out when scheduled) reminders are not owed unless
delivered first; settled when decided or its window closed before the run ended. It leaves out
what the scorer also does (content checks, phone changes, other channels, compliance, faults,
timing figures, the series): it is the floor any scorer of the same files has to beat, not a
second scorer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

# harness/judging.py's EARLY_SLACK and harness/truth.py's CHANGE_GRACE, copied (a test says they
# agree): importing the harness would add its start-up (pydantic and all) to DuckDB's time.
EARLY_SLACK = 0.05
CHANGE_GRACE = 1.0

_COLUMNS = ("{kind: 'VARCHAR', t: 'DOUBLE', reminder_id: 'VARCHAR', ref: 'VARCHAR', "
            "phone: 'VARCHAR', opted_out: 'BOOLEAN', remind_at: 'DOUBLE', send_by: 'DOUBLE', "
            "change: 'VARCHAR', channel: 'VARCHAR', \"to\": 'VARCHAR', body: 'VARCHAR', "
            "client_ref: 'VARCHAR', handset: 'VARCHAR', inbox_at: 'DOUBLE'}")

_QUERIES = """
CREATE TEMP TABLE ev AS
SELECT kind, t, reminder_id, ref, right(regexp_replace(phone, '[^0-9]', '', 'g'), 11) AS phone,
       opted_out, remind_at, send_by, change, channel,
       right(regexp_replace("to", '[^0-9]', '', 'g'), 11) AS number, "to" AS address,
       client_ref, regexp_extract(body, $pattern, 1) AS body_ref, handset, inbox_at
FROM read_ndjson($files, columns = {columns}, format = 'newline_delimited')
WHERE kind IN ('reminder.scheduled', 'send.recorded', 'reminder.changed',
               'borrower.opted_out', 'run.ended');

CREATE TEMP TABLE r AS
SELECT reminder_id, ref, phone, opted_out, remind_at, send_by
FROM ev WHERE kind = 'reminder.scheduled';

CREATE TEMP TABLE s AS
SELECT coalesce(r1.reminder_id, r2.reminder_id) AS rid, e.t, e.number, e.channel, e.handset,
       e.inbox_at, e.handset IN ('delivered', 'spam') AS arrived
FROM (SELECT * FROM ev WHERE kind = 'send.recorded') e
LEFT JOIN r r1 ON r1.ref = e.client_ref
LEFT JOIN r r2 ON r2.ref = nullif(e.body_ref, '');

CREATE TEMP TABLE copies AS
SELECT s.rid, s.t, s.inbox_at, s.channel, s.arrived,
       CASE WHEN s.t < r.remind_at - {early} THEN 'early'
            WHEN s.number <> r.phone THEN 'wrong_recipient'
            WHEN s.handset = 'delivered' AND s.inbox_at <= r.send_by THEN 'on_time'
            WHEN s.handset = 'delivered' THEN 'late'
            WHEN s.handset = 'spam' THEN 'filtered'
            WHEN s.handset = 'absent' THEN 'unreachable'
            ELSE 'dropped' END AS verdict
FROM s JOIN r ON s.rid = r.reminder_id;

CREATE TEMP TABLE judged AS
WITH per AS (
    SELECT rid,
           arg_min(verdict, inbox_at) FILTER (verdict IN ('on_time', 'late')) AS decided,
           arg_min(t, inbox_at) FILTER (verdict IN ('on_time', 'late')) AS first_correct,
           bool_or(verdict = 'wrong_recipient') AS wrong,
           bool_or(verdict = 'filtered') AS filtered,
           bool_or(verdict = 'early') AS early,
           bool_or(verdict = 'unreachable') AS unreachable
    FROM copies GROUP BY rid),
repaid AS (
    SELECT reminder_id, min(t) AS at FROM ev
    WHERE kind = 'reminder.changed' AND change = 'repaid' GROUP BY reminder_id),
stop AS (
    SELECT phone, min(t) AS at FROM ev WHERE kind = 'borrower.opted_out' GROUP BY phone),
run_end AS (
    SELECT coalesce(min(t) FILTER (kind = 'run.ended'), max(t)) AS at FROM ev)
SELECT r.reminder_id,
       coalesce(per.decided,
                CASE WHEN per.wrong THEN 'wrong_recipient' WHEN per.filtered THEN 'filtered'
                     WHEN per.early THEN 'early' WHEN per.unreachable THEN 'unreachable'
                     ELSE 'missed' END) AS outcome,
       repaid.at IS NOT NULL AND repaid.at < r.send_by
           AND coalesce(per.first_correct, 'infinity'::DOUBLE) >= repaid.at + {grace}
           AS cancelled,
       r.opted_out OR coalesce(stop.at + {grace} <= least(
           r.send_by, coalesce(per.first_correct, 'infinity'::DOUBLE)), false) AS opted_out,
       per.decided IS NOT NULL OR r.send_by <= run_end.at AS decided_or_closed
FROM r
LEFT JOIN per ON per.rid = r.reminder_id
LEFT JOIN repaid ON repaid.reminder_id = r.reminder_id
LEFT JOIN stop ON stop.phone = r.phone
CROSS JOIN run_end;
"""

_COUNTS = """
SELECT
    (SELECT count(*) FILTER (NOT cancelled AND NOT opted_out
                             AND decided_or_closed) FROM judged) AS owed,
    (SELECT count(*) FILTER (NOT cancelled AND NOT opted_out
                             AND NOT decided_or_closed) FROM judged) AS unsettled,
    (SELECT count(*) FILTER (cancelled) FROM judged) AS cancelled,
    (SELECT count(DISTINCT phone) FROM ev WHERE kind = 'borrower.opted_out') AS opted_out,
    (SELECT coalesce(sum(n - 1), 0)::BIGINT FROM (
        SELECT count(*) AS n FROM copies WHERE arrived GROUP BY rid, channel)) AS duplicates,
    (SELECT count(*) FROM s WHERE rid IS NULL AND arrived) AS unmatched
"""

_OUTCOMES = """
SELECT outcome, count(*) FROM judged
WHERE NOT cancelled AND NOT opted_out AND decided_or_closed
GROUP BY outcome
"""

OUTCOMES = ("on_time", "late", "missed", "early", "filtered", "unreachable", "wrong_content",
            "wrong_recipient")


def classify(journal_dir: Path) -> dict[str, object]:
    """The bare classification of the run whose journal is `journal_dir`."""
    files = sorted(str(path) for path in journal_dir.glob("*.jsonl"))
    pattern = _body_pattern(journal_dir / "harness.jsonl")
    with duckdb.connect() as db:
        for statement in _QUERIES.format(columns=_COLUMNS, early=EARLY_SLACK,
                                         grace=CHANGE_GRACE).split(";"):
            if statement.strip():
                params = {name: value for name, value in
                          (("files", files), ("pattern", pattern))
                          if f"${name}" in statement}
                db.execute(statement, params)
        counts = db.execute(_COUNTS).fetchone()
        assert counts is not None
        by_outcome = dict(db.execute(_OUTCOMES).fetchall())
    owed, unsettled, cancelled, opted_out, duplicates, unmatched = counts
    outcomes = {name: int(by_outcome.get(name, 0)) for name in OUTCOMES}
    return {"owed": owed, "unsettled": unsettled, "outcomes": outcomes, "duplicates": duplicates,
            "unmatched": unmatched, "cancelled": cancelled, "opted_out": opted_out,
            "continuity": round(outcomes["on_time"] / owed, 6) if owed else 0.0}


def _body_pattern(harness: Path) -> str:
    """The scenario's body correlation pattern, from the run's first event (`run.started`)."""
    with harness.open("rb") as file:
        started = json.loads(file.readline())
    pattern = started["scenario"]["reminders"]["correlate"]["body"]
    return str(pattern) if pattern else "(?!)"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m bench.score_duckdb JOURNAL_DIR")
    print(json.dumps(classify(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
