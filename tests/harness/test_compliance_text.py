"""What a message's text shows of a borrower's personal data, with known answers: whole and
masked national ids (with the check character X), card numbers with spaces, phones in both
forms, the last-four allowance, and no false positive on amounts, dates and references."""

from __future__ import annotations

import pytest

from harness.compliance import PersonalData, exposed, lacks_notice, shown
from mocks.bank import Bank, Changes, Population

ID = "11010519900307005X"  # GB 11643: its check character is X
CARD = "6222020909213476"
PHONE = "13800138000"
PERSON = PersonalData(national_id=ID, account=CARD, phones=(PHONE, "13912345678"))
# What the reference notifier writes: name, amount, due date, the card's last four, the ref.
REFERENCE = ("【某银行】尊敬的王伟，您尾号3476的房贷本期还款5,234.00元将于2026-12-05到期，"
             "请按时还款。ref:K9X2Q7ZP 回T退订")


@pytest.mark.parametrize(("body", "value", "expected"), [
    (f"身份证号{ID}", ID, 18),
    ("身份证号 11010519900307005x", ID, 18),                # the check character in lower case
    ("ID11010519900307005X.", ID, 18),                      # touching letters
    ("110105 19900307 005X", ID, 18),                       # spaces between groups
    ("证件 110105********005X", ID, 10),                    # half masked: 10 kept in place
    ("证件 110105****005X", ID, 10),                        # fewer masks: the start and end
    ("证件 ****************5X", ID, 2),
    ("证件 ****005X", ID, 4),
    ("证件尾号005X", ID, 4),
    ("卡号 6222 0209 0921 3476", CARD, 16),
    ("卡号6222-0209-0921-3476。", CARD, 16),
    ("卡号 6222 **** **** 3476，到期日 2026-12-05", CARD, 8),  # one piece of a longer run
    ("卡号 6222********3476", CARD, 8),
    ("卡号 **** **** **** 3476", CARD, 4),
    ("卡号 •••• 3476", CARD, 4),
    ("卡号 ＊＊＊＊3476", CARD, 4),
    ("卡号 xxxx-xxxx-xxxx-3476", CARD, 4),
    ("尾号3476", CARD, 4),
    ("致电 +86 138 0013 8000", PHONE, 11),
    ("致电+8613800138000", PHONE, 11),
    ("致电 008613800138000", PHONE, 11),
    ("致电 13800138000", PHONE, 11),                        # the national form
    ("致电 138****8000", PHONE, 7),
    ("致电 +86 138****8000", PHONE, 7),
    ("致电 *******8000", PHONE, 4),
    (REFERENCE, CARD, 4),
    (REFERENCE, ID, 0),
    (REFERENCE, PHONE, 0),
])
def test_a_text_shows_the_characters_it_keeps(body: str, value: str, expected: int) -> None:
    assert shown(body, value, phone=value == PHONE) == expected


@pytest.mark.parametrize("body", [
    "您的房贷本期还款5234.00元，应还 ¥3,476.00，2026-12-05到期",   # amounts, a date
    "还款 13,800,138,000.00 元",                                    # grouped digits of the phone
    "ref:X3476ABC ref:AB005X3476 ref:3476ABCD",                     # references around 3476
    "日期 2026年12月05日 共 12 期 第 3 期",
])
def test_amounts_dates_and_references_show_nothing(body: str) -> None:
    assert exposed(body, PERSON, 0) == ()


def test_the_last_four_are_allowed_by_default_and_exposed_with_visible_zero() -> None:
    for body in ("尾号3476", "卡号 ****3476", REFERENCE):
        assert exposed(body, PERSON, 4) == ()
        assert exposed(body, PERSON, 0) == ("account",)
    assert exposed("尾号3476", PERSON, 3) == ("account",)


def test_each_exposed_field_is_named_once_in_order_by_what_it_kept() -> None:
    body = "致电 +86 138****8000 或 139****5678；证件 110105********005X；卡号 6222****3476"
    assert exposed(body, PERSON, 4) == ("national_id", "account", "phone")  # 10, 8, 7 kept
    assert exposed(body, PERSON, 7) == ("national_id", "account")
    assert exposed(body, PERSON, 8) == ("national_id",)
    assert exposed(body, PERSON, 10) == ()


def test_every_number_the_borrower_had_is_theirs() -> None:
    assert exposed("旧号码 139 1234 5678", PERSON, 10) == ("phone",)


def test_a_field_the_journal_did_not_give_is_not_checked() -> None:
    assert exposed("证件 0000", PersonalData("", "", ()), 0) == ()


def test_the_optout_notice_is_a_regular_expression_searched_in_the_text() -> None:
    assert not lacks_notice(REFERENCE, "回T退订|reply STOP")
    assert not lacks_notice("Your payment is due. Reply STOP to opt out", "(?i)reply stop")
    assert lacks_notice("您的房贷本期还款5,234.00元", "回T退订|reply STOP")


def luhn_valid(number: str) -> bool:
    """The Luhn check, written out: from the right, every second digit doubled (less 9 when
    over 9); the sum is a multiple of 10."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_luhn_valid_knows_a_good_and_a_bad_card() -> None:
    assert luhn_valid("4539578763621486") and not luhn_valid("4539578763621487")


def test_the_banks_ids_have_gb_11643_check_characters_and_its_cards_pass_luhn() -> None:
    bank = Bank(Population(borrowers=400), Changes(), lead=5.0, window=20.0, seed=7)
    borrowers = [bank.borrower(index) for index in range(400)]
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for borrower in borrowers:
        body, check = borrower.national_id[:17], borrower.national_id[17]
        assert len(borrower.national_id) == 18 and body.isdigit()
        total = sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True))
        assert check == "10X98765432"[total % 11]
        assert len(borrower.account) == 16 and luhn_valid(borrower.account)
    assert any(b.national_id.endswith("X") for b in borrowers)  # the X case is met


def test_the_banks_own_data_is_caught_whole_and_half_masked() -> None:
    bank = Bank(Population(borrowers=50), Changes(), lead=5.0, window=20.0, seed=3)
    for index in range(50):
        borrower = bank.borrower(index)
        person = PersonalData(borrower.national_id, borrower.account,
                              (borrower.phone.removeprefix("+86"),))
        nid, card, phone = borrower.national_id, borrower.account, borrower.phone
        assert exposed(f"身份证{nid}", person, 4) == ("national_id",)
        assert exposed(f"证件{nid[:6]}********{nid[-4:]}", person, 4) == ("national_id",)
        assert exposed(f"卡号 {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}", person,
                       4) == ("account",)
        assert exposed(f"请致电 {phone}", person, 4) == ("phone",)
        assert exposed(f"尊敬的{borrower.name}，您尾号{card[-4:]}的房贷本期还款5,234.00元将于"
                       "2026-12-05到期。ref:AB12CD34 回T退订", person, 4) == ()
