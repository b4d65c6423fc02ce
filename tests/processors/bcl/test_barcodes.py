"""Index matching with whole arrays (packed integers, a direct table for short
indexes, sorted variants for no-calls and long ones) gives the same sample and
mismatches as matching each distinct index in Python, including reads within reach
of two codes of one index (left to Python) and collisions found with arrays."""

from __future__ import annotations

import numpy as np

from processors.bcl.barcodes import (
    AMBIGUOUS,
    LaneBarcodes,
    _first_collision,
    _first_collision_slow,
    _variants,
    pack_bases,
    variant_table,
)


def reads_near(rng, codes, n):
    """n index reads, each a random code with up to three random changes (N too)."""
    out = []
    for _ in range(n):
        read = list("".join(codes[int(rng.integers(0, len(codes)))]))
        for _ in range(int(rng.integers(0, 4))):
            read[int(rng.integers(0, len(read)))] = str(rng.choice(list("ACGTN")))
        out.append("".join(read).encode())
    return np.frombuffer(b"".join(out), np.uint8).reshape(n, -1)


def test_array_matching_agrees_with_python():
    rng = np.random.default_rng(3)
    decided_by_arrays = 0
    for trial in range(40):
        length7 = int(rng.integers(4, 13))  # past 10: no direct table
        length5 = int(rng.integers(0, 9))
        mismatches = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        base = "".join(rng.choice(list("ACGT"), length7))
        codes = []
        for _ in range(int(rng.integers(1, 12))):
            i7 = list(base)  # close to each other: reads within reach of two codes
            for _ in range(int(rng.integers(0, 3))):
                i7[int(rng.integers(0, length7))] = str(rng.choice(list("ACGT")))
            i5 = "".join(rng.choice(list("ACGT"), length5))
            codes.append(("".join(i7), i5) if length5 else ("".join(i7),))
        codes = list(dict.fromkeys(codes))
        lengths = (length7, length5) if length5 else (length7,)
        arrays = LaneBarcodes(1, codes, lengths, mismatches[: len(lengths)])
        python = LaneBarcodes(1, codes, lengths, mismatches[: len(lengths)])
        python._sample_of = None  # per distinct sequence only
        observed = reads_near(rng, codes, 2000)
        samples, distances = arrays.match(observed)
        expected_samples, expected_distances = python.match(observed)
        assert np.array_equal(samples, expected_samples), trial
        assert np.array_equal(distances, expected_distances), trial
        decided_by_arrays += int((samples >= 0).sum())
    assert decided_by_arrays > 10_000


def test_variant_table_holds_what_python_generates():
    rng = np.random.default_rng(5)
    for trial in range(100):
        length, mismatches = int(rng.integers(1, 9)), int(rng.integers(0, 3))
        letters = list("ACGTN" if trial % 3 == 0 else "ACGT")
        codes = list(
            dict.fromkeys(
                "".join(rng.choice(letters, length)) for _ in range(int(rng.integers(1, 15)))
            )
        )
        table: dict[bytes, list] = {}
        for code_id, code in enumerate(codes):
            for variant, distance in _variants(code.encode(), mismatches):
                table.setdefault(variant, []).append((code_id, distance))
        keys = pack_bases(np.array([list(v) for v in table], np.uint8))
        expected = {
            int(key): (found[0] if len(found) == 1 else (AMBIGUOUS, None))
            for key, found in zip(keys, table.values(), strict=True)
        }
        got = {
            int(key): (int(code), int(distance) if code != AMBIGUOUS else None)
            for key, code, distance in zip(*variant_table(codes, mismatches), strict=True)
        }
        assert got == expected, (codes, mismatches)


def test_first_collision_found_with_arrays_is_pythons():
    rng = np.random.default_rng(9)
    found = 0
    for _ in range(200):
        length = int(rng.integers(1, 9))
        barcodes = [
            tuple("".join(rng.choice(list("ACGTN"), size)) for size in (length, 3))
            for _ in range(int(rng.integers(1, 15)))
        ]
        mismatches = (int(rng.integers(0, 3)), int(rng.integers(0, 2)))
        pair = _first_collision(barcodes, mismatches)
        assert pair == _first_collision_slow(barcodes, mismatches)
        found += pair[0] is not None
    assert 0 < found < 200
