#!/usr/bin/env python3
"""Writes a hostile copy of an embsr checkpoint: one config field changed (or one parameter value
set), then the size field and the FNV-1a 64 trailer recomputed, as someone who knows the format
would do. The reader must refuse it for what it says, not for its checksum.

    craft_checkpoint.py IN OUT FIELD=VALUE      FIELD: num_items, num_ops, d, max_length, gnn_steps
                                                 (int32) or dropout, w_k, init_std (float64)
    craft_checkpoint.py IN OUT value0=nan        the first parameter value (float32: nan, inf, ...)

Offsets follow include/embsr/io/checkpoint_format.hpp (the config starts after the 24-byte header).
"""
import struct
import sys

INT_FIELDS = {"num_items": 24, "num_ops": 28, "d": 32, "max_length": 36, "gnn_steps": 40}
DOUBLE_FIELDS = {"dropout": 44, "w_k": 52, "init_std": 60}


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def first_value_offset(b: bytes) -> int:
    """Byte offset of the first parameter value: walk the vocabularies and the entry table."""
    pos = 24 + 5 * 4 + 3 * 8 + 8 + 1 + 4 + 1 + 8  # config
    for _ in range(2):  # item and operation vocabularies
        (count,) = struct.unpack_from("<Q", b, pos)
        pos += 8
        for _ in range(count):
            (n,) = struct.unpack_from("<Q", b, pos)
            pos += 8 + n
    (entries,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    for _ in range(entries):
        (n,) = struct.unpack_from("<Q", b, pos)
        pos += 8 + n + 3 * 8
    return pos + 8  # past the value count


def main() -> None:
    src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
    field, value = edit.split("=", 1)
    b = bytearray(open(src, "rb").read())
    if field in INT_FIELDS:
        struct.pack_into("<i", b, INT_FIELDS[field], int(value))
    elif field in DOUBLE_FIELDS:
        struct.pack_into("<d", b, DOUBLE_FIELDS[field], float(value))
    elif field == "value0":
        struct.pack_into("<f", b, first_value_offset(bytes(b)), float(value))
    else:
        sys.exit(f"craft_checkpoint.py: unknown field {field}")
    struct.pack_into("<Q", b, 16, len(b))
    struct.pack_into("<Q", b, len(b) - 8, fnv1a64(bytes(b[:-8])))
    open(dst, "wb").write(bytes(b))


if __name__ == "__main__":
    main()
