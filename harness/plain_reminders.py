"""Reminders with a plain history, judged in SQL: the engine's fast lane (`harness.engine`).

Most reminders of a large run have a history with nothing in it that needs the pure judge's
replay: one schedule, no change to the reminder or its borrower, no opt-out, only SMS copies to
the borrower's one number, no message that could show personal data, nothing sent to that
number that correlates with nothing. For those, `harness.judging`'s rules reduce to a few
columns, and this module applies them in SQL, over the engine's tables (`ev`, `edges`, `roots`,
`firsts`, `by_ref`, the `sends` view), to every such borrower at once:

- a copy is `early`, else `wrong_recipient` (not their number), else `wrong_content` (a bare
  content check not in the body), else by its handset (`on_time` by `send_by`, `late`,
  `filtered`, `unreachable`, `dropped`);
- the correct copy that reached the inbox first decides; without one, the first wrong copy,
  then filtered, early, unreachable, missed;
- owed always (no repayment, no opt-out), settled when decided or its window closed by the
  run's end; `duplicates` the arrived copies beyond the first.

A borrower is plain only when every one of these holds, checked conservatively: whatever SQL
cannot promise to read as Python does goes to the pure judge. So does the whole run when the
scenario asks for what this lane does not read (a content check that is not one bare field, or
`{amount_grouped}`; leaked test records; a correlation or notice pattern whose meaning in RE2
could differ from Python's `re`), and so do the `WORST` plain reminders the traces would show,
so that every trace is the pure judge's. The personal-data rule is applied as its necessary
condition (`harness.compliance._may_show`): a message that might show a field is not plain.
"""

from __future__ import annotations

import importlib
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from harness.compliance import MASKS, TAIL_FROM
from harness.fold import Counted
from harness.judging import EARLY_SLACK
from harness.scenario import Scenario
from harness.traces import WORST, WORST_FIRST
from harness.verdict import MAX_WITNESSES

_BARE = re.compile(r"\{(amount|due_date|due_year|due_month|due_day|name|ref)\}")
"""The content checks this lane reads: one bare field whose value SQL has as it is."""
_FIELD_SQL = {"amount": "r.amount", "due_date": "r.due_date", "name": "r.name", "ref": "r.ref",
              "due_year": "split_part(r.due_date, '-', 1)",
              "due_month": "split_part(r.due_date, '-', 2)",
              "due_day": "split_part(r.due_date, '-', 3)"}
_MASK = "[" + "".join("\\" + mask if mask in "\\[]^-" else mask for mask in sorted(MASKS)) + "]"
"""A mask character, as an RE2 class."""
_RUN = "[0-9" + "".join(sorted({mask.upper() for mask in MASKS})) + "]"
"""A character of a run in upper case (`harness.compliance._as_long`'s class)."""


@dataclass(frozen=True)
class PlainVerdicts:
    """What the fast lane judged: its settled reminders added up (`harness.fold.Counted`), and
    two counts."""

    counted: Counted
    duplicates: int
    unsettled: int


def lane_open(scenario: Scenario, leaks: bool) -> bool:
    """Whether the run can take the fast lane at all."""
    rule, compliance = scenario.reminders.correlate, scenario.compliance
    return (not leaks
            and all(_BARE.fullmatch(check) for check in scenario.reminders.content.values())
            and (rule.body is None or re2_agrees(rule.body))
            and (compliance.optout_notice is None or re2_agrees(compliance.optout_notice)))


def judge(con: duckdb.DuckDBPyConnection, scenario: Scenario, end: float) -> None:
    """Judge the reminders of the plain borrowers (table `plain`, read by `verdicts`, maybe
    on another connection), and leave the others in temporary table `rest_b`; `end` is the
    run's end."""
    visible = scenario.compliance.visible
    tail = max(TAIL_FROM, visible + 1)
    others = [scenario.window_of(channel) for channel in scenario.allowed if channel != "sms"]
    closes = (f"greatest(r.send_by, r.remind_at + {max(others)!r}::DOUBLE)" if others
              else "r.send_by")
    content = " AND ".join(
        f"contains(s.body, {_FIELD_SQL[_field(check)]})"
        for check in scenario.reminders.content.values()) or "true"
    notice = scenario.compliance.optout_notice
    lacks_notice = "false" if notice is None else f"NOT regexp_matches(s.body, {_quote(notice)})"
    con.execute("""
        CREATE TEMP TABLE bsched AS
        SELECT borrower_id AS b, count(DISTINCT pn) AS phones, bool_or(opted_out) AS out,
               arg_min(pn, (t, source, seq)) AS phone,
               upper(arg_min(national_id, (t, source, seq))) AS national_id,
               upper(arg_min(account, (t, source, seq))) AS account
        FROM ev WHERE kind = 'reminder.scheduled' GROUP BY borrower_id""")
    con.execute("""
        CREATE TEMP TABLE r AS
        SELECT reminder_id AS rid, count(*) AS n, any_value(borrower_id) AS b,
               any_value(ref) AS ref, any_value(amount) AS amount,
               any_value(due_date) AS due_date, any_value(name) AS name,
               any_value(remind_at) AS remind_at, any_value(send_by) AS send_by,
               any_value(t) AS scheduled_t
        FROM ev WHERE kind = 'reminder.scheduled' GROUP BY reminder_id""")
    # A copy is not plain when it is on another channel, or arrived and might show personal
    # data (`harness.compliance._may_show`, field by field: two mask characters found by a
    # pattern, which took a seventh of the time counting them did) or lack the notice.
    con.execute(f"""
        CREATE TEMP TABLE copies AS
        SELECT s.rid, s.t, s.source, s.seq, s.inbox_at,
               s.handset IN ('delivered', 'spam') AS arrived,
               s.channel <> 'sms' OR (s.handset IN ('delivered', 'spam') AND ({lacks_notice}
                   OR regexp_matches(s.body, '(?s){_MASK}.*{_MASK}')
                   OR regexp_matches(s.flat, '{_RUN}{{{_shortest(con)},}}')
                   OR (length(b.national_id) > {tail}
                       AND contains(s.flat, right(b.national_id, {tail})))
                   OR (length(b.account) > {tail} AND contains(s.flat, right(b.account, {tail})))
                   OR (length(b.phone) > {tail} AND contains(s.flat, right(b.phone, {tail})))))
                   AS unplain,
               CASE WHEN s.t < r.remind_at - {EARLY_SLACK!r}::DOUBLE THEN 'early'
                    WHEN s.tn <> b.phone THEN 'wrong_recipient'
                    WHEN NOT ({content}) THEN 'wrong_content'
                    WHEN s.handset = 'delivered' THEN
                         CASE WHEN s.inbox_at <= r.send_by THEN 'on_time' ELSE 'late' END
                    WHEN s.handset = 'spam' THEN 'filtered'
                    WHEN s.handset = 'absent' THEN 'unreachable'
                    ELSE 'dropped' END AS verdict
        FROM (SELECT *, replace(replace(upper(body), ' ', ''), '-', '') AS flat FROM sends
              WHERE rid IS NOT NULL) s
        JOIN r ON r.rid = s.rid JOIN bsched b ON b.b = r.b""")
    con.execute("""
        CREATE TEMP TABLE unplain AS
        SELECT b FROM roots
        UNION SELECT b FROM bsched WHERE phones > 1 OR out
        UNION SELECT borrower_id FROM ev WHERE kind = 'borrower.changed'
        UNION SELECT b.b FROM bsched b JOIN ev o ON o.kind = 'borrower.opted_out'
                                              AND o.pn = b.phone
        UNION SELECT b FROM r WHERE n > 1 OR len(string_split(due_date, '-')) <> 3
        UNION SELECT r.b FROM r JOIN ev c ON c.kind = 'reminder.changed' AND c.reminder_id = r.rid
        UNION SELECT r.b FROM r JOIN firsts f ON f.ref = r.ref AND f.reminder_id <> r.rid
        UNION SELECT r.b FROM r JOIN copies c ON c.rid = r.rid WHERE c.unplain
        UNION SELECT e.b FROM sends s JOIN edges e ON e.ident = CASE
                  WHEN s.channel = 'sms' THEN 'p:' || s.tn
                  WHEN s.channel = 'email' THEN 'a:' || lower(s."to") ELSE 'a:' || s."to" END
              WHERE s.rid IS NULL""")
    con.execute(f"""
        CREATE TEMP TABLE judged AS
        SELECT r.rid, r.b, r.remind_at, r.send_by, r.scheduled_t, f.ord, {closes} AS closes,
               per.decided.v AS decided, per.decided.at AS delivered,
               greatest(coalesce(per.arrived, 0) - 1, 0) AS extra,
               per.decided.v IS NOT NULL OR {closes} <= {end!r}::DOUBLE AS settled,
               CASE WHEN per.decided.v IS NOT NULL THEN per.decided.v
                    WHEN per.wrong IS NOT NULL THEN per.wrong
                    WHEN per.filtered THEN 'filtered' WHEN per.early THEN 'early'
                    WHEN per.unreachable THEN 'unreachable' ELSE 'missed' END AS outcome
        FROM r JOIN firsts f ON f.reminder_id = r.rid
        LEFT JOIN (
            SELECT rid,
                   arg_min({{'v': verdict, 'at': inbox_at}},
                           (CASE WHEN inbox_at IS NULL OR inbox_at = 0 THEN 'infinity'::DOUBLE
                                 ELSE inbox_at END, t, source, seq))
                       FILTER (verdict IN ('on_time', 'late')) AS decided,
                   arg_min(verdict, (t, source, seq))
                       FILTER (verdict IN ('wrong_recipient', 'wrong_content')) AS wrong,
                   bool_or(verdict = 'filtered') AS filtered, bool_or(verdict = 'early') AS early,
                   bool_or(verdict = 'unreachable') AS unreachable,
                   count(*) FILTER (arrived) AS arrived
            FROM copies GROUP BY rid) per ON per.rid = r.rid
        WHERE r.b NOT IN (SELECT b FROM unplain)""")
    # The reminders the traces would show go to the pure judge (their borrowers with them),
    # so that every trace comes from one implementation. The order is `harness.traces.worst`'s
    # (no plain copy shows personal data).
    rank = " ".join(f"WHEN '{outcome}' THEN {index}" for index, outcome in enumerate(WORST_FIRST))
    con.execute(f"""
        INSERT INTO unplain
        SELECT b FROM judged WHERE settled
        ORDER BY CASE outcome {rank} END, -coalesce(delivered - remind_at, 0), remind_at, rid
        LIMIT {WORST}""")
    # Sets of the few borrowers who are not plain, never of the many who are: a hash table of
    # ten million ids is what DuckDB could not hold in its memory at 10^7.
    con.execute("CREATE TEMP TABLE rest_b AS SELECT DISTINCT b FROM unplain")
    con.execute("""
        CREATE TABLE plain AS
        SELECT outcome, settled, rid, remind_at, send_by, closes, delivered, decided, extra,
               scheduled_t, ord
        FROM judged WHERE b NOT IN (SELECT b FROM rest_b)""")


def closed(con: duckdb.DuckDBPyConnection) -> None:
    """Close the lane: every borrower (table `rest_b`) goes to the pure judge, none is in
    table `plain`."""
    con.execute("CREATE TEMP TABLE rest_b AS SELECT DISTINCT b FROM edges")
    con.execute("""
        CREATE TABLE plain (outcome VARCHAR, settled BOOLEAN, rid VARCHAR, remind_at DOUBLE,
                            send_by DOUBLE, closes DOUBLE, delivered DOUBLE, decided VARCHAR,
                            extra BIGINT, scheduled_t DOUBLE, ord BIGINT)""")


_CHANNEL = "CASE WHEN decided IS NOT NULL THEN 'sms' END"
"""The channel that delivered a plain reminder correctly (None: none did)."""


def verdicts(con: duckdb.DuckDBPyConnection, add: Callable[..., None]) -> PlainVerdicts:
    """The reminders the lane judged (table `plain`) that the scorecard counts (every settled
    one), added up as `harness.fold.Fold.settled` adds them; give `add` the values of
    `harness.fold.Row` (in its order) of each one a gate may name as a witness (the first
    `MAX_WITNESSES` of each outcome, not on time, with copies too many, settled or not, and
    the slowest: `Fold.add_witness` takes them), each once."""
    outcomes = {(outcome, channel): int(reminders) for outcome, channel, reminders in con.execute(
        f"SELECT outcome, {_CHANNEL} AS channel, count(*) FROM plain WHERE settled "
        "GROUP BY outcome, channel").fetchall()}
    # Each list fetched and packed before the next: 32 bytes a value while a list, 8 packed.
    times: dict[str, array[float]] = {}
    deliverable = "outcome NOT IN ('filtered', 'unreachable')"
    for name, value, where in (
            ("remind_at", "remind_at", "true"), ("due", "remind_at", deliverable),
            ("waited", "coalesce(delivered, closes)", deliverable),
            ("on_time", "delivered",
             f"{deliverable} AND outcome = 'on_time' AND delivered IS NOT NULL"),
            ("expired", "closes",
             f"{deliverable} AND NOT (outcome = 'on_time' AND delivered IS NOT NULL)"),
            ("latencies", "delivered - remind_at", "delivered IS NOT NULL")):
        found = con.execute(f"SELECT list({value} ORDER BY {value}) FROM plain "
                            f"WHERE settled AND {where}").fetchone()
        times[name] = array("d", (found[0] if found else None) or ())
        del found
    # The first of each outcome hold the first not on time.
    first = f"ORDER BY ord LIMIT {MAX_WITNESSES}"
    for found in con.execute(f"""
            SELECT outcome, true, false, settled, rid, remind_at, send_by, closes, delivered,
                   {_CHANNEL}, extra, scheduled_t, ord
            FROM plain WHERE rid IN (
                SELECT rid FROM plain WHERE settled
                QUALIFY row_number() OVER (PARTITION BY outcome ORDER BY ord)
                        <= {MAX_WITNESSES}
                UNION ALL (SELECT rid FROM plain WHERE settled AND extra > 0 {first})
                UNION ALL (SELECT rid FROM plain WHERE NOT settled AND extra > 0 {first})
                UNION ALL (SELECT rid FROM plain WHERE settled AND delivered IS NOT NULL
                           ORDER BY delivered - remind_at DESC, ord LIMIT {MAX_WITNESSES}))
            ORDER BY ord""").fetchall():
        add(*found)
    duplicates, unsettled = con.execute(
        "SELECT coalesce(sum(extra), 0)::BIGINT, count(*) FILTER (NOT settled) FROM plain"
    ).fetchone() or (0, 0)
    return PlainVerdicts(counted=Counted(outcomes=outcomes, times=times),
                         duplicates=int(duplicates), unsettled=int(unsettled))


def exposures(con: duckdb.DuckDBPyConnection, expose: Callable[..., None]) -> None:
    """Give `expose` (`harness.fold.Fold.expose`) the values of each settled reminder the
    lane judged, a batch at a time: what a fault step or maintenance window exposes."""
    cursor = con.execute(f"""
        SELECT outcome, rid, remind_at, scheduled_t, coalesce(delivered, closes), {_CHANNEL},
               extra
        FROM plain WHERE settled""")
    while batch := cursor.fetchmany(1 << 16):
        for found in batch:
            expose(*found)


def _field(check: str) -> str:
    found = _BARE.fullmatch(check)
    assert found is not None  # lane_open said so
    return found.group(1)


def _shortest(con: duckdb.DuckDBPyConnection) -> int:
    """The fewest characters of any personal-data value: a run as long may show one in place."""
    found = con.execute("""
        SELECT min(least(CASE WHEN national_id <> '' THEN length(national_id) END,
                         CASE WHEN account <> '' THEN length(account) END,
                         CASE WHEN phone <> '' THEN length(phone) END))
        FROM bsched""").fetchone()
    shortest = None if found is None else found[0]
    return max(1, int(shortest)) if shortest is not None else 1


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_PARSER: Any = importlib.import_module("re._parser")
_CONSTANTS: Any = importlib.import_module("re._constants")
_SAFE_OPS = {_CONSTANTS.LITERAL, _CONSTANTS.IN, _CONSTANTS.MAX_REPEAT, _CONSTANTS.MIN_REPEAT,
             _CONSTANTS.SUBPATTERN, _CONSTANTS.BRANCH, _CONSTANTS.ANY, _CONSTANTS.RANGE}


def re2_agrees(pattern: str) -> bool:
    """Whether RE2 (DuckDB's regular expressions) finds in every text what Python's `re` finds:
    true for patterns of literals, classes of literals and ranges, groups, alternatives, `.`
    and bounded repeats, without flags; false for anything else (`\\d` and `\\w` are Unicode in
    Python and ASCII in RE2, `$` differs before a final newline, lookarounds are Python's
    only)."""
    try:
        parsed = _PARSER.parse(pattern)
    except re.error:
        return False
    if parsed.state.flags & ~re.UNICODE:
        return False
    return _safe(parsed.data)


def _safe(items: Any) -> bool:
    for op, value in items:
        if op not in _SAFE_OPS:
            return False
        if op == _CONSTANTS.IN and not all(inner in (_CONSTANTS.LITERAL, _CONSTANTS.RANGE)
                                           for inner, _ in value):
            return False
        if op in (_CONSTANTS.MAX_REPEAT, _CONSTANTS.MIN_REPEAT):
            low, high, inner = value
            # RE2 counts repeats up to 1000; `+` and `*` are unbounded in both.
            bounded = high is _CONSTANTS.MAXREPEAT or high <= 1000
            if low > 1000 or not bounded or not _safe(inner):
                return False
        if op == _CONSTANTS.SUBPATTERN:
            _, add, remove, inner = value
            if add or remove or not _safe(inner):
                return False
        if op == _CONSTANTS.BRANCH and not all(_safe(branch) for branch in value[1]):
            return False
    return True
