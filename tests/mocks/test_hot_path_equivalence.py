"""The send path's shortcuts give what the long way gave: Twilio's dates, masking by field name
and by a vendor's secret values."""

from __future__ import annotations

import random
from email.utils import formatdate
from urllib.parse import urlencode

from mocks.sends import MASK, Secrets, _patterns, mask_text
from mocks.twilio import _rfc2822, form_encoded

RNG_SEED = 11


def test_twilio_dates_read_as_email_formatdate_writes_them() -> None:
    rng = random.Random(RNG_SEED)
    # Within a second and across one (the dates are made once a second).
    times = [0.0, 951782400.0, 1764633599.0, 1764633599.999, 1764633600.0, 1764633599.5,
             4102444800.0,
             *(rng.uniform(0, 4.2e9) for _ in range(20_000))]
    for t in times:
        assert _rfc2822(t) == formatdate(t, usegmt=True).replace("GMT", "+0000"), t


def _masked_the_long_way(text: str) -> str:
    pair, json_string, part = _patterns()
    text = pair.sub(rf"\1{MASK}", text)
    text = json_string.sub(rf'\1"{MASK}"', text)
    return part.sub(rf"\1{MASK}", text)


TEXTS = [
    "", "To=%2B8613800000001&From=%2B15005550006&Body=due+ref%3AX", "Signature=abc&x=1",
    '{"password": "hunter2", "to": "+86138"}', '{"AccessKeySecret":"s\\"q"}',
    "a=b&SIG=zz", '{"note": "no secret"}', "sig",
    '--b\r\nContent-Disposition: form-data; name="password"\r\n\r\nsecret\r\n--b--\r\n',
    'name="sig"=', "plain text, no field", '"quoted" but = nothing secret',
]


def test_masking_by_field_name_matches_all_three_patterns_applied_in_turn() -> None:
    rng = random.Random(RNG_SEED)
    pieces = [*TEXTS, "&", "=", '"', ":", "\r\n", "--", "password", "sig"]
    generated = ["".join(rng.choices(pieces, k=rng.randint(1, 6))) for _ in range(2_000)]
    for text in [*TEXTS, *generated]:
        assert mask_text(text) == _masked_the_long_way(text), text


def test_secret_values_are_masked_wherever_they_are_and_a_clean_request_is_left_alone() -> None:
    secrets = Secrets.of({"account_sid": "AC1", "auth_token": "tok3n"}, {"auth_token"})
    clean: dict[str, object] = {"method": "POST", "path": "/x", "query": "",
                                "headers": {"Host": "h", "Authorization": "Basic ***"},
                                "body": "To=1", "rcpt_to": ["tok3n"]}
    assert secrets.mask(clean) is clean
    leaky: dict[str, object] = {**clean, "query": "t=tok3n",
                                "headers": {"X-tok3n": "v", "Y": {"deep": "tok3n"}}}
    assert secrets.mask(leaky) == {
        **clean, "query": f"t={MASK}", "headers": {f"X-{MASK}": "v", "Y": {"deep": MASK}},
        "rcpt_to": ["tok3n"]}  # lists were never looked into, as before


def test_a_callbacks_form_is_encoded_as_urlencode_encodes_it() -> None:
    rng = random.Random(RNG_SEED)
    pieces = ["SM0a9f", "+8613800000001", " ", "+", "&", "=", "%", "~", ".", "-", "_", "/",
              "\u00e9", "\u4f60", "\x00", "\U0001f600", "delivered", "2010-04-01", ""]

    def text() -> str:
        return "".join(rng.choices(pieces, k=rng.randint(0, 5)))

    for _ in range(3_000):
        params = {text(): text() for _ in range(rng.randint(0, 10))}
        assert form_encoded(params) == urlencode(params), params
