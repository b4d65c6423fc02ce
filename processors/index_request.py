"""Which transcriptome index a job builds, as its batch describes it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.models import Batch, Organism


@dataclass(frozen=True)
class IndexRequest:
    """The one index a job builds, as its batch describes it."""

    batch: Batch
    organism: Organism
    length: str
    k: int
    species: str
    release: str
    assembly: str

    @property
    def index_name(self) -> str:
        """`Saccharomyces_cerevisiae_long_k31_61.salmon_index`"""
        species = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.species).capitalize()
        release = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.release)
        return f"{species}_{self.length}_k{self.k}_{release}.salmon_index"
