"""Index matching: which sample a cluster's index reads belong to.

Two rule sets:

- BCL Convert / bcl2fastq (the default): each index may differ from the sample's in
  up to `mismatches[i]` positions, a no-call (`N`) counting as a mismatch; settings
  under which two samples of a lane could both match one read are refused up front.
- Picard's `IlluminaBasecallsToFastq`: no-calls are not mismatches but at most
  `max_no_calls` are allowed, mismatches are summed over the indexes, and the best
  sample must beat the second best by `min_mismatch_delta`.

BCL Convert's rules are matched with whole-array operations: each index read of
every cluster is packed into an integer (3 bits a base) and looked up among the
sorted sequences within the allowed mismatches of some sample's index
(`np.searchsorted`), and a table indexed by the matched codes gives the sample.
Only reads whose index lies within the allowed mismatches of two different codes
(possible when the codes are close in one index but differ in the other), Picard's
rules and indexes longer than 21 bases are matched per distinct index sequence in
Python (a tile has far fewer than it has clusters), remembering the answers
across tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations, product

import numpy as np

from processors.bcl.errors import ConversionError

LETTERS = b"ACGTN"
BASE_BITS = np.full(256, 4, dtype=np.uint64)  # any other letter packs as N
for _code, _letter in enumerate(b"ACGT"):
    BASE_BITS[_letter] = _code
COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")
BASE_CODES = BASE_BITS.astype(np.uint8)
MAX_PACKED = 21  # bases a uint64 holds at 3 bits a base
AMBIGUOUS = -2  # a variant within the allowed mismatches of two codes of one index read


def reverse_complement(sequence: str) -> str:
    return sequence.encode().translate(COMPLEMENT)[::-1].decode()


@dataclass(frozen=True)
class PicardRules:
    max_mismatches: int = 1
    min_mismatch_delta: int = 1
    max_no_calls: int = 2


@dataclass
class LaneBarcodes:
    """The samples of one lane and how to match their indexes.

    `barcodes[s]` holds sample s's index sequences, one per index read used, already
    in the orientation the instrument reads them.
    """

    lane: int
    barcodes: list[tuple[str, ...]]
    lengths: tuple[int, ...]
    mismatches: tuple[int, ...]
    picard: PicardRules | None = None
    _cache: dict[bytes, tuple[int, int]] = field(default_factory=dict, repr=False)
    _variants: list[dict[bytes, list[tuple[int, int]]]] = field(default_factory=list, repr=False)
    _by_ids: dict[tuple[int, ...], int] = field(default_factory=dict, repr=False)
    _codes: list[list[str]] = field(default_factory=list, repr=False)
    # Per index read: (sorted packed variants, their code id or AMBIGUOUS, distance).
    _tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list, repr=False
    )
    _sample_of: np.ndarray | None = field(default=None, repr=False)  # code ids → sample
    _direct_tables: dict[int, tuple | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.picard is not None or not self.lengths:
            return
        ids_per_slot: list[dict[str, int]] = [{} for _ in self.lengths]
        for sample, codes in enumerate(self.barcodes):
            ids = tuple(
                ids_per_slot[slot].setdefault(code, len(ids_per_slot[slot]))
                for slot, code in enumerate(codes)
            )
            self._by_ids[ids] = sample
        self._codes = [list(ids) for ids in ids_per_slot]  # per index read, by code id
        if max(self.lengths) > MAX_PACKED:
            return
        self._sample_of = np.full([len(ids) for ids in ids_per_slot], -1, dtype=np.int32)
        for ids, sample in self._by_ids.items():
            self._sample_of[ids] = sample
        for codes, mismatches in zip(self._codes, self.mismatches, strict=True):
            self._tables.append(variant_table(codes, mismatches))

    def _variant_dicts(self) -> list[dict[bytes, list[tuple[int, int]]]]:
        """Per index read: each sequence within the allowed mismatches of a code →
        [(code id, mismatches)], built on first use (only Python matching needs it)."""
        if not self._variants:
            for codes, mismatches in zip(self._codes, self.mismatches, strict=True):
                table: dict[bytes, list[tuple[int, int]]] = {}
                for code_id, code in enumerate(codes):
                    for variant, distance in _variants(code.encode(), mismatches):
                        table.setdefault(variant, []).append((code_id, distance))
                self._variants.append(table)
        return self._variants

    def match(self, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For an (n x total index length) array of index bases (ASCII), the sample of
        each cluster (-1 for none) and its index mismatches."""
        n = observed.shape[0]
        if not self.lengths:
            return np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int8)
        rows = np.ascontiguousarray(observed)
        if self._sample_of is not None:
            samples, distances, unsure = self._match_packed(rows)
            if unsure.any():
                picked = np.flatnonzero(unsure)
                samples[picked], distances[picked] = self._match_distinct(rows[picked])
            return samples, distances
        return self._match_distinct(rows)

    def _match_packed(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sample and mismatches per cluster, and which clusters this cannot decide
        (an index within the allowed mismatches of two codes)."""
        n = rows.shape[0]
        total = np.zeros(n, dtype=np.int8)
        missing = np.zeros(n, dtype=bool)  # some index read matches no code: undetermined
        unsure = np.zeros(n, dtype=bool)
        codes = []
        start = 0
        for slot, length in enumerate(self.lengths):
            code, distance = self._look_up(slot, rows[:, start : start + length])
            start += length
            unsure |= code == AMBIGUOUS
            missing |= code == -1
            total += distance
            codes.append(np.maximum(code, 0))
        unsure &= ~missing
        samples = self._sample_of[tuple(codes)]
        samples = np.where(missing | unsure, -1, samples).astype(np.int32)
        distances = np.where(samples >= 0, total, 0).astype(np.int8)
        return samples, distances, unsure

    def _look_up(self, slot: int, letters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's code id in this index read (-1: none, AMBIGUOUS) and mismatches
        (0 where none). Reads of A/C/G/T only index a table of every 2-bit packed
        sequence when there are few enough (4^10); the others (no-calls, long
        indexes) are found among the sorted variants."""
        keys, code_of, distance_of = self._tables[slot]
        values = BASE_CODES[letters]  # 0-3 A, C, G, T, 4 anything else (N)
        code = np.full(len(letters), -1, dtype=np.int32)
        distance = np.zeros(len(letters), dtype=np.int8)
        rest = None  # rows left to the sorted search
        direct = self._direct(slot)
        if direct is not None:
            called = values.max(axis=1) < 4
            packed = np.zeros(len(letters), dtype=np.uint32)
            for column in range(letters.shape[1]):
                packed |= (values[:, column] & 3).astype(np.uint32) << np.uint32(2 * column)
            table_code, table_distance = direct
            code = np.where(called, table_code[packed], -1).astype(np.int32)
            distance = np.where(called, table_distance[packed], 0).astype(np.int8)
            rest = np.flatnonzero(~called)
            values = values[rest]
        packed = np.zeros(len(values), dtype=np.uint64)
        for column in range(values.shape[1]):
            packed |= values[:, column].astype(np.uint64) << np.uint64(3 * column)
        at = np.minimum(np.searchsorted(keys, packed), len(keys) - 1)
        found = keys[at] == packed
        found_code = np.where(found, code_of[at], -1).astype(np.int32)
        found_distance = np.where(found, distance_of[at], 0).astype(np.int8)
        if rest is None:
            return found_code, found_distance
        code[rest], distance[rest] = found_code, found_distance
        return code, distance

    def _direct(self, slot: int):
        """(code id, mismatches) indexed by the 2-bit packed sequence of A/C/G/T
        reads, for index reads of up to 10 bases (built on first use), else None."""
        if slot not in self._direct_tables:
            table = None
            length = self.lengths[slot]
            if length <= 10:
                keys, code_of, distance_of = self._tables[slot]
                groups = (keys[:, None] >> (np.uint64(3) * np.arange(length, dtype=np.uint64))) & 7
                plain = (groups < 4).all(axis=1)  # variants without an N
                packed = (groups[plain].astype(np.int64) << (2 * np.arange(length))).sum(axis=1)
                table_code = np.full(4**length, -1, dtype=np.int32)
                table_distance = np.zeros(4**length, dtype=np.int8)
                table_code[packed] = code_of[plain]
                table_distance[packed] = distance_of[plain]
                table = (table_code, table_distance)
            self._direct_tables[slot] = table
        return self._direct_tables[slot]

    def _match_distinct(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Match each distinct index sequence once, in Python, remembering answers."""
        n = rows.shape[0]
        if rows.shape[1] <= 21:
            # Three bits a base in one integer: np.unique sorts integers far faster
            # than byte strings.
            keys = np.zeros(n, dtype=np.uint64)
            for column in range(rows.shape[1]):
                keys |= BASE_BITS[rows[:, column]] << np.uint64(3 * column)
        else:
            keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        samples = np.empty(len(unique), dtype=np.int32)
        distances = np.empty(len(unique), dtype=np.int8)
        for position, row in enumerate(first):
            raw = rows[row].tobytes()
            answer = self._cache.get(raw)
            if answer is None:
                answer = self._match_one(raw)
                if len(self._cache) < 1_000_000:
                    self._cache[raw] = answer
            samples[position], distances[position] = answer
        inverse = inverse.ravel()
        return samples[inverse], distances[inverse]

    def _slots(self, raw: bytes) -> list[bytes]:
        out, start = [], 0
        for length in self.lengths:
            out.append(raw[start : start + length])
            start += length
        return out

    def _match_one(self, raw: bytes) -> tuple[int, int]:
        if self.picard is not None:
            return self._match_picard(raw)
        candidates = []
        variants = self._variant_dicts()
        for slot, observed in enumerate(self._slots(raw)):
            found = variants[slot].get(observed)
            if not found:
                return -1, 0
            candidates.append(found)
        best = (-1, 0)
        for combination in product(*candidates):
            sample = self._by_ids.get(tuple(code_id for code_id, _ in combination))
            if sample is not None:
                distance = sum(d for _, d in combination)
                if best[0] == -1 or distance < best[1]:
                    best = (sample, distance)
        return best

    def _match_picard(self, raw: bytes) -> tuple[int, int]:
        rules = self.picard
        assert rules is not None
        no_calls = raw.count(b"N")
        if no_calls > rules.max_no_calls:
            return -1, 0
        worst = len(raw) + 1
        best, best_sample, second = worst, -1, worst
        for sample, codes in enumerate(self.barcodes):
            code = "".join(codes).encode()
            distance = sum(
                1 for read, want in zip(raw, code, strict=False) if read != 78 and read != want
            )
            if distance < best:
                if best_sample != -1:
                    second = best
                best, best_sample = distance, sample
            elif distance < second:
                second = distance
        if (
            best_sample != -1
            and best <= rules.max_mismatches
            and second - best >= rules.min_mismatch_delta
        ):
            return best_sample, best
        return -1, 0


def pack_bases(letters: np.ndarray) -> np.ndarray:
    """(n x length) ASCII bases → one integer each, 3 bits a base (A, C, G, T; any
    other letter as N), the first base lowest."""
    keys = np.zeros(letters.shape[0], dtype=np.uint64)
    for column in range(letters.shape[1]):
        keys |= BASE_BITS[letters[:, column]] << np.uint64(3 * column)
    return keys


def variant_table(codes: list[str], mismatches: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sequence within `mismatches` of one of codes (as `_variants` makes them),
    packed (pack_bases) and sorted, with its code's id (AMBIGUOUS when it lies within
    reach of two codes) and its mismatches."""
    length = len(codes[0])
    letters = np.frombuffer("".join(codes).encode(), dtype=np.uint8).reshape(len(codes), length)
    values = BASE_BITS[letters]
    packed = pack_bases(letters)
    ids = np.arange(len(codes), dtype=np.int32)
    keys, owners, distances = [packed], [ids], [np.zeros(len(codes), np.int8)]
    for count in range(1, mismatches + 1):
        for positions in combinations(range(length), count):
            cleared = packed.copy()
            for position in positions:
                cleared &= ~np.uint64(7 << 3 * position)
            for replacement in product(range(len(LETTERS)), repeat=count):
                valid = np.ones(len(codes), dtype=bool)
                key = cleared.copy()
                for position, value in zip(positions, replacement, strict=True):
                    valid &= values[:, position] != value
                    key |= np.uint64(value << 3 * position)
                keys.append(key[valid])
                owners.append(ids[valid])
                distances.append(np.full(int(valid.sum()), count, np.int8))
    key = np.concatenate(keys)
    owner = np.concatenate(owners)
    distance = np.concatenate(distances)
    order = np.argsort(key, kind="stable")
    key, owner, distance = key[order], owner[order], distance[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    # A code reaches each sequence once, so a key seen twice belongs to two codes.
    repeats = np.diff(np.append(starts, len(key)))
    code = np.where(repeats > 1, AMBIGUOUS, owner[starts]).astype(np.int32)
    return key[starts], code, distance[starts]


def _variants(code: bytes, mismatches: int):
    yield code, 0
    for count in range(1, mismatches + 1):
        for positions in combinations(range(len(code)), count):
            choices = [[c for c in LETTERS if c != code[p]] for p in positions]
            for letters in product(*choices):
                variant = bytearray(code)
                for p, letter in zip(positions, letters, strict=True):
                    variant[p] = letter
                yield bytes(variant), count


def hamming(a: str, b: str) -> int:
    return sum(1 for x, y in zip(a, b, strict=True) if x != y or x == "N")


def check_collisions(
    lane: int | None,
    barcodes: list[tuple[str, ...]],
    lines: list[int],
    mismatches: tuple[int, ...],
    sheet_name: str,
) -> None:
    """Refuse mismatch settings under which one read could match two samples: for
    every index, the two samples' sequences are within twice the allowed mismatches."""
    if not barcodes or not barcodes[0]:
        return
    first, second = _first_collision(barcodes, mismatches)
    if first is None:
        return
    a, b = barcodes[first], barcodes[second]
    shown = "/".join(str(m) for m in mismatches)
    raise ConversionError(
        f"line {lines[second]}: index {'+'.join(b)} collides with "
        f"{'+'.join(a)} on line {lines[first]}"
        f"{' in lane ' + str(lane) if lane else ''} when {shown} mismatches are "
        "allowed; lower BarcodeMismatchesIndex1/2 or fix the sheet",
        sheet_name,
    )


def _first_collision(barcodes: list[tuple[str, ...]], mismatches: tuple[int, ...]):
    """The first pair (in `combinations` order) of samples whose every index is within
    twice the allowed mismatches (hamming), or (None, None); whole-array distances,
    a block of samples at a time."""
    count = len(barcodes)
    slots = []
    for slot in range(len(barcodes[0])):
        values = [codes[slot] for codes in barcodes]
        if len({len(v) for v in values}) > 1:  # hamming needs equal lengths
            return _first_collision_slow(barcodes, mismatches)
        width = len(values[0])
        slots.append(np.frombuffer("".join(values).encode(), np.uint8).reshape(count, width))
    for start in range(0, count, 256):
        stop = min(start + 256, count)
        collide = np.ones((stop - start, count), dtype=bool)
        for letters, allowed in zip(slots, mismatches, strict=True):
            block = letters[start:stop, None, :]
            differ = (block != letters[None, :, :]) | (block == ord("N"))
            collide &= differ.sum(axis=2) <= 2 * allowed
        collide &= np.arange(count)[None, :] > np.arange(start, stop)[:, None]
        found = np.argwhere(collide)
        if len(found):
            return start + int(found[0][0]), int(found[0][1])
    return None, None


def _first_collision_slow(barcodes, mismatches):
    for first, second in combinations(range(len(barcodes)), 2):
        a, b = barcodes[first], barcodes[second]
        if all(hamming(x, y) <= 2 * m for x, y, m in zip(a, b, mismatches, strict=True)):
            return first, second
    return None, None
