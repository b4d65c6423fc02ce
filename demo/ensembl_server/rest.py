"""The REST API's answers, in the shapes of ``https://rest.ensembl.org``'s ``info/`` endpoints."""

from __future__ import annotations

import re
from typing import Any

from demo.ensembl_server.genomes import ServedGenome
from surveyor.ensembl_divisions import DIVISIONS, VERTEBRATES


class RestApi:
    """The REST methods of :class:`~demo.ensembl_server.EnsemblServer`.

    A part of ``EnsemblServer``, which provides the attributes annotated here.
    """

    genomes: list[ServedGenome]
    ensembl_release: int
    eg_release: int
    unknown_division: str
    legacy_genome_fields: bool
    _base_counts: dict[tuple[str, str], int]

    def _divisions_matching(self, name: str) -> str | None:
        for division in DIVISIONS:
            if division.lower() == name.lower():
                return division
        return None

    def _rest_response(self, route: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if route == "/info/ping":
            return 200, {"ping": 1}
        if route == "/info/software":
            return 200, {"release": self.ensembl_release}
        if route == "/info/eg_version":
            return 200, {"version": str(self.eg_release)}
        if route == "/info/data":
            return 200, {"releases": [self.ensembl_release]}
        if route == "/info/divisions":
            return 200, list(DIVISIONS)
        if route == "/info/species":
            return self._info_species(query)
        match = re.fullmatch(r"/info/genomes/division/([^/]+)", route)
        if match:
            division = self._divisions_matching(match.group(1))
            if division is None:
                if self.unknown_division == "empty":
                    return 200, []
                return 400, {"error": f"Division {match.group(1)} not found"}
            return 200, [self.genome_info(g) for g in self.genomes if g.division == division]
        match = re.fullmatch(r"/info/genomes/([^/]+)", route)
        if match and match.group(1) not in ("division", "taxonomy", "assembly", "accession"):
            for genome in self.genomes:
                if match.group(1).lower() in (genome.species, genome.display_name.lower()):
                    return 200, self.genome_info(genome)
            return 400, {"error": f"Genome {match.group(1)} not found"}
        return 404, {"error": f"page not found: /rest{route}"}

    def _info_species(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        asked = (query.get("division") or [VERTEBRATES])[-1]
        division = self._divisions_matching(asked)
        if division is None:
            if self.unknown_division == "empty":
                return 200, {"species": []}
            return 400, {"error": f"Division {asked} not found"}
        collection = (query.get("strain_collection") or [None])[-1]
        hide_strain = (query.get("hide_strain_info") or ["0"])[-1] not in ("0", "")
        species = []
        for genome in self.genomes:
            if genome.division != division:
                continue
            entry = self.species_info(genome)
            if collection is not None and entry["strain_collection"] != collection:
                continue
            if hide_strain:
                entry.pop("strain")
                entry.pop("strain_collection")
            species.append(entry)
        return 200, {"species": species}

    def genome_info(self, genome: ServedGenome) -> dict[str, Any]:
        """The object ``info/genomes/division/<division>`` lists for ``genome``.

        Keys and value types follow Ensembl's metadata API (GenomeInfo + GenomeOrganismInfo +
        GenomeAssemblyInfo rendered to JSON): ids, counts and flags are strings, missing
        values ``null``.
        """
        index = self.genomes.index(genome) + 1
        assembly_default = genome.file_assembly
        info: dict[str, Any] = {
            "division": genome.division,
            "genebuild": genome.genebuild,
            "has_pan_compara": "0",
            "has_peptide_compara": "0",
            "has_genome_alignments": "0",
            "has_synteny": "0",
            "has_other_alignments": "0",
            "has_variations": "0",
            "is_reference": "0",
            "reference": None,
            "assembly_id": str(index),
            "organism_id": str(index),
            "data_release_id": "1",
            "name": genome.species,
            "display_name": genome.display_name,
            "scientific_name": genome.scientific_name or genome.display_name,
            "url_name": genome.file_species,
            "strain": genome.strain,
            "serotype": None,
            "taxonomy_id": str(genome.taxonomy_id),
            "species_taxonomy_id": str(genome.species_taxonomy_id or genome.taxonomy_id),
            "assembly_name": genome.assembly,
            "assembly_accession": genome.assembly_accession,
            "assembly_default": assembly_default,
            "assembly_ucsc": None,
            "assembly_level": genome.assembly_level,
            "base_count": str(self._base_counts.get((genome.division, genome.species), 0)),
        }
        if self.legacy_genome_fields:
            info["species"] = genome.species
            info["dbname"] = self.core_db(genome)
            info["species_id"] = str(genome.species_id)
        return info

    def species_info(self, genome: ServedGenome) -> dict[str, Any]:
        """The object ``info/species`` lists for ``genome``."""
        release = self.ensembl_release
        return {
            "division": genome.division,
            "name": genome.species,
            "display_name": genome.display_name,
            "common_name": genome.common_name,
            "taxon_id": str(genome.taxonomy_id),
            "accession": genome.assembly_accession,
            "assembly": genome.assembly,
            "release": release,
            "groups": ["core"],
            "aliases": list(genome.aliases),
            "strain": genome.strain,
            "strain_collection": None,
        }
