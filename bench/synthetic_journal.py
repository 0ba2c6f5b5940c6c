"""Writes a synthetic run folder of N owed reminders, in today's journal format, and says what
it planted.

The folder is what a completed run leaves for `notifychaos report`: `journal/harness.jsonl`
(the run's start with its scenario, the components, the load, the end) and
`journal/mocks.jsonl` (the ledger's reminders and changes, the vendors' sends with their raw
requests and calls, STOP replies), each file in time order with its own sequence, as the
journal writers append them. The scenario is the demo's (scenarios/primary-vendor-outage.yaml)
without its fault, at `RATE` reminders a second.

Every reminder has its own borrower and is planted as one of: on time; late (in the inbox
after `send_by`); missed (no send, perhaps a refused vendor call); on time with a duplicate
(a second copy in the inbox); wrong recipient (its one copy went to a number nobody has);
cancelled (repaid before `remind_at`: not owed); opted out (a STOP before `remind_at`: not
owed). Beside them, unmatched sends (a `ref` no reminder has, to a number nobody has). A share
of sends first meets a vendor that refuses the call, as during an outage. Draws come from one
seeded generator, so (N, seed) gives the same bytes.

Lines are plain string templates, not pydantic models (10^7 reminders, ~19 GB, must be written
in minutes); `tests/test_bench_score.py` proves today's scorer reads exactly what is planted.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, quote_plus

from harness.journal import JOURNAL_SCHEMA, RunStarted
from harness.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "primary-vendor-outage.yaml"
RATE = 1000
"""Reminders scheduled per second (a bank's month, compressed as issue 11 asks for)."""
T0 = 1796161476.0
"""The run's start (2026-12-01 UTC): a fixed epoch, so that the bytes depend on (N, seed)."""
LEAD, WINDOW = 5.0, 20.0
"""The demo's `reminders.lead` and `reminders.window`: remind_at and send_by after scheduling."""
BLOCK = 20_000
"""Reminders generated at a time before their events are put in time order and written."""
PLANTED_NAME = "planted.json"

ON_TIME, LATE, MISSED, DUPLICATE, WRONG_RECIPIENT, CANCELLED, OPTED_OUT = (
    "on_time", "late", "missed", "duplicate", "wrong_recipient", "cancelled", "opted_out")
KINDS = (ON_TIME, LATE, MISSED, DUPLICATE, WRONG_RECIPIENT, CANCELLED, OPTED_OUT)


@dataclass(frozen=True)
class Shares:
    """What share of the reminders is planted as each kind (on time: the rest), how many
    unmatched sends per reminder, and the share of sends that first met a refusing vendor."""

    late: float = 0.02
    missed: float = 0.015
    duplicate: float = 0.01
    wrong_recipient: float = 0.005
    cancelled: float = 0.004
    opted_out: float = 0.002
    unmatched: float = 0.003
    refused_first: float = 0.15

    def __post_init__(self) -> None:
        planted = (self.late + self.missed + self.duplicate + self.wrong_recipient
                   + self.cancelled + self.opted_out)
        if not 0.0 <= planted < 1.0:
            raise ValueError(f"shares: the planted kinds add up to {planted}, expected < 1")


@dataclass(frozen=True)
class Planted:
    """What a synthetic run folder holds, as the scorecard must count it."""

    reminders: int
    """Scheduled reminders, owed or not."""
    seed: int
    owed: int
    outcomes: dict[str, int]
    """Every outcome of harness.scorecard.OUTCOMES, over the owed reminders."""
    duplicates: int
    unmatched: int
    cancelled: int
    opted_out: int
    continuity: float
    events: int
    bytes: int
    shares: dict[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, object]:
        """The scorecard's figures this folder was planted with, by the scorecard's names."""
        return {"owed": self.owed, "unsettled": 0, "outcomes": self.outcomes,
                "duplicates": self.duplicates, "unmatched": self.unmatched,
                "cancelled": self.cancelled, "opted_out": self.opted_out,
                "continuity": self.continuity}


_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰",
          "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "桂荣", "想", "莹")
_NAMES = tuple(s + g for s in _SURNAMES for g in _GIVEN)
_FORM_NAMES = tuple(quote_plus(name) for name in _NAMES)
_SIGN = "示例银行"
_TWILIO_TEXT = ("【示例银行】尊敬的{name}，您的房贷本期还款{amount}元将于{due}到期，"
                "还款卡尾号{tail}，请按时还款。ref:{ref} 回T退订")


class _Encoded:
    """A message template split at its fields, each constant piece encoded once."""

    def __init__(self, template: str, encode: Callable[[str], str]) -> None:
        marked = template.format(name="\0", amount="\0", due="\0", tail="\0", ref="\0")
        self.pieces = tuple(encode(piece) for piece in marked.split("\0"))


_TWILIO_FORM = _Encoded(_TWILIO_TEXT, quote_plus).pieces
_ALIYUN_PARAM = _Encoded('{{"name":"{name}","amount":"{amount}","due_date":"{due}","ref":"{ref}",'
                         '"card_tail":"{tail}"}}', lambda piece: quote(piece, safe="")).pieces
_SIGN_QUERY = quote(_SIGN)


def ref_of(index: int) -> str:
    """The 8-character reference of reminder `index` (indexes past N: unmatched sends); an odd
    multiplier modulo 2^32 is one-to-one, so references never repeat."""
    return f"{(index * 2654435761 + 12345) & 0xFFFFFFFF:08X}"


def phone_of(index: int) -> str:
    """Borrower `index`'s mobile number (+86, 11 digits, prefix 15 to 18)."""
    return f"+861{5 + index % 4}{index:09d}"


def stranger_of(index: int) -> str:
    """A number nobody in the run has (prefix 19)."""
    return f"+8619{index:09d}"


class _Writer:
    """One journal file, appended in time order with its own sequence."""

    def __init__(self, path: Path, source: str) -> None:
        self._file = path.open("wb")
        self._head = f',"source":"{source}","seq":'
        self.seq = 0
        self.bytes = 0

    def write(self, events: list[tuple[float, str]]) -> None:
        seq = self.seq
        head = self._head
        lines = []
        for t, rest in events:
            seq += 1
            lines.append(f'{{"t":{t!r}{head}{seq},{rest}\n')
        self.seq = seq
        data = "".join(lines).encode("utf-8")
        self.bytes += len(data)
        self._file.write(data)

    def close(self) -> None:
        self._file.close()


class _Facts(NamedTuple):
    """A reminder's truth, as its messages show it."""

    number: int
    ref: str
    name: str
    form_name: str
    phone: str
    amount: str
    due: str
    tail: str


def _facts(index: int) -> _Facts:
    cents = 100_000 + (index * 7919) % 2_000_000
    name = index % len(_NAMES)
    return _Facts(index, ref_of(index), _NAMES[name], _FORM_NAMES[name], phone_of(index),
                  f"{cents // 100}.{cents % 100:02d}", f"2026-12-{1 + index % 28:02d}",
                  f"{index % 10_000:04d}")


def _scheduled(f: _Facts, t: float) -> str:
    i = f.number
    return ('"kind":"reminder.scheduled",'
            f'"reminder_id":"ML-{i:07d}-001","ref":"{f.ref}","loan_id":"ML-{i:07d}",'
            f'"borrower_id":"B{i:07d}","name":"{f.name}","phone":"{f.phone}",'
            f'"email":"borrower{i}@example.com",'
            f'"device_token":"d{i:021d}:APA91bFSELTaIFr7rQolQVgQeys3bdPsBcB26rl9ioYHST",'
            f'"national_id":"5101041981{i % 100_000_000:08d}","account":"62284859{i:08d}",'
            f'"opted_out":false,"amount":"{f.amount}","due_date":"{f.due}",'
            f'"remind_at":{t + LEAD!r},"send_by":{t + LEAD + WINDOW!r}}}')


_TWILIO_HEAD = ('"kind":"send.recorded","channel":"sms","vendor":"twilio","message_id":"SM')
_TWILIO_REQUEST = (
    '"request":{"method":"POST","path":'
    '"/2010-04-01/Accounts/AC69646b17bcb574b4ef2a35dcefec76b2/Messages.json","query":"",'
    '"headers":{"Host":"127.0.0.1:43285","Accept":"*/*","Accept-Encoding":"gzip, deflate, br",'
    '"User-Agent":"Python/3.11 aiohttp/3.14.5","Authorization":"Basic ***","Content-Length":"')
_TWILIO_CALLBACK = "&StatusCallback=" + quote_plus("http://127.0.0.1:46187/dlr/twilio")
_ALIYUN_HEADERS = (
    '"headers":{"Host":"127.0.0.1:39743","Accept":"*/*","Accept-Encoding":"gzip, deflate, br",'
    '"User-Agent":"Python/3.11 aiohttp/3.14.5","Content-Length":"0",'
    '"Content-Type":"application/octet-stream"},"body":""},"request_of":null}')


def _twilio_send(serial: int, f: _Facts, to: str, at: float) -> str:
    """A Twilio send as the mock journals it, with the SDK's form-encoded request."""
    p = _TWILIO_FORM
    form = (f"To=%2B{to[1:]}&From=%2B15005554820&Body={p[0]}{f.form_name}{p[1]}{f.amount}{p[2]}"
            f"{f.due}{p[3]}{f.tail}{p[4]}{f.ref}{p[5]}{_TWILIO_CALLBACK}")
    return (f'{_TWILIO_HEAD}{serial:032x}","to":"{to}","body":"【示例银行】尊敬的{f.name}，'
            f'您的房贷本期还款{f.amount}元将于{f.due}到期，还款卡尾号{f.tail}，请按时还款。'
            f'ref:{f.ref} 回T退订","client_ref":null,"handset":"delivered","inbox_at":{at!r},'
            f'{_TWILIO_REQUEST}{len(form)}","Content-Type":"application/x-www-form-urlencoded"}},'
            f'"body":"{form}"}},"request_of":null}}')


def _aliyun_send(serial: int, f: _Facts, to: str, at: float) -> str:
    """An Alibaba Cloud send as the mock journals it, with the SDK's signed query."""
    p = _ALIYUN_PARAM
    param = f"{p[0]}{f.form_name}{p[1]}{f.amount}{p[2]}{f.due}{p[3]}{f.ref}{p[4]}{f.tail}{p[5]}"
    nonce = f"{serial:032x}"
    stamp = time.strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ", time.gmtime(at))
    query = (f"AccessKeyId=LTAIXDcHN8HsxIdA58G1Zkwi&Action=SendSms&Format=JSON&OutId={f.ref}"
             f"&PhoneNumbers={to[3:]}&SignName={_SIGN_QUERY}&Signature=***"
             f"&SignatureMethod=HMAC-SHA1&SignatureNonce={nonce[:8]}-{nonce[8:12]}-"
             f"{nonce[12:16]}-{nonce[16:20]}-{nonce[20:]}&SignatureVersion=1.0"
             f"&TemplateCode=SMS_REPAYMENT_REMINDER&TemplateParam={param}&Timestamp={stamp}"
             "&Version=2017-05-25")
    return ('"kind":"send.recorded","channel":"sms","vendor":"aliyun",'
            f'"message_id":"{850663762042324955 + serial}^0","to":"{to}",'
            f'"body":"【示例银行】尊敬的{f.name}，您的房贷本期还款{f.amount}元将于{f.due}到期，'
            f'请按时还款。ref:{f.ref}","client_ref":"{f.ref}","handset":"delivered",'
            f'"inbox_at":{at!r},"request":{{"method":"POST","path":"/","query":"{query}",'
            f'{_ALIYUN_HEADERS}')


def _call(vendor: str, outcome: str, status: int, latency: float) -> str:
    return (f'"kind":"vendor.call","vendor":"{vendor}","status":{status},'
            f'"outcome":"{outcome}","latency":{latency!r}}}')


@dataclass
class _Tally:
    kinds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unmatched: int = 0
    events: int = 0


def _events(n: int, seed: int, shares: Shares, tally: _Tally
            ) -> Iterator[tuple[float, list[tuple[float, str]]]]:
    """Blocks of mocks.jsonl events, each with the time before which every later event falls."""
    rng = random.Random(seed)
    draw = rng.random
    bounds = []
    edge = 0.0
    for kind in KINDS[1:]:
        edge += getattr(shares, kind)
        bounds.append((edge, kind))
    kinds = tally.kinds
    serial = 0
    for start in range(0, n, BLOCK):
        block: list[tuple[float, str]] = []
        add = block.append
        for index in range(start, min(n, start + BLOCK)):
            t = T0 + 5.0 + index / RATE
            remind_at, send_by = t + LEAD, t + LEAD + WINDOW
            f = _facts(index)
            add((t, _scheduled(f, t)))
            chance = draw()
            kind = next((k for edge, k in bounds if chance < edge), ON_TIME)
            kinds[kind] += 1
            if kind == CANCELLED:
                add((t + 3.0, f'"kind":"reminder.changed","reminder_id":"ML-{index:07d}-001",'
                              '"change":"repaid","amount":"0.00"}'))
                continue
            if kind == OPTED_OUT:
                add((t + 2.0, f'"kind":"borrower.opted_out","phone":"{f.phone}",'
                              '"vendor":"twilio"}'))
                continue
            sent = remind_at + 0.02 + draw() * 0.4
            if draw() < shares.refused_first:
                add((sent, _call("twilio", "refused", 503, 0.001 + draw() * 0.01)))
                sent += 0.2 + draw()
            if kind == MISSED:
                continue
            if kind == LATE:
                sent = send_by + 0.5 + draw() * 20.0
            copies = (sent, sent + 0.5 + draw() * 5.0) if kind == DUPLICATE else (sent,)
            to = stranger_of(index) if kind == WRONG_RECIPIENT else f.phone
            for at in copies:
                serial += 1
                if draw() < 0.3:
                    add((at, _aliyun_send(serial, f, to, at)))
                    add((at + 0.0004, _call("aliyun", "accepted", 200, 0.003 + draw() * 0.05)))
                else:
                    add((at, _twilio_send(serial, f, to, at)))
                    add((at + 0.0004, _call("twilio", "accepted", 201, 0.003 + draw() * 0.05)))
            if draw() < shares.unmatched:
                tally.unmatched += 1
                serial += 1
                stray = n + tally.unmatched
                at = remind_at + 0.7
                add((at, _twilio_send(serial, _facts(stray), stranger_of(stray), at)))
                add((at + 0.0004, _call("twilio", "accepted", 201, 0.004)))
        tally.events += len(block)
        # Nothing of a later reminder happens before it is scheduled.
        yield T0 + 5.0 + min(n, start + BLOCK) / RATE, block


def write_run(run_dir: Path, n: int, seed: int, shares: Shares = Shares()) -> Planted:
    """Write a run folder of `n` reminders into `run_dir` (made anew) and what it planted, as
    `planted.json` beside `journal/` (written last: its presence says the folder is whole)."""
    if n <= 0:
        raise ValueError(f"synthetic journal: {n} reminders, expected at least 1")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    journal = run_dir / "journal"
    journal.mkdir(parents=True)
    tally = _Tally()
    mocks = _Writer(journal / "mocks.jsonl", "mocks")
    pending: list[tuple[float, str]] = []
    for before, block in _events(n, seed, shares, tally):
        pending.extend(block)
        pending.sort(key=lambda event: event[0])
        cut = next((i for i, (t, _) in enumerate(pending) if t >= before), len(pending))
        mocks.write(pending[:cut])
        pending = pending[cut:]
    mocks.write(pending)
    mocks.close()
    last = T0 + 5.0 + (n - 1) / RATE + LEAD + WINDOW
    harness = _Writer(journal / "harness.jsonl", "harness")
    harness.write(_harness_events(n, last))
    harness.close()
    planted = _planted(n, seed, shares, tally, mocks.bytes + harness.bytes,
                       tally.events + harness.seq)
    partial = run_dir / f".{PLANTED_NAME}.tmp"
    partial.write_text(json.dumps(asdict(planted), indent=2) + "\n", encoding="utf-8")
    partial.replace(run_dir / PLANTED_NAME)
    return planted


def _harness_events(n: int, last: float) -> list[tuple[float, str]]:
    duration = max(1.0, n / RATE)
    scenario = load_scenario(SCENARIO, [f"duration={duration}s", f"reminders.rate={RATE}/s",
                                        "timeline=[]", f"population.borrowers={n}",
                                        "gates=['continuity >= 0.9']"])
    started = RunStarted(scenario=scenario, schema_version=JOURNAL_SCHEMA,
                         versions={"notifychaos": "0.1.0", "locust": "2.47.0",
                                   "python": "3.11.7"})
    head = started.model_dump_json(by_alias=True,
                                   include={"kind", "scenario", "versions", "schema_version"})
    return [
        (T0, head[1:]),
        (T0 + 0.3, '"kind":"component.ready","component":"toxiproxy","pid":20148,'
                   '"address":"http://127.0.0.1:51629","version":"2.12.0"}'),
        (T0 + 1.5, '"kind":"component.ready","component":"mocks","pid":20154,'
                   '"address":"http://127.0.0.1:40777","version":""}'),
        (T0 + 2.2, '"kind":"component.ready","component":"target","pid":20160,'
                   '"address":"http://127.0.0.1:46187/healthz","version":""}'),
        (T0 + 2.3, '"kind":"load.started","pid":20161}'),
        (last - WINDOW, f'"kind":"load.finished","exit_code":0,"requests":{n},"failures":0}}'),
        (last + 30.0, '"kind":"run.ended","status":"completed","reason":""}'),
    ]


def _planted(n: int, seed: int, shares: Shares, tally: _Tally, size: int,
             events: int) -> Planted:
    k = tally.kinds
    owed = n - k[CANCELLED] - k[OPTED_OUT]
    on_time = k[ON_TIME] + k[DUPLICATE]
    outcomes = {"on_time": on_time, "late": k[LATE], "missed": k[MISSED], "early": 0,
                "filtered": 0, "unreachable": 0, "wrong_content": 0,
                "wrong_recipient": k[WRONG_RECIPIENT]}
    return Planted(reminders=n, seed=seed, owed=owed, outcomes=outcomes,
                   duplicates=k[DUPLICATE], unmatched=tally.unmatched, cancelled=k[CANCELLED],
                   opted_out=k[OPTED_OUT],
                   continuity=round(on_time / owed, 6) if owed else 0.0,
                   events=events, bytes=size, shares=asdict(shares))


def cached_run(cache: Path, n: int, seed: int) -> tuple[Path, Planted, bool]:
    """The run folder of (n, seed) under `cache`, written unless a whole one is there; also
    whether it was written now."""
    run_dir = cache / f"score-n{n}-seed{seed}"
    planted = run_dir / PLANTED_NAME
    if planted.is_file():
        data = json.loads(planted.read_text(encoding="utf-8"))
        if data.get("shares") == asdict(Shares()):
            return run_dir, Planted(**data), False
    os.makedirs(cache, exist_ok=True)
    return run_dir, write_run(run_dir, n, seed), True
