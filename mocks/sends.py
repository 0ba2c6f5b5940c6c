"""The record of every send a vendor mock accepted, duplicates included, kept in the journal."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus

from aiohttp import web

from harness.journal import JournalWriter, SendRecorded, read_journal
from mocks.catalogue import all_secret_keys
from mocks.manifest import TOKEN_HEADER, Channel

MASK = "***"
"""What the record keeps in place of a secret."""

_SCHEMED_HEADERS = frozenset({"authorization", "proxy-authorization"})
_SECRET_HEADERS = frozenset({TOKEN_HEADER.lower(), "cookie", "x-amz-security-token",
                             "x-acs-security-token"})
_SIGNED_FIELDS = frozenset({
    "sig", "signature", "x-amz-signature", "x-amz-security-token", "securitytoken",
    "accesskeysecret", "secretkey", "password", TOKEN_HEADER.lower()})
"""Names of the request fields whose value is a signature, a session token or a secret under a
wire name of its own: Vonage's sig, Alibaba's Signature, presigned AWS queries, ... (with the
vendors' secret credentials, `all_secret_keys`, they are the fields `mask_text` masks)."""


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """A secret field in a query or form, in JSON, in multipart: built when first used, once
    every vendor module (which imports this one) has declared its secret keys."""
    names = "|".join(re.escape(name) for name in sorted(
        all_secret_keys() | _SIGNED_FIELDS, key=len, reverse=True))
    return (re.compile(rf"(?i)((?:^|&)(?:{names})=)[^&]*"),
            re.compile(rf'(?i)("(?:{names})"\s*:\s*)"(?:[^"\\]|\\.)*"'),
            re.compile(rf'(?is)(name="(?:{names})"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n).*?(?=\r\n--)'))


def mask_text(text: str) -> str:
    """`text` (a query string or a body: form, JSON or multipart) with the value of every
    secret field replaced by MASK, the rest as it was."""
    pair, json_string, part = _patterns()
    # Each pattern needs a character that most texts lack (a form has no quote): a look for
    # it is far cheaper than a regular expression's scan (measured under bench/run's load).
    # A search that finds nothing costs half a substitution that changes nothing.
    if "=" in text and pair.search(text):
        text = pair.sub(rf"\1{MASK}", text)
    if '"' in text:
        text = json_string.sub(rf'\1"{MASK}"', text)
        text = part.sub(rf"\1{MASK}", text)
    return text


@dataclass(frozen=True)
class Secrets:
    """One vendor's secret credential values, in every form they travel in: as they are,
    URL-encoded, and in HTTP Basic auth with each of its other credentials (`sid:token`)."""

    pattern: re.Pattern[str] | None
    """Any of those forms; None when the vendor has no secret."""
    repr_safe: bool = False
    """Whether every form is printable ASCII without quotes or backslashes: `repr` then keeps
    each as it is, wherever it is in a request, and one scan of it can rule them all out."""

    @classmethod
    def of(cls, credentials: Mapping[str, str], secret_keys: Set[str]) -> Secrets:
        """The secrets among `credentials` (those named in `secret_keys`)."""
        forms: set[str] = set()
        for key in secret_keys & credentials.keys():
            secret = credentials[key]
            plain = {secret, *(base64.b64encode(pair.encode()).decode()
                               for other, value in credentials.items() if other != key
                               for pair in (f"{value}:{secret}", f"{secret}:{value}"))}
            forms |= {encoded for form in plain
                      for encoded in (form, quote(form, safe=""), quote_plus(form))}
        forms.discard("")
        # Longest first: a form that contains another is masked whole.
        alternatives = "|".join(map(re.escape, sorted(forms, key=len, reverse=True)))
        repr_safe = all(form.isascii() and form.isprintable() and not set(form) & set("'\"\\")
                        for form in forms)
        return cls(re.compile(alternatives) if forms else None, repr_safe)

    def mask(self, request: dict[str, object]) -> dict[str, object]:
        """A raw request (`raw_request`) with every form of these secrets replaced by MASK,
        wherever it is (path, query, a header, the body), whatever field carries it."""
        pattern = self.pattern
        if pattern is None:
            return request
        # One scan of it all: a request rarely carries a secret's value. The repr, made in C,
        # holds more than the strings `_mask` looks into (a list's), so a find there is checked.
        if self.repr_safe and pattern.search(repr(request)) is None:
            return request
        if pattern.search("\0".join(self._texts(request))) is None:
            return request
        return {key: self._mask(pattern, value) for key, value in request.items()}

    @staticmethod
    def _texts(request: dict[str, object]) -> list[str]:
        """Every string `_mask` would look into: values, and names and values of dicts."""
        texts: list[str] = []
        dicts: list[Mapping[Any, object]] = [request]
        while dicts:
            for key, value in dicts.pop().items():
                for item in (key, value):
                    if isinstance(item, str):
                        texts.append(item)
                    elif isinstance(item, dict):
                        dicts.append(item)
        return texts

    @classmethod
    def _mask(cls, pattern: re.Pattern[str], value: object) -> object:
        if isinstance(value, str):
            return pattern.sub(MASK, value)
        if isinstance(value, dict):  # the headers
            return {cls._mask(pattern, key): cls._mask(pattern, item)
                    for key, item in value.items()}
        return value


def mask_header(name: str, value: str) -> str:
    """A header's value for the record: an authorization keeps its scheme only (Basic auth is
    the secret itself; a signature scheme's Signature is derived from it), and the run's token
    and session tokens are masked whole."""
    lowered = name.lower()
    if lowered in _SCHEMED_HEADERS:
        scheme = value.split(" ", 1)[0]
        return f"{scheme} {MASK}" if " " in value else MASK
    return MASK if lowered in _SECRET_HEADERS else value


async def raw_request(request: web.Request) -> dict[str, object]:
    """The request as it came over the wire, for the record, with its secret fields masked by
    name (the journal is readable by whoever can read the run folder); the vendor also masks
    its own secrets' values wherever they are (`Secrets`) before the record keeps it."""
    return request_record(request.method, request.path, request.rel_url.raw_query_string,
                          masked_headers(request.headers.items()), await request.read())


def masked_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as the record keeps them: in order (a repeated name keeps its last value), each
    value through `mask_header`."""
    return {name: mask_header(name, value) for name, value in headers}


def request_record(method: str, path: str, query: str, headers: dict[str, str],
                   body: bytes) -> dict[str, object]:
    """`raw_request`'s record of a request from its parts (a fast path has no aiohttp request):
    `path` decoded, `query` as sent, `headers` already masked (`masked_headers`)."""
    return {
        "method": method,
        "path": path,
        "query": mask_text(query),
        "headers": headers,
        "body": mask_text(body.decode("utf-8", "replace")),
    }


class SendRecord:
    """Appends accepted sends to the journal (flushed per send), the one copy of the record.

    No vendor de-duplicates sends, so neither does the record.
    """

    def __init__(self, journal: JournalWriter) -> None:
        self._journal = journal

    def add(self, *, vendor: str, message_id: str, to: str, body: str,
            client_ref: str | None, request: dict[str, object],
            handset: Literal["delivered", "spam", "absent", "dropped"] = "delivered",
            request_of: str | None = None, channel: Channel = "sms") -> SendRecorded:
        """Record one accepted message (sent by `channel`); if the handset got it, it arrived
        now. The send comes back without its raw request, which only the journal keeps (a long
        run holds many), and without the journal's stamps (source, sequence).

        `request_of` names the send of the same call that carries the raw request (the first
        recipient of a multi-recipient call): this one is journaled without it."""
        now = time.time()
        arrived = handset in ("delivered", "spam")
        send = SendRecorded(
            t=now, channel=channel, vendor=vendor, message_id=message_id, to=to, body=body,
            client_ref=client_ref, handset=handset, inbox_at=now if arrived else None,
            request={} if request_of is not None else request, request_of=request_of)
        self._journal.append(send)
        return send.model_copy(update={"request": {}})

    def routes(self, vendor: str) -> list[web.RouteDef]:
        """`GET /__notifychaos/sends`: this vendor's record, for humans and tests."""

        async def listing(_: web.Request) -> web.Response:
            # Off the event loop: a long run's journal takes a while to read.
            journal = await asyncio.to_thread(read_journal, self._journal.path.parent)
            sends = journal.of(SendRecorded)
            mine = [s.model_dump(exclude={"request"}) for s in sends if s.vendor == vendor]
            return web.json_response({"vendor": vendor, "sends": mine})

        return [web.get("/__notifychaos/sends", listing)]
