"""botwarden.keys.address_of gives eth_account's address for every key (and refuses non-keys)."""
from __future__ import annotations

import random

import pytest
from eth_account import Account

from botwarden.keys import address_of, checksum_address


@pytest.mark.parametrize("key", [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",  # the paper dev key
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",  # without 0x
    # Fixed pseudo-random keys: every pytest-xdist worker must collect the same test ids.
    *("0x" + random.Random(seed).randbytes(32).hex() for seed in range(20)),
])
def test_the_address_is_the_ethereum_address_of_the_key(key: str) -> None:
    assert address_of(key) == Account.from_key(key).address.lower()
    assert checksum_address(address_of(key)) == Account.from_key(key).address  # EIP-55


@pytest.mark.parametrize("key", ["", "0x", "0x1234", "zz" * 32, "00" * 32, "ff" * 32])
def test_a_non_key_is_a_value_error_that_does_not_quote_it(key: str) -> None:
    with pytest.raises(ValueError) as err:
        address_of(key)
    assert key[2:] not in str(err.value) or not key[2:]
