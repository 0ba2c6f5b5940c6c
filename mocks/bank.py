"""The bank's seeded truth: borrowers and their mortgages, the reminders scheduled for them, and
how that truth changes (the ledger mock serves, replicates and journals it)."""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Literal

from faker import Faker
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mocks.draws import draw

BANK_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The bank's time zone; China has kept UTC+8 without daylight saving since 1991."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CLOCK_TIME = r"([01]\d|2[0-3]):([0-5]\d)"
"""A time of day as the bank writes a stage's (and a scenario its batches'): `09:00`."""


def check_stage_days(days: list[int] | tuple[int, ...]) -> None:
    """ValueError unless `days` are a reminder calendar's stages: distinct days before the due
    date, from 31 down to 0, the earliest first (its changes are planned before it)."""
    if list(days) != sorted(set(days), reverse=True) or min(days) < 0 or max(days) > 31:
        raise ValueError(f"expected distinct days from 31 down to 0, the earliest stage first "
                         f"(e.g. [3, 1, 0]), got {list(days)}")

# Mainland mobile prefixes; each is followed by 8 digits.
_PREFIXES = ("130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
             "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176", "177",
             "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "191",
             "198", "199")
_NUMBERS = len(_PREFIXES) * 10**8
# Numbers below this index are the population's own, and then the new ones of phone changes
# (one at most per reminder scheduled: a run never reaches it); from it up, nobody's ever.
_UNUSED_FROM = _NUMBERS // 2
# Household-registration areas an 18-digit resident identity number starts with.
_AREAS = ("110101", "110105", "310101", "310115", "440103", "440305", "330106", "320102",
          "510104", "420102", "610113", "500103")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_REF_CHARS = string.ascii_uppercase + string.digits
# Issuer numbers of UnionPay debit cards of four large Chinese banks (ICBC, ABC, CCB, BOC).
_CARD_BINS = ("622202", "622848", "621700", "621661")
# The test environment's numbers: +86 170 0000 0000 to +86 170 0009 9999, a block of the 170
# virtual-operator prefix (where test SIM pools live), which _PREFIXES leaves out, so no
# production borrower's number, new number or drifted number is ever one of them.
_TEST_PREFIX = "170"
_TEST_NUMBERS = 10**5
# The test environment's references start so; the bank never issues one that does.
_TEST_REF = "TEST"
_TEST_AMOUNTS = (100, 1)  # 1.00 and 0.01: what testers type


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(_Model):
    """The bank's borrowers (each with one mortgage), made by the ledger from the seed."""

    # A billion at most: the population's numbers and its new ones stay below _UNUSED_FROM.
    borrowers: int = Field(default=1000, ge=1, le=10**9)
    locale: str = "zh_CN"
    opted_out: float = Field(default=0.0, ge=0, le=1,
                             description="fraction of borrowers opted out of SMS at the start")
    app_users: float = Field(default=1.0, ge=0, le=1, description="fraction of borrowers with "
                             "the bank's app, and so a push token")
    stale_tokens: float = Field(default=0.0, ge=0, le=1, description="fraction of those push "
                                "tokens that are stale (the app was removed): the push service "
                                "answers UNREGISTERED")


class Changes(_Model):
    """How the truth changes during the run: each a fraction of scheduled reminders, drawn from
    the seed when the reminder is scheduled, and happening before its `remind_at`."""

    repaid: float = Field(default=0.0, ge=0, le=1, description="installment repaid in full: "
                          "the reminder is cancelled")
    partially_repaid: float = Field(default=0.0, ge=0, le=1, description="part of the "
                                    "installment repaid: the amount due is lower")
    phone_changed: float = Field(default=0.0, ge=0, le=1, description="the borrower changes "
                                 "their phone number")
    opted_out: float = Field(default=0.0, ge=0, le=1, description="the borrower opts out of SMS "
                             "at the bank")
    opted_in: float = Field(default=0.0, ge=0, le=1, description="of reminders whose borrower "
                            "is opted out: the borrower opts back in")

    @model_validator(mode="after")
    def _one_repayment_each(self) -> Changes:
        # An installment is repaid in full or in part, not both: the two share one draw.
        if self.repaid + self.partially_repaid > 1:
            raise ValueError("repaid + partially_repaid must be at most 1")
        return self


class Staging(_Model):
    """The bank's own reminder calendar on a compressed month: for each installment, one
    reminder `before_days` days before its due date (0: on the day) at `at` in the bank's time
    zone, on the calendar whose time is `start` (midnight, UTC) + (now - epoch) * `speed`. A
    run fixes the epoch as it starts its target, after the mocks: it comes with `Bank.clock`."""

    start: date
    speed: float = Field(gt=0)
    before_days: tuple[int, ...] = Field(min_length=1)
    at: str = Field(pattern=f"^{CLOCK_TIME}$")
    epoch: float | None = None
    """The epoch when it is fixed before the mocks start (`mocks up`); a run's comes later."""

    @model_validator(mode="after")
    def _earliest_first(self) -> Staging:
        check_stage_days(self.before_days)
        return self

    @property
    def _midnight(self) -> datetime:
        """The calendar's start, at epoch."""
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    def real(self, epoch: float, calendar: datetime) -> float:
        """The Unix time at which the compressed calendar reads `calendar`."""
        return epoch + (calendar - self._midnight).total_seconds() / self.speed

    def calendar(self, epoch: float, now: float) -> datetime:
        """The compressed calendar's time at Unix time `now`, in the bank's time zone."""
        return (self._midnight + timedelta(seconds=(now - epoch) * self.speed)).astimezone(
            BANK_TZ)

    def stage_time(self, due_date: date, days_before: int) -> datetime:
        """When the bank wants the reminder `days_before` days before `due_date`, local."""
        hours, minutes = self.at.split(":")
        return datetime.combine(due_date - timedelta(days=days_before),
                                time(int(hours), int(minutes)), BANK_TZ)

    def due_date(self, epoch: float, now: float, lead: float) -> date:
        """The due date of an installment that appears at `now`: the first day whose earliest
        stage is at least `lead` (real seconds) ahead, so the notifier hears of it in time."""
        first = self.before_days[0]
        ahead = self.calendar(epoch, now + lead)
        due = ahead.date() + timedelta(days=first)
        return due if self.stage_time(due, first) >= ahead else due + timedelta(days=1)


class ClockUnset(RuntimeError):
    """A staged bank was asked to schedule before it was told the calendar's epoch."""


@dataclass(frozen=True, slots=True)
class Stage:
    """Which of the bank's reminders of an installment a record is: `days_before` its due
    date at `at` (local time), for the notifier to compute when to send."""

    days_before: int
    at: str


ChangeKind = Literal["repaid", "partially_repaid", "phone_changed", "opted_out", "opted_in"]
BORROWER_CHANGES: frozenset[ChangeKind] = frozenset({"phone_changed", "opted_out", "opted_in"})


def ms_time(ms: int) -> datetime:
    """A time in whole milliseconds since the epoch, in the bank's time zone (exactly: no float
    rounding on the way)."""
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(BANK_TZ)


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True, slots=True)
class Borrower:
    """A borrower as the core banking system holds them now, personal data included: the
    national id, the repayment account (a bank card number), the e-mail address and the push
    token of their app ("" without one)."""

    borrower_id: str
    name: str
    phone: str
    national_id: str
    opted_out: bool
    email: str = ""
    account: str = ""
    device_token: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """One version of a reminder's record: its installment, its borrower's contact and consent,
    and when the bank wants it sent. Times are whole milliseconds since the epoch."""

    reminder_id: str
    ref: str
    version: int
    status: Literal["scheduled", "cancelled"]
    loan_id: str
    borrower: Borrower
    installment: int
    amount_cents: int
    due_date: date
    remind_at_ms: int
    send_by_ms: int
    as_of_ms: int
    stage: Stage | None = None
    """A staged reminder's stage: the feed then gives no remind_at, the notifier computes it
    (the times above are the truth it is judged by)."""

    @property
    def amount(self) -> str:
        """The amount still due, a decimal string with two places."""
        return _money(self.amount_cents)


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """A change to the truth, due at `at_ms`: drawn when its reminder was scheduled, or the
    borrower's own in the app (`Bank.consent`)."""

    reminder_id: str
    kind: ChangeKind
    at_ms: int
    amount_cents: int | None = None
    """partially_repaid: the amount still due afterwards."""
    phone: str | None = None
    """phone_changed: the borrower's new number."""


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An installment's reminders just scheduled (one, or one per stage, the earliest first):
    their first records and the changes planned for them."""

    records: tuple[Record, ...]
    changes: tuple[PlannedChange, ...]

    @property
    def record(self) -> Record:
        """The first reminder's record (the only one, without stages)."""
        return self.records[0]


@dataclass(frozen=True, slots=True)
class Applied:
    """A change that happened: the new version of every record it touched, and the borrower as
    they are now (for borrower changes)."""

    change: PlannedChange
    records: tuple[Record, ...]
    borrower: Borrower


@dataclass(slots=True)
class _Account:
    """What the bank keeps of one borrower and their mortgage as the run goes on."""

    borrower: Borrower
    loan_id: str
    monthly_cents: int
    next_installment: int
    reminders: list[str] = field(default_factory=list)
    planned_opted_out: bool = False
    """Consent once every change drawn so far has happened: what later draws build on."""
    last_change_ms: int = 0
    """When the latest planned borrower change happens; the next one comes after it."""


class _Permutation:
    """A seeded bijection of range(size) (affine modulo size): distinct inputs, distinct outputs,
    in O(1) without building anything."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self._size = size
        self._step = rng.randrange(1, size) if size > 1 else 1
        while math.gcd(self._step, size) != 1:
            self._step += 1
        self._offset = rng.randrange(size)

    def __call__(self, index: int) -> int:
        return (self._step * index + self._offset) % self._size


def _national_id(rng: random.Random) -> str:
    """An 18-character resident identity number: area, birth date, sequence, and the GB 11643
    check character (a digit or X)."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(15_000))
    body = f"{rng.choice(_AREAS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


_TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


def pick_token(rng: random.Random, n: int) -> str:
    """`n` characters of a push token's alphabet."""
    return "".join(rng.choices(_TOKEN_CHARS, k=n))


def luhn_digit(digits: str) -> str:
    """The Luhn check digit that makes `digits` + it a valid card number."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def borrower_of(reminder_id: str) -> str:
    """The borrower whose mortgage a reminder of the bank's is for: `ML-<n>-<k>` is `B<n>`'s."""
    return "B" + reminder_id.split("-")[1]


class Bank:
    """The truth of the core banking system, made from the seed.

    Borrowers come into being the first time a reminder picks them, each from their own seed, so
    a population of any size costs nothing until it is used. Every draw that decides what
    happens is made when a reminder is scheduled, from one generator, so the reminders and their
    changes depend only on the seed and the number of reminders scheduled: the i-th reminder of
    two banks with one seed is the same reminder (id, reference, borrower, amount, due date
    counted from the first reminder's day, planned changes), whenever each tick comes. With
    `staging`, the due date is the calendar's (it follows when the tick comes, so a tick late
    across a calendar day moves it by a day), and the later stages' references come from a
    generator of their own.
    """

    def __init__(self, population: Population, changes: Changes, *, lead: float,
                 window: float, seed: int, staging: Staging | None = None) -> None:
        self._population = population
        self._staging = staging
        self._epoch = None if staging is None else staging.epoch
        # A staged installment's reminders by its first one's id: a repayment cancels them all.
        self._stages: dict[str, tuple[str, ...]] = {}
        self._changes = changes
        self._lead_ms = round(lead * 1000)
        self._window_ms = round(window * 1000)
        self._seed = seed
        self._rng = random.Random(f"{seed}:bank")
        self._stage_rng = random.Random(f"{seed}:stage-refs")
        self._faker = Faker(population.locale)
        self._numbers = _Permutation(_NUMBERS, random.Random(f"{seed}:numbers"))
        self._opt_outs = _Permutation(population.borrowers, random.Random(f"{seed}:opt-outs"))
        self._opted_out_count = round(population.opted_out * population.borrowers)
        # Numbers below `borrowers` are the population's own; new numbers count up from there.
        self._new_numbers = population.borrowers
        self._accounts: dict[str, _Account] = {}
        self._records: dict[str, Record] = {}
        self._refs: set[str] = set()
        self._first_day: date | None = None
        self._token_owners: dict[str, str] = {}  # push token -> borrower id, of those made

    @property
    def staging(self) -> Staging | None:
        """The bank's own reminder calendar, if it schedules one reminder per stage."""
        return self._staging

    def clock(self, epoch: float) -> None:
        """The compressed calendar's epoch (Unix seconds), once the run has fixed it."""
        self._epoch = epoch

    def _phone(self, index: int) -> str:
        prefix, rest = divmod(self._numbers(index), 10**8)
        return f"+86{_PREFIXES[prefix]}{rest:08d}"

    def _account(self, index: int) -> _Account:
        number = index + 1
        account = self._accounts.get(f"B{number:06d}")
        if account is None:
            rng = random.Random(f"{self._seed}:borrower:{number}")
            self._faker.seed_instance(f"{self._seed}:name:{number}")
            opted_out = self._opt_outs(index) < self._opted_out_count
            name = self._faker.name()
            borrower = Borrower(borrower_id=f"B{number:06d}", name=name,
                                phone=self._phone(index), national_id=_national_id(rng),
                                opted_out=opted_out, **self._contact(number))
            account = self._accounts[borrower.borrower_id] = _Account(
                borrower=borrower, loan_id=f"ML-{number:06d}",
                monthly_cents=rng.randint(200_000, 2_000_000),
                next_installment=rng.randint(1, 240), planned_opted_out=opted_out)
            if borrower.device_token:
                self._token_owners[borrower.device_token] = borrower.borrower_id
        return account

    def _contact(self, number: int) -> dict[str, str]:
        """Borrower `number`'s e-mail address, repayment card and app push token, each drawn
        from their own seed (so that the draws of everything else stay as they were)."""
        self._faker.seed_instance(f"{self._seed}:contact:{number}")
        email = f"{self._faker.user_name()}.{number}@{self._faker.free_email_domain()}"
        # A UnionPay debit card: a bank's BIN, the account digits, the Luhn check digit.
        card = self._faker.numerify(f"{self._faker.random_element(_CARD_BINS)}#########")
        rng = random.Random(f"{self._seed}:token:{number}")
        app_user = draw(self._seed, "app-user", number) < self._population.app_users
        token = (pick_token(rng, 22) + ":APA91b" + pick_token(rng, 40)) if app_user else ""
        return {"email": email, "account": card + luhn_digit(card), "device_token": token}

    def stale_token(self, token: str) -> bool:
        """Whether the push token `token` is stale (its app was removed): a keyed draw, so the
        push service can tell without asking whose it is."""
        return draw(self._seed, "stale-token", token) < self._population.stale_tokens

    def token_owner(self, token: str) -> Borrower | None:
        """The borrower (as they are now) whose app has push token `token`, among those made so
        far (the only ones whose token the ledger has served); None if nobody's."""
        borrower_id = self._token_owners.get(token)
        return None if borrower_id is None else self._accounts[borrower_id].borrower

    def borrower(self, index: int) -> Borrower:
        """Borrower number `index + 1` (`B000001` is index 0) as they are now."""
        if not 0 <= index < self._population.borrowers:
            raise IndexError(f"no borrower {index}; the bank has {self._population.borrowers}")
        return self._account(index).borrower

    def record(self, reminder_id: str) -> Record | None:
        """The current version of a reminder's record (the primary), if it exists."""
        return self._records.get(reminder_id)

    def reminders_of(self, borrower_id: str) -> tuple[Record, ...] | None:
        """The current records of a borrower's reminders, in the order they were scheduled;
        None for a borrower the bank has scheduled none for (their account opens with it)."""
        account = self._accounts.get(borrower_id)
        return None if account is None else tuple(self._records[r] for r in account.reminders)

    def consent(self, borrower_id: str, opted_out: bool, now: float) -> Applied | None:
        """The borrower's own choice at `now`, made in the bank's app: out of reminders or back
        in. Unlike a planned change it may come at any time (after every remind_at too). None
        when they already are so; `borrower_id` must be one of `reminders_of`."""
        account = self._accounts[borrower_id]
        now_ms = round(now * 1000)
        kind: ChangeKind = "opted_out" if opted_out else "opted_in"
        applied = self._change_borrower(PlannedChange(account.reminders[-1], kind, now_ms), now_ms)
        if applied is not None:
            account.planned_opted_out = opted_out
        return applied

    def unused_phone(self, reminder_id: str, version: int) -> str:
        """A mobile number no borrower has or ever will have in this run, for a replica that
        shows this version of the reminder with a wrong phone: a keyed draw (not the next
        number in turn), so the same version drifts to the same number in every rerun."""
        spread = draw(self._seed, "drift-phone", reminder_id, version)
        return self._phone(_UNUSED_FROM + int(spread * (_NUMBERS - _UNUSED_FROM)))

    def test_record(self, joined: Record, now_ms: int) -> Record:
        """A record from the test environment, leaked into production beside `joined` (due
        when it is): a test borrower with a test number, a reminder and a reference the bank
        does not have. Keyed by `joined`'s version, so a rerun leaks the same records."""
        spread = draw(self._seed, "test-record", joined.reminder_id, joined.version)
        number = int(spread * _TEST_NUMBERS)
        rng = random.Random(f"{self._seed}:test-record:{joined.reminder_id}:{joined.version}")
        self._faker.seed_instance(f"{self._seed}:test-name:{number}")
        borrower = Borrower(borrower_id=f"T{number:05d}", name=self._faker.name(),
                            phone=f"+86{_TEST_PREFIX}{number:08d}",
                            national_id=_national_id(rng), opted_out=False)
        ref = _TEST_REF + "".join(rng.choices(_REF_CHARS, k=8 - len(_TEST_REF)))
        return replace(joined, reminder_id=f"ML-T{number:05d}-001", ref=ref, version=1,
                       status="scheduled", loan_id=f"ML-T{number:05d}", borrower=borrower,
                       installment=1, amount_cents=_TEST_AMOUNTS[0], as_of_ms=now_ms)

    def test_amount(self, record: Record) -> Record:
        """`record` with an amount from the test environment (1.00 or 0.01), keyed by its
        version."""
        pick = draw(self._seed, "test-amount", record.reminder_id, record.version)
        return replace(record, amount_cents=_TEST_AMOUNTS[int(pick * len(_TEST_AMOUNTS))])

    def _new_ref(self, rng: random.Random | None = None) -> str:
        while True:
            ref = "".join((rng or self._rng).choices(_REF_CHARS, k=8))
            if ref not in self._refs and not ref.startswith(_TEST_REF):
                self._refs.add(ref)
                return ref

    def schedule(self, now: float) -> Scheduled:
        """Schedule the next reminder at `now` (epoch seconds): a borrower drawn from the seed,
        their loan's next installment, and the changes it will go through."""
        now_ms = round(now * 1000)
        rng = self._rng
        index = rng.randrange(self._population.borrowers)
        account = self._account(index)
        installment = account.next_installment
        account.next_installment += 1
        reminder_id = f"{account.loan_id}-{installment:03d}"
        # Due dates count from the bank's first day, not each tick's: a run that crosses
        # midnight in Shanghai gives its i-th reminder the same due date as a rerun that does not.
        if self._first_day is None:
            self._first_day = ms_time(now_ms).date()
        remind_at_ms = now_ms + self._lead_ms
        record = Record(
            reminder_id=reminder_id, ref=self._new_ref(), version=1, status="scheduled",
            loan_id=account.loan_id, borrower=account.borrower, installment=installment,
            amount_cents=account.monthly_cents,
            due_date=self._first_day + timedelta(days=rng.randint(3, 10)),
            remind_at_ms=remind_at_ms, send_by_ms=remind_at_ms + self._window_ms,
            as_of_ms=now_ms)
        records = (record,) if self._staging is None else self._staged(record, now)
        for each in records:
            self._records[each.reminder_id] = each
            account.reminders.append(each.reminder_id)
        if len(records) > 1:
            self._stages[records[0].reminder_id] = tuple(r.reminder_id for r in records)
        return Scheduled(records, self._plan(records[0], account, now_ms))

    def _staged(self, drawn: Record, now: float) -> tuple[Record, ...]:
        """The installment of `drawn` as the bank's reminder calendar has it: due on the
        compressed calendar (not on the drawn date, whose draw is still made so that the seed
        gives every later reminder what it gives without stages), one reminder per stage with
        its own id (`<loan>-<n>-T<days>`) and reference, each wanted at its stage's time."""
        staging, epoch = self._staging, self._epoch
        assert staging is not None
        if epoch is None:
            raise ClockUnset("the bank schedules by stages and has not been told the epoch")
        due = staging.due_date(epoch, now, self._lead_ms / 1000)
        records: list[Record] = []
        for days in staging.before_days:
            remind_at_ms = round(staging.real(epoch, staging.stage_time(due, days)) * 1000)
            records.append(replace(
                drawn, reminder_id=f"{drawn.reminder_id}-T{days}",
                ref=drawn.ref if not records else self._new_ref(self._stage_rng), due_date=due,
                remind_at_ms=remind_at_ms, send_by_ms=remind_at_ms + self._window_ms,
                stage=Stage(days, staging.at)))
        return tuple(records)

    def _plan(self, record: Record, account: _Account, now_ms: int) -> tuple[PlannedChange, ...]:
        rng, changes = self._rng, self._changes
        # As many draws for every reminder, whatever they decide, so one reminder's changes
        # never shift the draws of the next.
        repayment, phone, opt_out, opt_in = (rng.random() for _ in range(4))
        opted_out = account.planned_opted_out
        planned: list[PlannedChange] = []

        def at() -> int:
            # Between 20 % and 60 % of the lead after scheduling: before remind_at, with margin.
            return now_ms + round(self._lead_ms * rng.uniform(0.2, 0.6))

        if repayment < changes.repaid:
            planned.append(PlannedChange(record.reminder_id, "repaid", at(), amount_cents=0))
        elif repayment < changes.repaid + changes.partially_repaid:
            kept = 100 - rng.randint(10, 90)
            amount = max(1, (record.amount_cents * kept + 50) // 100)
            planned.append(PlannedChange(record.reminder_id, "partially_repaid", at(),
                                         amount_cents=amount))
        borrower_changes: list[tuple[ChangeKind, str | None]] = []
        if phone < changes.phone_changed:
            borrower_changes.append(("phone_changed", self._phone(self._new_numbers)))
            self._new_numbers += 1
        if not opted_out and opt_out < changes.opted_out:
            borrower_changes.append(("opted_out", None))
        if opted_out and opt_in < changes.opted_in:
            borrower_changes.append(("opted_in", None))
        for kind, number in borrower_changes:
            # One borrower's changes happen in the order they were drawn, so their outcome does
            # not depend on how the reminders' timers interleave.
            when = max(at(), account.last_change_ms + 1)
            if when > record.remind_at_ms:
                continue
            account.last_change_ms = when
            if kind != "phone_changed":
                account.planned_opted_out = kind == "opted_out"
            planned.append(PlannedChange(record.reminder_id, kind, when, phone=number))
        return tuple(planned)

    def apply(self, change: PlannedChange, now: float) -> Applied | None:
        """Make `change` happen at `now`; None when there is nothing left to change (its
        reminder's remind_at has passed, it was cancelled, or the borrower already is so)."""
        now_ms = round(now * 1000)
        target = self._records[change.reminder_id]
        if now_ms > target.remind_at_ms:
            return None
        if change.kind not in BORROWER_CHANGES:
            if target.status == "cancelled":
                return None
            assert change.amount_cents is not None
            # A repayment changes the installment: each of its stages' reminders.
            updates = []
            for reminder_id in self._stages.get(change.reminder_id, (change.reminder_id,)):
                current = self._records[reminder_id]
                updated = replace(current, version=current.version + 1, as_of_ms=now_ms,
                                  amount_cents=change.amount_cents,
                                  status="cancelled" if change.kind == "repaid" else "scheduled")
                self._records[reminder_id] = updated
                updates.append(updated)
            return Applied(change, tuple(updates), target.borrower)
        return self._change_borrower(change, now_ms)

    def _change_borrower(self, change: PlannedChange, now_ms: int) -> Applied | None:
        """Make a borrower change happen: a new version of each of their reminders' records."""
        account = self._accounts[self._records[change.reminder_id].borrower.borrower_id]
        before = account.borrower
        if change.kind == "phone_changed":
            assert change.phone is not None
            after = replace(before, phone=change.phone)
        else:
            after = replace(before, opted_out=change.kind == "opted_out")
        if after == before:
            return None
        account.borrower = after
        records = []
        for reminder_id in account.reminders:
            current = self._records[reminder_id]
            updated = replace(current, version=current.version + 1, as_of_ms=now_ms,
                              borrower=after)
            self._records[reminder_id] = updated
            records.append(updated)
        return Applied(change, tuple(records), after)

