"""Building the FTP file trees: gzipped files, READMEs, CHECKSUMS, species_<Division>.txt, links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from common.bsd_sum import bsd_sum_path, format_sum_line
from common.storage import sha256_of_file
from demo.ensembl_server.genomes import ServedGenome
from demo.gzip_files import gzip_file
from surveyor.ensembl_divisions import DIVISION_FOLDERS, DIVISIONS, VERTEBRATES

#: The columns of ``species_<Division>.txt``, as Ensembl's TextMetaDataDumper writes them.
SPECIES_TXT_COLUMNS = (
    "name",
    "species",
    "division",
    "taxonomy_id",
    "assembly",
    "assembly_accession",
    "genebuild",
    "variation",
    "microarray",
    "pan_compara",
    "peptide_compara",
    "genome_alignments",
    "other_alignments",
    "core_db",
    "species_id",
)

#: All files of the trees carry this modification time (the demo's fixed "release date").
DEFAULT_FILE_MTIME = 1_746_532_800  # 2025-05-06 12:00:00 UTC


class TreeBuilder:
    """The tree-building methods of :class:`~demo.ensembl_server.EnsemblServer`.

    A part of ``EnsemblServer``, which provides the attributes annotated here.
    """

    genomes: list[ServedGenome]
    ensembl_release: int
    eg_release: int
    cache_dir: Path
    compresslevel: int
    file_mtime: float
    _base_counts: dict[tuple[str, str], int]
    _tree_root: Path
    _vertebrates_pub: Path
    _genomes_pub: Path

    def _gzipped(self, source: Path) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        cached = self.cache_dir / f"{sha256_of_file(source)}-{self.compresslevel}.gz"
        if not cached.exists():
            gzip_file(source, cached, compresslevel=self.compresslevel)
        return cached

    def _place(self, cached: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, dest)
        except OSError:
            shutil.copyfile(cached, dest)

    def _build_trees(self) -> None:
        leaf_folders: set[Path] = set()
        for genome in self.genomes:
            if not genome.genome_fasta.is_file():
                raise FileNotFoundError(f"genome FASTA not found: {genome.genome_fasta}")
            if not genome.gtf.is_file():
                raise FileNotFoundError(f"GTF not found: {genome.gtf}")
            self._base_counts[(genome.division, genome.species)] = _count_bases(genome.genome_fasta)
            pub = self._vertebrates_pub if genome.is_vertebrate else self._genomes_pub
            fasta_dir = pub / self.species_folder(genome, "fasta")
            gtf_dir = pub / self.species_folder(genome, "gtf")
            fasta_gz = self._gzipped(genome.genome_fasta)
            gtf_gz = self._gzipped(genome.gtf)
            self._place(fasta_gz, fasta_dir / self.fasta_filename(genome, "toplevel"))
            if genome.primary_assembly:
                self._place(fasta_gz, fasta_dir / self.fasta_filename(genome, "primary_assembly"))
            self._place(gtf_gz, gtf_dir / self.gtf_filename(genome))
            if genome.is_vertebrate and genome.assembly_level == "chromosome":
                chr_name = self.gtf_filename(genome).replace(".gtf.gz", ".chr.gtf.gz")
                self._place(gtf_gz, gtf_dir / chr_name)
            (fasta_dir / "README").write_text(_dna_readme(genome), encoding="ascii")
            (gtf_dir / "README").write_text(_gtf_readme(genome), encoding="ascii")
            leaf_folders.update((fasta_dir, gtf_dir))

        self._write_species_files()
        for folder in sorted(leaf_folders):
            _write_checksums(folder)
        self._make_links()
        _set_mtimes(self._tree_root, self.file_mtime)

    def _write_species_files(self) -> None:
        for division in DIVISIONS:
            if division == VERTEBRATES:
                target = self._vertebrates_pub / f"release-{self.ensembl_release}"
            else:
                target = (
                    self._genomes_pub / DIVISION_FOLDERS[division] / f"release-{self.eg_release}"
                )
            target.mkdir(parents=True, exist_ok=True)
            lines = ["#" + "\t".join(SPECIES_TXT_COLUMNS) + "\n"]
            for genome in self.genomes:
                if genome.division != division:
                    continue
                row = [
                    genome.display_name,
                    genome.species,
                    genome.division,
                    str(genome.taxonomy_id),
                    genome.assembly,
                    genome.assembly_accession or "",
                    genome.genebuild,
                    "N",
                    "N",
                    "N",
                    "N",
                    "N",
                    "N",
                    self.core_db(genome),
                    str(genome.species_id),
                    "\n",
                ]
                # Ensembl joins the newline in as a last field: every row ends "\t\n".
                lines.append("\t".join(row))
            (target / f"species_{division}.txt").write_text("".join(lines), encoding="utf-8")

    def _make_links(self) -> None:
        vertebrate_release = self._vertebrates_pub / f"release-{self.ensembl_release}"
        for kind in ("fasta", "gtf"):
            (vertebrate_release / kind).mkdir(parents=True, exist_ok=True)
            _symlink(
                f"release-{self.ensembl_release}/{kind}", self._vertebrates_pub / f"current_{kind}"
            )
        release_dir = self._genomes_pub / f"release-{self.eg_release}"
        release_dir.mkdir(parents=True, exist_ok=True)
        for short in DIVISION_FOLDERS.values():
            (self._genomes_pub / short / f"release-{self.eg_release}").mkdir(
                parents=True, exist_ok=True
            )
            _symlink(f"release-{self.eg_release}", self._genomes_pub / short / "current")
            _symlink(f"../{short}/release-{self.eg_release}", release_dir / short)


def _count_bases(fasta: Path) -> int:
    total = 0
    with open(fasta, "rb") as handle:
        for line in handle:
            if not line.startswith(b">"):
                total += len(line.rstrip(b"\r\n"))
    return total


def _write_checksums(folder: Path) -> None:
    lines = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith(".") or entry.name.startswith("CHECKSUM") or not entry.is_file():
            continue
        checksum, blocks = bsd_sum_path(entry)
        lines.append(format_sum_line(checksum, blocks, entry.name))
    (folder / "CHECKSUMS").write_text("".join(lines), encoding="ascii")


def _symlink(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def _set_mtimes(root: Path, mtime: float) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.utime(path, (mtime, mtime))
    os.utime(root, (mtime, mtime))


def _dna_readme(genome: ServedGenome) -> str:
    return (
        "#### README ####\n\n"
        "Demo data generated offline by the refinery's demo app; NOT an Ensembl release.\n\n"
        "The genome assembly represented here corresponds to INSDC Assembly ID\n"
        f"{genome.assembly_accession or 'none'}\n\n"
        "#######################\nFasta DNA dumps\n#######################\n\n"
        "The files are consistently named following this pattern:\n"
        "   <species>.<assembly>.<sequence type>.<id type>.<id>.fa.gz\n\n"
        "<id type> 'toplevel' holds every top-level sequence region; 'primary_assembly'\n"
        "the same without haplotypes and patches (present for some species only).\n"
    )


def _gtf_readme(genome: ServedGenome) -> str:
    return (
        "#### README ####\n\n"
        "Demo data generated offline by the refinery's demo app; NOT an Ensembl release.\n\n"
        "GTF (Gene Transfer Format) gene sets for "
        f"{genome.scientific_name or genome.display_name}, assembly {genome.assembly}.\n"
        "<species>.<assembly>.<version>.gtf.gz: the full gene set;\n"
        "<species>.<assembly>.<version>.chr.gtf.gz: only the chromosomal sequence regions.\n"
    )
