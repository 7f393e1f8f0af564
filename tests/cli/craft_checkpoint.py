#!/usr/bin/env python3
"""Writes a hostile copy of an embsr checkpoint: one config field changed (or one parameter value
set, or the model's name), then the size field and the FNV-1a 64 trailer recomputed, as someone who
knows the format would do. The reader must refuse it for what it says, not for its checksum.

    craft_checkpoint.py IN OUT FIELD=VALUE      FIELD: a model option (num_items, d, w_k, ...)
    craft_checkpoint.py IN OUT value0=nan        the first parameter value (float32: nan, inf, ...)
    craft_checkpoint.py IN OUT model=NAME        the model's name (version 3)

The layout follows include/embsr/io/checkpoint_format.hpp. Version 3 (what the tools write) keeps
the options as text (key and value strings after the model's name); versions 1 and 2 keep an EMBSR
Config at fixed offsets after the 24-byte header.
"""
import struct
import sys

V2_INT_FIELDS = {"num_items": 24, "num_ops": 28, "d": 32, "max_length": 36, "gnn_steps": 40}
V2_DOUBLE_FIELDS = {"dropout": 44, "w_k": 52, "init_std": 60}


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def read_string(b: bytes, pos: int):
    (n,) = struct.unpack_from("<Q", b, pos)
    return b[pos + 8:pos + 8 + n], pos + 8 + n


def string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def skip_vocabularies_and_entries(b: bytes, pos: int) -> int:
    """From the vocabularies to the first parameter value (past the value count)."""
    for _ in range(2):  # item and operation vocabularies
        (count,) = struct.unpack_from("<Q", b, pos)
        pos += 8
        for _ in range(count):
            _, pos = read_string(b, pos)
    (entries,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    for _ in range(entries):
        _, pos = read_string(b, pos)
        pos += 3 * 8
    return pos + 8


def edit_v3(b: bytes, field: str, value: str) -> bytes:
    name, pos = read_string(b, 24)
    (count,) = struct.unpack_from("<Q", b, pos)
    pos += 8
    options = []
    for _ in range(count):
        key, pos = read_string(b, pos)
        val, pos = read_string(b, pos)
        options.append([key, val])
    rest = b[pos:]
    if field == "value0":
        out = bytearray(rest)
        struct.pack_into("<f", out, skip_vocabularies_and_entries(bytes(rest), 0), float(value))
        rest = bytes(out)
    elif field == "model":
        name = value.encode()
    else:
        for option in options:
            if option[0] == field.encode():
                option[1] = value.encode()
                break
        else:
            sys.exit(f"craft_checkpoint.py: the checkpoint has no option {field}")
    model = string(name) + struct.pack("<Q", len(options)) + b"".join(string(k) + string(v) for k, v in options)
    return b[:24] + model + rest


def edit_v2(b: bytes, field: str, value: str) -> bytes:
    out = bytearray(b)
    if field in V2_INT_FIELDS:
        struct.pack_into("<i", out, V2_INT_FIELDS[field], int(value))
    elif field in V2_DOUBLE_FIELDS:
        struct.pack_into("<d", out, V2_DOUBLE_FIELDS[field], float(value))
    elif field == "value0":
        struct.pack_into("<f", out, skip_vocabularies_and_entries(b, 24 + 5 * 4 + 3 * 8 + 8 + 1 + 4 + 1 + 8), float(value))
    else:
        sys.exit(f"craft_checkpoint.py: unknown field {field} for a version-{b[8]} checkpoint")
    return bytes(out)


def main() -> None:
    src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
    field, value = edit.split("=", 1)
    b = open(src, "rb").read()
    (version,) = struct.unpack_from("<I", b, 8)
    b = bytearray(edit_v3(b, field, value) if version >= 3 else edit_v2(b, field, value))
    struct.pack_into("<Q", b, 16, len(b))
    struct.pack_into("<Q", b, len(b) - 8, fnv1a64(bytes(b[:-8])))
    open(dst, "wb").write(bytes(b))


if __name__ == "__main__":
    main()
