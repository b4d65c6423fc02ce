"""The `ensembl` source: every species of an Ensembl division, as two batches
(transcriptome indices for long reads, k=31, and short reads, k=23) that share
one genome FASTA and one GTF, downloaded once.

The files are found through each folder's `CHECKSUMS` file, which lists what
the folder holds and the BSD sum of each file: the genome is the
`primary_assembly` FASTA where there is one, `toplevel` otherwise, and the GTF
is the release's main annotation (not `chr`, `abinitio` or patches).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from common.bsd_sum import read_checksums
from common.filenames import name_problem, shorten
from common.models.choices import ProcessorPipeline, SurveySource
from common.progress import Progress
from runner.pipeline import JobError
from surveyor.ensembl_client import EnsemblClient, EnsemblSpecies, collection_of
from surveyor.ensembl_divisions import DIVISIONS
from surveyor.external_source import (
    DiscoveredBatch,
    DiscoveredFile,
    ExternalSourceSurveyor,
)

logger = logging.getLogger(__name__)

INDEX_LENGTHS = (
    ("long", 31, ProcessorPipeline.TRANSCRIPTOME_INDEX_LONG),
    ("short", 23, ProcessorPipeline.TRANSCRIPTOME_INDEX_SHORT),
)
FOLDER_READERS = 8


def choose_genome(names: Iterable[str]) -> str | None:
    """The primary assembly FASTA if the folder has one, else the toplevel one."""
    names = sorted(names)
    for suffix in (".dna.primary_assembly.fa.gz", ".dna.toplevel.fa.gz"):
        found = [n for n in names if n.endswith(suffix)]
        if found:
            return found[0]
    return None


def choose_gtf(names: Iterable[str], release: str) -> str | None:
    """The release's main GTF: `<Species>.<Assembly>.<release>.gtf.gz`."""
    pattern = re.compile(rf"^[^/]+\.{re.escape(release)}\.gtf\.gz$")
    found = [
        n
        for n in sorted(names)
        if pattern.match(n) and not re.search(r"\.(chr|abinitio|chr_patch_hapl_scaff)\.", n)
    ]
    return min(found, key=len) if found else None


class EnsemblSurveyor(ExternalSourceSurveyor):
    source = SurveySource.ENSEMBL
    help = "species of an Ensembl division: two Salmon transcriptome indices each"
    base_url_settings = ("ENSEMBL_REST_URL", "ENSEMBL_FTP_URL", "ENSEMBL_GENOMES_FTP_URL")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--division",
            required=True,
            choices=list(DIVISIONS),
            help="the Ensembl division to survey",
        )
        parser.add_argument(
            "--species",
            nargs="+",
            metavar="NAME",
            help="only these species (production names such as saccharomyces_cerevisiae, "
            "or display names); default: every species of the division",
        )
        parser.add_argument(
            "--release", help="the Ensembl release (default: the current one, from Ensembl)"
        )

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        release = options.get("release")
        if release is not None and not re.fullmatch(r"[0-9]{1,6}", str(release)):
            raise JobError(f"--release must be a release number such as 114, not {release!r}")
        return {
            "division": options["division"],
            "species": options.get("species") or [],
            "release": str(release) if release else None,
        }

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        client = EnsemblClient(self.parameters.get("division", ""))
        release = self.parameters.get("release") or client.current_release()
        if not re.fullmatch(r"[0-9]{1,6}", str(release)):
            raise JobError(f"Ensembl gave {shorten(release)} as its release, not a number")
        species = self.select_species(client.list_species(), self.parameters.get("species") or [])
        collections = client.collections(release)
        species = [s for s in species if self.names_plain_folders(s, collections)]
        batches, missing = [], []
        label = f"surveying {client.division} release {release}"
        with (
            Progress(len(species), label) as progress,
            ThreadPoolExecutor(FOLDER_READERS) as pool,
        ):
            folders = pool.map(
                lambda s: self.species_files(client, release, s, collections), species
            )
            for one, files in zip(species, folders, strict=True):
                progress.advance(note=one.name)
                if files is None:
                    missing.append(one.name)
                    continue
                batches.extend(self.species_batches(client, release, one, collections, files))
        if missing:
            print(
                f"{len(missing)} species have no genome FASTA or GTF in release {release}: "
                + ", ".join(missing[:10])
                + (" …" if len(missing) > 10 else ""),
                flush=True,
            )
            if self.parameters.get("species"):
                raise JobError(
                    f"no genome FASTA or GTF in Ensembl release {release} for {', '.join(missing)}",
                    no_retry=True,
                )
        if not batches:
            self.fail_if_refused()
            raise JobError(f"no species of {client.division} has files in release {release}")
        return batches

    def names_plain_folders(self, species: EnsemblSpecies, collections: dict[str, str]) -> bool:
        """Whether the species' name (and its collection's) can be one folder of the
        FTP site's URLs; a species whose cannot is refused (see `refuse`)."""
        for what, name in (("name", species.name), ("collection", collections.get(species.name))):
            problem = name_problem(name) if name is not None else None
            if problem is not None:
                self.refuse(
                    f"species {shorten(species.name)}", f"its {what} is not a plain name: {problem}"
                )
                return False
        return True

    @staticmethod
    def select_species(known: list[EnsemblSpecies], asked: list[str]) -> list[EnsemblSpecies]:
        """The species asked for, by production or display name; an unknown name is
        an error that names the closest matches."""
        if not asked:
            return known
        by_name = {s.name.lower(): s for s in known}
        by_name.update({s.display_name.lower(): s for s in known})
        chosen, unknown = [], []
        for name in asked:
            key = name.strip().lower()
            match = by_name.get(key) or by_name.get(key.replace(" ", "_"))
            if match is None:
                unknown.append(name)
            elif match not in chosen:
                chosen.append(match)
        if unknown:
            messages = []
            for name in unknown:
                close = difflib.get_close_matches(name.lower(), list(by_name), n=3, cutoff=0.6)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                messages.append(f"{name!r}{hint}")
            raise JobError("unknown species: " + "; ".join(messages), no_retry=True)
        return chosen

    def species_folder(
        self, client: EnsemblClient, release: str, kind: str, species: EnsemblSpecies,
        collections: dict[str, str],
    ) -> str:  # fmt: skip
        """The FTP folder holding a species' `fasta/…/dna` or `gtf` files."""
        collection = collections.get(species.name) or collection_of(species.core_db)
        middle = f"{collection}/{species.name}" if collection else species.name
        leaf = "/dna" if kind == "fasta" else ""
        return f"{client.release_url(release)}/{kind}/{middle}{leaf}"

    def species_files(
        self, client: EnsemblClient, release: str, species: EnsemblSpecies,
        collections: dict[str, str],
    ) -> dict[str, DiscoveredFile] | None:  # fmt: skip
        """The genome and GTF of a species (by kind), with their published sums, or
        None when the release has no such files."""
        found = {}
        for kind, choose in (
            ("fasta", choose_genome),
            ("gtf", lambda names: choose_gtf(names, release)),
        ):
            folder = self.species_folder(client, release, kind, species, collections)
            listing = client.text_or_none(f"{folder}/CHECKSUMS")
            if listing is not None:
                try:
                    sums = read_checksums(listing)
                except ValueError as error:
                    raise JobError(f"{folder}/CHECKSUMS {error}", no_retry=True) from None
                name = choose(sums)
                if name is None:
                    return None
                entry = sums[name]
                found[kind] = DiscoveredFile(
                    url=f"{folder}/{quote(name)}",  # '?', '#' or '%' in a name stay in it
                    filename=name,
                    expected_checksums={"bsd_sum": f"{entry.checksum} {entry.blocks}"},
                    listed_in=f"{folder}/CHECKSUMS line {entry.line}",
                )
                continue
            # No CHECKSUMS: Ensembl's naming scheme, checked file by file.
            stem = species.name[:1].upper() + species.name[1:]
            assembly = species.assembly.replace(" ", "_")
            if kind == "fasta":
                candidates = [f"{stem}.{assembly}.dna.primary_assembly.fa.gz",
                              f"{stem}.{assembly}.dna.toplevel.fa.gz"]  # fmt: skip
            else:
                candidates = [f"{stem}.{assembly}.{release}.gtf.gz"]
            name = next((n for n in candidates if client.exists(f"{folder}/{n}")), None)
            if name is None:
                return None
            found[kind] = DiscoveredFile(url=f"{folder}/{name}", filename=name)
        return found

    def species_batches(
        self, client: EnsemblClient, release: str, species: EnsemblSpecies,
        collections: dict[str, str], files: dict[str, DiscoveredFile],
    ) -> list[DiscoveredBatch]:  # fmt: skip
        files["fasta"].raw_format, files["gtf"].raw_format = "fasta.gz", "gtf.gz"
        discovered_files = [files["fasta"], files["gtf"]]
        genome_name = files["fasta"].filename
        assembly = species.assembly or genome_name.split(".")[1]
        metadata = {
            "species": species.name,
            "display_name": species.display_name,
            "division": client.division,
            "release": release,
            "assembly": assembly,
            "taxonomy_id": species.taxonomy_id,
            "collection": collections.get(species.name, ""),
            "genome_kind": "primary_assembly" if "primary_assembly" in genome_name else "toplevel",
        }
        return [
            DiscoveredBatch(
                accession=f"{species.name}@{release}",
                variant=str(k),
                files=discovered_files,
                organism_name=species.scientific_name,
                taxonomy_id=species.taxonomy_id,
                pipeline=pipeline,
                metadata={**metadata, "k": k, "length": length},
            )
            for length, k, pipeline in INDEX_LENGTHS
        ]


__all__ = ["EnsemblSurveyor"]
