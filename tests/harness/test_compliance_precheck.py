"""`exposed` skips reading a text that cannot show a field past `visible` (a cheap necessary
condition): over random texts of digits, masks, separators and letters, it finds exactly the
fields that reading every text finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.compliance import PersonalData, PersonalField, exposed, shown

_VALUES = st.text(alphabet="0123456789X", min_size=3, max_size=19)
_TEXT = st.text(alphabet="0123456789*＊•●×xX -+.,尾号AbREF:", max_size=60)


def _fragment(value: str) -> st.SearchStrategy[str]:
    """Pieces of a value as a message may write them: whole, its ends, masked, spaced."""
    return st.sampled_from([
        value, value[-4:], value[-5:], value[:3] + "****" + value[-4:], "尾号" + value[-4:],
        " ".join(value), "-".join(value[i:i + 4] for i in range(0, len(value), 4)),
        "+86 " + value, "0086" + value, value.lower(), "*" * len(value)])


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, PersonalData, int]:
    person = PersonalData(national_id=draw(_VALUES), account=draw(_VALUES),
                          phones=tuple(draw(st.lists(_VALUES, max_size=2))))
    parts = [draw(_TEXT)]
    for _ in range(draw(st.integers(0, 3))):
        value = draw(st.sampled_from([person.national_id, person.account, *person.phones]))
        parts += [draw(_fragment(value)), draw(_TEXT)]
    return "".join(parts), person, draw(st.integers(0, 8))


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(_cases())
def test_exposed_finds_what_reading_every_text_finds(case: tuple[str, PersonalData, int]
                                                    ) -> None:
    body, person, visible = case
    everything: list[PersonalField] = []
    for name, value in person.fields():
        if name not in everything and shown(body, value, name == "phone") > visible:
            everything.append(name)
    assert exposed(body, person, visible) == tuple(everything)
