"""`ServedGenome`: one genome the demo server publishes, in one of the Ensembl divisions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from demo.organism import DemoOrganism
from surveyor.ensembl_divisions import DIVISIONS, VERTEBRATES


@dataclass(frozen=True)
class ServedGenome:
    """One genome the server publishes.

    ``genome_fasta`` and ``gtf`` are plain (not gzipped) files; the server gzips each once
    (deterministically) and caches the result by content. ``primary_assembly`` also publishes
    ``...dna.primary_assembly.fa.gz`` beside ``...dna.toplevel.fa.gz`` (Ensembl has it only for
    some species). ``collection`` (e.g. ``"bacteria_0_collection"``) puts a non-vertebrate
    genome in a collection folder, as Ensembl does for bacteria and some fungi and protists.
    """

    division: str
    species: str
    display_name: str
    taxonomy_id: int
    assembly: str
    genome_fasta: Path
    gtf: Path
    primary_assembly: bool = False
    collection: str | None = None
    scientific_name: str | None = None
    common_name: str | None = None
    assembly_accession: str | None = None
    assembly_level: str = "chromosome"
    strain: str | None = None
    species_taxonomy_id: int | None = None
    genebuild: str = "2025-01-Demo"
    aliases: tuple[str, ...] = ()
    #: The genome's species_id inside its core database; ``None``: 1, or its 1-based position
    #: among the served genomes of the same collection.
    species_id: int | None = None

    def __post_init__(self) -> None:
        if self.division not in DIVISIONS:
            raise ValueError(f"unknown division {self.division!r}; use one of {DIVISIONS}")
        if not re.fullmatch(r"[a-z0-9_]+", self.species):
            raise ValueError(f"species must be an Ensembl production name, got {self.species!r}")
        if self.collection is not None:
            if self.division == VERTEBRATES:
                raise ValueError("vertebrate genomes are never in a collection")
            if not re.fullmatch(r"[a-z0-9_]+_collection", self.collection):
                raise ValueError(
                    f"collection must look like 'bacteria_0_collection', got {self.collection!r}"
                )
        object.__setattr__(self, "genome_fasta", Path(self.genome_fasta))
        object.__setattr__(self, "gtf", Path(self.gtf))

    @classmethod
    def from_organism(
        cls,
        organism: DemoOrganism,
        *,
        division: str = VERTEBRATES,
        primary_assembly: bool = False,
        collection: str | None = None,
        **overrides: Any,
    ) -> ServedGenome:
        """A :class:`ServedGenome` for a generated :class:`DemoOrganism`."""
        values: dict[str, Any] = {
            "division": division,
            "species": organism.species,
            "display_name": organism.display_name,
            "taxonomy_id": organism.taxonomy_id,
            "assembly": organism.assembly,
            "genome_fasta": organism.genome_fasta,
            "gtf": organism.gtf,
            "primary_assembly": primary_assembly,
            "collection": collection,
            "scientific_name": organism.scientific_name,
            "assembly_accession": organism.assembly_accession,
            "genebuild": organism.genebuild,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def is_vertebrate(self) -> bool:
        return self.division == VERTEBRATES

    @property
    def file_species(self) -> str:
        """The species as it starts file names: ``Homo_sapiens``."""
        return self.species[:1].upper() + self.species[1:]

    @property
    def file_assembly(self) -> str:
        """The assembly as it appears in file names (spaces become underscores)."""
        return self.assembly.replace(" ", "_")


def assign_species_ids(genomes: Sequence[ServedGenome]) -> Iterable[ServedGenome]:
    """Give each genome without a ``species_id`` 1, or its position in its collection."""
    per_collection: dict[tuple[str, str], int] = {}
    for genome in genomes:
        if genome.species_id is not None:
            yield genome
            continue
        if genome.collection is None:
            yield replace(genome, species_id=1)
            continue
        key = (genome.division, genome.collection)
        per_collection[key] = per_collection.get(key, 0) + 1
        yield replace(genome, species_id=per_collection[key])
