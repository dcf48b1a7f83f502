#!/usr/bin/env python3
"""Checks that syncbn's safetensors files are what Python readers expect, both ways.

Debian bookworm has no python3-safetensors, so this reads and writes the format with json, struct
and numpy only, applying the same checks the reference implementation makes (header starts with
'{', no duplicate keys, string-only metadata, offsets tiling the data). Exit 77 (skipped) when
numpy is missing.

usage: safetensors_interop.py PATH/TO/syncbn_safetensors_tool
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

try:
    import numpy as np
except ImportError:
    print("numpy is not installed: skipping")
    sys.exit(77)

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"), "U8": np.dtype("u1")}
NAMES = {v: k for k, v in DTYPES.items()}
TOOL_DTYPES = {"float32": "F32", "float64": "F64", "int64": "I64", "uint8": "U8"}


def expected_tensors():
    """What `syncbn_safetensors_tool write` saves, computed independently."""
    return {
        "f32": (np.arange(6, dtype=np.float64) * 0.5 - 1.0).astype("<f4").reshape(2, 3),
        "f64": np.arange(4, dtype="<f8") + 0.25,
        "i64": np.array(-123456789012, dtype="<i8"),
        "u8": np.array([0, 127, 255], dtype="u1"),
        "empty": np.zeros((0, 2), dtype="<f4"),
        'na\u00efve "q"': np.array([7.5], dtype="<f4"),
    }


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
    return dict(pairs)


def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n <= 100_000_000 and 8 + n <= len(data), "bad header length"
    text = data[8 : 8 + n].decode("utf-8")
    assert text.startswith("{"), "header must start with '{'"
    header = json.loads(text, object_pairs_hook=no_duplicates)
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    buf = data[8 + n :]
    cursor = 0
    for (begin, end), name in sorted((tuple(v["data_offsets"]), k) for k, v in header.items()):
        assert begin == cursor, f"{name}: hole or overlap at {begin}"
        cursor = end
    assert cursor == len(buf), "trailing data"
    tensors = {}
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, info
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(buf[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, meta, 8 + n, file_crc(data)


def file_crc(data):
    """syncbn's checksum (format version 2): CRC-32 of the whole file, its own digits as '0'."""
    key = b'"syncbn.crc32":"'
    i = data.index(key) + len(key)
    return zlib.crc32(data[:i] + b"00000000" + data[i + 8 :])


def write(path, tensors, meta, separators=None):
    """Another writer's layout: largest dtype first, json.dumps spacing and \\u escapes.
    Returns the CRC-32 of the data section and the file's bytes."""
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name, arr in sorted(tensors.items(), key=lambda kv: (-kv[1].itemsize, kv[0])):
        blob = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=separators).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    data = b"".join(blobs)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return zlib.crc32(data), struct.pack("<Q", len(text)) + text + data


def write_v2(path, tensors, meta, separators):
    """A format-version-2 file with its whole-file checksum, as syncbn writes them."""
    meta = dict(meta, **{"syncbn.format_version": "2", "syncbn.crc32": "00000000"})
    _, data = write(path, tensors, meta, separators)
    if b'"syncbn.crc32":"' not in data:
        return  # spaced out: a reader cannot find the digits to verify
    crc = f"{file_crc(data):08x}".encode()
    with open(path, "wb") as f:
        f.write(data.replace(b'"syncbn.crc32":"00000000"', b'"syncbn.crc32":"' + crc + b'"'))


def check_equal(got, want, what):
    assert set(got) == set(want), f"{what}: names {sorted(got)} != {sorted(want)}"
    for name, arr in want.items():
        g = got[name]
        assert g.dtype == arr.dtype and g.shape == arr.shape, f"{what} {name}: {g.dtype}{g.shape} vs {arr.dtype}{arr.shape}"
        assert np.array_equal(g, arr), f"{what} {name}: {g} != {arr}"


def dump(tool, path):
    run = subprocess.run([tool, "dump", path], capture_output=True, text=True)
    if run.returncode != 0:
        return None, run.stderr
    tensors = {}
    for line in run.stdout.splitlines():
        name_hex, dtype, shape, values = (line.split(" ") + [""])[:4]
        dt = DTYPES[TOOL_DTYPES[dtype]]
        dims = [int(d) for d in shape.split(",")] if shape else []
        vals = [float(v) for v in values.split(",")] if values else []
        tensors[bytes.fromhex(name_hex).decode("utf-8")] = np.array(vals, dtype=np.float64).astype(dt).reshape(dims)
    return tensors, run.stderr


def main(tool):
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "ours.safetensors")
        subprocess.run([tool, "write", ours], check=True)
        tensors, meta, data_start, crc = read(ours)
        check_equal(tensors, expected_tensors(), "syncbn -> python")
        assert data_start % 8 == 0, "data section not 8-byte aligned"
        assert meta["note"] == 'hello "world"\n\u2713', meta
        assert meta["syncbn.format_version"] == "2"
        assert meta["syncbn.crc32"] == f"{crc:08x}", (meta, crc)

        theirs = os.path.join(tmp, "theirs.safetensors")
        crc, _ = write(theirs, expected_tensors(), {"format": "pt"})
        got, err = dump(tool, theirs)
        assert got is not None, err
        check_equal(got, expected_tensors(), "python -> syncbn")

        write(theirs, expected_tensors(), {"syncbn.format_version": "1", "syncbn.crc32": f"{crc:08x}"})
        got, err = dump(tool, theirs)
        assert got is not None, f"a correct checksum written by Python was refused: {err}"
        write(theirs, expected_tensors(), {"syncbn.crc32": f"{crc ^ 1:08x}"})
        got, err = dump(tool, theirs)
        assert got is None and "checksum mismatch" in err, err

        write_v2(theirs, expected_tensors(), {"epoch": "2"}, separators=(",", ":"))
        got, err = dump(tool, theirs)
        assert got is not None, f"a whole-file checksum written by Python was refused: {err}"
        data = open(theirs, "rb").read()
        with open(theirs, "wb") as f:
            f.write(data.replace(b'"epoch":"2"', b'"epoch":"1"'))
        got, err = dump(tool, theirs)
        assert got is None and "checksum mismatch" in err, f"an edited header was accepted: {err}"
        write_v2(theirs, expected_tensors(), {}, separators=(", ", ": "))
        got, err = dump(tool, theirs)
        assert got is None and "cannot verify the checksum" in err, err
    print("safetensors interop: ok")


if __name__ == "__main__":
    main(sys.argv[1])
