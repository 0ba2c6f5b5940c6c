"""Whose push token is whose: `Bank.token_owner`, which the push service mock asks."""

from __future__ import annotations

from mocks.bank import Bank, Changes, Population


def _bank(**population: float) -> Bank:
    return Bank(Population(borrowers=50, **population), Changes(), lead=5, window=20, seed=3)


def test_a_made_borrowers_token_is_theirs() -> None:
    bank = _bank()
    borrower = bank.borrower(7)
    assert borrower.device_token
    assert bank.token_owner(borrower.device_token) == borrower
    assert bank.token_owner(borrower.device_token + "x") is None


def test_a_token_is_nobodys_until_its_borrower_is_made() -> None:
    token = _bank().borrower(9).device_token
    other = _bank()  # same seed: the same token, but borrower 10 not made yet
    assert other.token_owner(token) is None
    other.borrower(9)
    assert other.token_owner(token) is not None


def test_borrowers_without_the_app_have_no_token_to_own() -> None:
    bank = _bank(app_users=0.0)
    assert bank.borrower(0).device_token == ""
    assert bank.token_owner("") is None
