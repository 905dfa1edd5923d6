"""The address of a secp256k1 private key, without the Ethereum account library.

``eth_account`` (with eth_abi, eth_utils, pycryptodome's wrappers...) adds about 14 MB to a
process that imports it (measured in a fresh interpreter, 2026-12-06); the agent needs an
address to *read* the account (every exchange check) and only signs in an emergency. An address
is the last 20 bytes of the Keccak-256 of the uncompressed public key: coincurve (libsecp256k1)
computes the public key and pycryptodome's Keccak the hash, both already installed for the SDK.
``tests/test_keys.py`` checks the result against eth_account for a table of keys.
"""
from __future__ import annotations

import sys

from coincurve import PrivateKey
from Crypto.Hash import keccak


def address_of(key: str) -> str:
    """The lower-case 0x address of a hex private key (``0x`` optional); ``ValueError`` when it is
    not a valid secp256k1 key (the message never quotes the key)."""
    text = key[2:] if key.startswith(("0x", "0X")) else key
    try:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError
        public = PrivateKey(raw).public_key.format(compressed=False)[1:]
    except ValueError:
        raise ValueError("not a 32-byte secp256k1 private key in hex") from None
    digest = keccak.new(digest_bits=256)
    digest.update(public)
    return "0x" + digest.hexdigest()[-40:]


def checksum_address(address: str) -> str:
    """``address`` in EIP-55 mixed case (what wallets and Hyperliquid's app show)."""
    hexpart = address.lower().removeprefix("0x")
    digest = keccak.new(digest_bits=256)
    digest.update(hexpart.encode())
    nibbles = digest.hexdigest()
    return "0x" + "".join(c.upper() if c.isalpha() and int(nibbles[i], 16) >= 8 else c for i, c in enumerate(hexpart))


def main() -> int:
    """``python -m botwarden.keys``: the address of the key on stdin (for a process that must not
    load the crypto libraries itself, e.g. the resident agent); exit 1 on a non-key."""
    try:
        print(checksum_address(address_of(sys.stdin.read().strip())))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
