"""Consistent Overhead Byte Stuffing (COBS), pure functions.

Canonical COBS as in Cheshire & Baker (1999) and ``cobs-python``: a run of 254
non-zero bytes is coded ``0xFF`` with no implied zero, and a trailing ``0xFF``
block is *not* followed by a ``0x01`` code. The C encoder in
``firmware/edgewatch_adxl345/src/ewframe.c`` produces the same bytes; the golden
vectors in ``tests/vectors/`` pin both.
"""

from __future__ import annotations

__all__ = ["CobsError", "encode", "decode", "max_encoded_len"]


class CobsError(ValueError):
    """The input is not a valid COBS encoding (zero byte, or a code past the end)."""


def max_encoded_len(n: int) -> int:
    """Worst-case encoded size of ``n`` bytes (without the 0x00 delimiter)."""
    return n + n // 254 + 1


def encode(data: bytes) -> bytes:
    """COBS-encode ``data``; the result contains no zero byte.

    Splitting on zero bytes lets ``bytes.split`` do the scanning in C, which
    matters because the simulator and the benchmark encode a lot of frames.
    """
    out = bytearray()
    chunks = data.split(b"\x00")
    last = len(chunks) - 1
    for i, chunk in enumerate(chunks):
        n = len(chunk)
        pos = 0
        while n - pos >= 254:
            out.append(0xFF)
            out += chunk[pos : pos + 254]
            pos += 254
        # A final chunk that ended exactly on a 0xFF block needs no code byte.
        if pos < n or i != last or n == 0:
            out.append(n - pos + 1)
            out += chunk[pos:]
    return bytes(out)


def decode(enc: bytes) -> bytes:
    """Decode one COBS block (without its delimiter).

    Raises
    ------
    CobsError
        If ``enc`` contains a zero byte or a code byte points past its end.
    """
    if 0 in enc:
        raise CobsError("zero byte inside a COBS block")
    out = bytearray()
    i = 0
    n = len(enc)
    while i < n:
        code = enc[i]
        j = i + code
        if j > n:
            raise CobsError("COBS code points past the end of the block")
        out += enc[i + 1 : j]
        if code != 0xFF and j < n:
            out.append(0)
        i = j
    return bytes(out)
