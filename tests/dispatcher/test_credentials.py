from __future__ import annotations

import pytest

from dispatcher.credentials import check_secret, hash_secret, new_token, split_token


def test_a_new_token_splits_back_into_its_key_id_and_a_secret_that_matches_the_stored_hash() -> None:
    made = new_token("adv")

    parts = split_token(made.token, "adv")

    assert parts is not None
    assert parts.key_id == made.key_id
    assert check_secret(made.secret_hash, parts.secret)
    assert parts.secret not in made.secret_hash


def test_the_same_secret_hashes_differently_each_time_because_of_the_salt() -> None:
    assert hash_secret("same") != hash_secret("same")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "adv",
        "adv_",
        "pub_0123456789ab_secret",
        "adv_short_secret",
        "adv_0123456789ab_",
        "Bearer adv_x_y",
        "adv_0123456789aZ_secret",
        "adv_01234567\x0089a_secret",
        "adv_0123456789ab_sec\x00ret",
        "adv_0123456789ab_sec ret",
    ],
)
def test_malformed_or_foreign_tokens_are_not_split(token: str) -> None:
    assert split_token(token, "adv") is None


@pytest.mark.parametrize("stored", [None, "", "md5$salt$digest", "garbage"])
def test_unknown_stored_hashes_never_match(stored: str | None) -> None:
    assert not check_secret(stored, "anything")
