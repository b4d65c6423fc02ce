"""Where things are served: the URLs, folder and file names of the sites, and local paths."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from demo.ensembl_server.genomes import ServedGenome
from surveyor.ensembl_divisions import DIVISION_FOLDERS, VERTEBRATES

if TYPE_CHECKING:
    from demo.ensembl_server.http_handler import DemoHTTPServer


class SiteUrls:
    """The URL and naming methods of :class:`~demo.ensembl_server.EnsemblServer`.

    A part of ``EnsemblServer``, which provides the attributes annotated here.
    """

    host: str
    ensembl_release: int
    eg_release: int
    _http: DemoHTTPServer | None
    _workdir: Path | None
    _ftp_addresses: list[tuple[str, int]]

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("server not started")
        return self._http.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """Stands for ``https://rest.ensembl.org``."""
        return f"{self.base_url}/rest"

    @property
    def ftp_url(self) -> str:
        """Stands for ``https://ftp.ensembl.org/pub`` (vertebrates)."""
        return f"{self.base_url}/ftp"

    @property
    def divisions_ftp_url(self) -> str:
        """Stands for ``https://ftp.ensemblgenomes.ebi.ac.uk/pub`` (the other divisions)."""
        return f"{self.base_url}/ftp-genomes"

    @property
    def ftp_scheme_url(self) -> str:
        """Stands for ``ftp://ftp.ensembl.org/pub`` (needs ``ftp=True``)."""
        return self._ftp_root_url(0)

    @property
    def divisions_ftp_scheme_url(self) -> str:
        """Stands for ``ftp://ftp.ensemblgenomes.ebi.ac.uk/pub`` (needs ``ftp=True``)."""
        return self._ftp_root_url(1)

    def _ftp_root_url(self, index: int) -> str:
        if not self._ftp_addresses:
            raise RuntimeError("FTP is not being served (start the server with ftp=True)")
        host, port = self._ftp_addresses[index]
        return f"ftp://{host}:{port}/pub"

    def site_root_url(self, genome: ServedGenome, protocol: str = "http") -> str:
        """The URL standing for the ``pub`` folder of the FTP site that holds ``genome``."""
        if protocol == "http":
            return self.ftp_url if genome.is_vertebrate else self.divisions_ftp_url
        if protocol == "ftp":
            return self.ftp_scheme_url if genome.is_vertebrate else self.divisions_ftp_scheme_url
        raise ValueError("protocol must be 'http' or 'ftp'")

    def release_folder(self, genome: ServedGenome) -> str:
        """``release-114`` or ``fungi/release-61``: the release folder under ``pub``."""
        if genome.is_vertebrate:
            return f"release-{self.ensembl_release}"
        return f"{DIVISION_FOLDERS[genome.division]}/release-{self.eg_release}"

    def species_folder(self, genome: ServedGenome, kind: str) -> str:
        """``release-114/fasta/<species>/dna`` or ``release-114/gtf/<species>`` (under ``pub``)."""
        collection = f"{genome.collection}/" if genome.collection else ""
        base = f"{self.release_folder(genome)}/{kind}/{collection}{genome.species}"
        return f"{base}/dna" if kind == "fasta" else base

    def fasta_filename(self, genome: ServedGenome, level: str | None = None) -> str:
        """``<Species>.<Assembly>.dna.<level>.fa.gz``; ``level`` defaults to
        ``primary_assembly`` where the genome has one, else ``toplevel``."""
        if level is None:
            level = "primary_assembly" if genome.primary_assembly else "toplevel"
        return f"{genome.file_species}.{genome.file_assembly}.dna.{level}.fa.gz"

    def gtf_filename(self, genome: ServedGenome) -> str:
        release = self.ensembl_release if genome.is_vertebrate else self.eg_release
        return f"{genome.file_species}.{genome.file_assembly}.{release}.gtf.gz"

    def fasta_url(
        self, genome: ServedGenome, *, protocol: str = "http", level: str | None = None
    ) -> str:
        return "/".join(
            (
                self.site_root_url(genome, protocol),
                self.species_folder(genome, "fasta"),
                self.fasta_filename(genome, level),
            )
        )

    def gtf_url(self, genome: ServedGenome, *, protocol: str = "http") -> str:
        return "/".join(
            (
                self.site_root_url(genome, protocol),
                self.species_folder(genome, "gtf"),
                self.gtf_filename(genome),
            )
        )

    def checksums_url(self, file_url: str) -> str:
        """The ``CHECKSUMS`` URL of the folder holding ``file_url``."""
        return file_url.rsplit("/", 1)[0] + "/CHECKSUMS"

    def species_txt_url(self, division: str, *, protocol: str = "http") -> str:
        """The ``species_<Division>.txt`` of a division's current release."""
        if division == VERTEBRATES:
            root = self.ftp_url if protocol == "http" else self.ftp_scheme_url
            return f"{root}/release-{self.ensembl_release}/species_{division}.txt"
        root = self.divisions_ftp_url if protocol == "http" else self.divisions_ftp_scheme_url
        short = DIVISION_FOLDERS[division]
        return f"{root}/{short}/release-{self.eg_release}/species_{division}.txt"

    def core_db(self, genome: ServedGenome) -> str:
        """The name of the core database holding ``genome``, as in ``species_<Division>.txt``."""
        if genome.is_vertebrate:
            return f"{genome.species}_core_{self.ensembl_release}_1"
        owner = genome.collection or genome.species
        return f"{owner}_core_{self.eg_release}_{self.ensembl_release}_1"

    @property
    def _tree_root(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("server not started")
        return self._workdir / "tree"

    @property
    def _vertebrates_pub(self) -> Path:
        return self._tree_root / "ensembl" / "pub"

    @property
    def _genomes_pub(self) -> Path:
        return self._tree_root / "ensemblgenomes" / "pub"

    def local_path(self, url: str) -> Path:
        """The file on disk that a served URL (http or ftp scheme) stands for."""
        split = urlsplit(url)
        path = unquote(split.path)
        if split.scheme == "ftp":
            home = "ensembl" if split.port == self._ftp_addresses[0][1] else "ensemblgenomes"
            return self._tree_root / home / path.lstrip("/")
        for prefix, root in (("/ftp-genomes", self._genomes_pub), ("/ftp", self._vertebrates_pub)):
            if path == prefix or path.startswith(prefix + "/"):
                return root / path[len(prefix) :].lstrip("/")
        raise ValueError(f"{url} is not a file URL of this server")
