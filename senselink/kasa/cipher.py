"""The Kasa XOR autokey cipher and the TCP length-prefix framing.

Encryption: ``c[i] = p[i] ^ c[i-1]`` with ``c[-1] = 171``.
Decryption: ``p[i] = c[i] ^ c[i-1]``: the ciphertext XORed with itself shifted
right by one byte (first byte against 171), which big-integer XOR does in bulk.
"""

import struct

INITIAL_KEY = 171
_LENGTH = struct.Struct(">I")

# Precomputed per-key XOR tables make the byte-serial encryption loop one
# table lookup per byte.
_XOR = [bytes(k ^ p for p in range(256)) for k in range(256)]


def encrypt(plaintext: bytes) -> bytes:
    """Encrypt C{plaintext} (the UDP form: no length prefix)."""
    key = INITIAL_KEY
    out = bytearray(len(plaintext))
    xor = _XOR
    for i, byte in enumerate(plaintext):
        key = xor[key][byte]
        out[i] = key
    return bytes(out)


def decrypt(ciphertext: bytes) -> bytes:
    """Decrypt C{ciphertext} (the UDP form: no length prefix)."""
    n = len(ciphertext)
    if not n:
        return b""
    shifted = bytes((INITIAL_KEY,)) + ciphertext[:-1]
    value = int.from_bytes(ciphertext, "big") ^ int.from_bytes(shifted, "big")
    return value.to_bytes(n, "big")


def frame(ciphertext: bytes) -> bytes:
    """Prefix C{ciphertext} with its 4-byte big-endian length (TCP framing)."""
    return _LENGTH.pack(len(ciphertext)) + ciphertext


def frame_length(header: bytes) -> int:
    """Read the payload length from a 4-byte TCP frame header."""
    return _LENGTH.unpack(header)[0]


HEADER_SIZE = _LENGTH.size
