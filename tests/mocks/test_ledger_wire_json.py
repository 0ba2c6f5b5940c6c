"""The feed's and the primary's written-out JSON (`ledger.wire_json`) is what `json.dumps` makes
of the contract's object (`ledger.as_wire`), in every wire format."""

from __future__ import annotations

import json
import random
import string
from datetime import date

from mocks.bank import Borrower, Record, Stage
from mocks.ledger import as_wire, wire_json

RNG_SEED = 11
ALPHABET = string.printable + "\u00e9\u4f60\u2028\x00\x1f\x7f\"\\/\U0001f600"


def _record(rng: random.Random) -> Record:
    def text(low: int = 0) -> str:
        return "".join(rng.choices(ALPHABET, k=rng.randint(low, 20)))

    borrower = Borrower(borrower_id=text(1), name=text(1), phone=text(1), national_id=text(),
                        opted_out=rng.random() < 0.5, email=rng.choice(["", text()]),
                        account=rng.choice(["", text()]), device_token=rng.choice(["", text()]))
    stage = rng.choice([None, Stage(days_before=rng.randint(0, 9), at=text())])
    return Record(reminder_id=text(1), ref=text(1), version=rng.randint(1, 10**6),
                  status=rng.choice(["scheduled", "cancelled"]), loan_id=text(1),
                  borrower=borrower, installment=rng.randint(1, 360),
                  amount_cents=rng.randint(0, 10**9), due_date=date(2026, 1, 1).fromordinal(
                      rng.randint(700_000, 800_000)), remind_at_ms=rng.randint(0, 4 * 10**12),
                  send_by_ms=rng.randint(0, 4 * 10**12), as_of_ms=rng.randint(0, 4 * 10**12),
                  stage=stage)


def test_a_records_written_out_json_is_what_json_dumps_makes_of_its_wire_object() -> None:
    rng = random.Random(RNG_SEED)
    for _ in range(3_000):
        record = _record(rng)
        for schema in (None, "date_format", "renamed_field"):
            assert wire_json(record, schema) == json.dumps(as_wire(record, schema)), record
