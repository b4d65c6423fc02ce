"""Talking to Ensembl: its REST API and its FTP tree (read over HTTPS).

Every base URL is a setting (`ENSEMBL_REST_URL`, `ENSEMBL_FTP_URL`,
`ENSEMBL_GENOMES_FTP_URL`) so a mirror, a proxy or a test server can serve.
Every request goes through `common.source_http` (redirects stay on the source,
bodies are capped, nothing the source sent is quoted in a reason). Transient
failures (5xx, 429, timeouts) are retried with backoff, waiting as long as a
`Retry-After` asks (clamped); anything else ends the survey with a message that
names the URL and what was wrong. Every REST answer is checked against its
endpoint's shape before it is read.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import requests
from django.conf import settings

from common.shapes import ListOf, Maybe, ShapeError, Text, Whole, check
from common.source_http import Answer, SourceHTTPError, fetch_answer, new_session, status_text
from runner.pipeline import JobError
from surveyor.ensembl_divisions import DIVISION_FOLDERS, DIVISIONS, VERTEBRATES

logger = logging.getLogger(__name__)


# --- the shapes of the answers the refinery reads ------------------------------------------------

PRODUCTION_NAME = Text("a production name", r"[A-Za-z0-9][A-Za-z0-9_]*", 200)
DATABASE_NAME = Text("a database name", r"[A-Za-z0-9_]+", 200)
# Goes into file names and URLs: one path component, not hidden, no control characters.
PLAIN_NAME = Text("a plain name", r"[^/\\\x00-\x1f\x7f.][^/\\\x00-\x1f\x7f]*", 200)
LABEL = Text("a name", r"[^\x00-\x1f\x7f]*", 500)
GENOME = {
    "name": Maybe(PRODUCTION_NAME),
    "species": Maybe(PRODUCTION_NAME),  # the Ensembl Genomes servers' older key
    "display_name": Maybe(LABEL),
    "scientific_name": Maybe(LABEL),
    "taxonomy_id": Maybe(Whole()),
    "taxon_id": Maybe(Whole()),
    "assembly_default": Maybe(PLAIN_NAME),
    "assembly_name": Maybe(PLAIN_NAME),
    "assembly": Maybe(PLAIN_NAME),
    "dbname": Maybe(DATABASE_NAME),
}
SOFTWARE = {"release": Whole()}  # /info/software
EG_VERSION = {"version": Whole()}  # /info/eg_version
SPECIES = {"species": ListOf(GENOME)}  # /info/species
GENOMES = ListOf(GENOME)  # /info/genomes/division/<division>
DIVISION_NAME = Text("an Ensembl division", r"Ensembl[A-Za-z]+", 64)
GENOME_DIVISION = {"division": DIVISION_NAME}  # /info/genomes/<name>


@dataclass(frozen=True)
class EnsemblSpecies:
    """One genome of a division, as the REST API describes it."""

    name: str  # the production name: saccharomyces_cerevisiae
    display_name: str
    scientific_name: str
    taxonomy_id: int | None
    assembly: str
    core_db: str = ""


class EnsemblClient:
    """Reads one division of Ensembl."""

    def __init__(self, division: str, session: requests.Session | None = None):
        if division not in DIVISIONS:
            raise JobError(
                f"unknown Ensembl division {division!r}: use one of {', '.join(DIVISIONS)}",
                no_retry=True,
            )
        self.division = division
        self.session = session or new_session()
        self.session.headers.update({"Accept": "application/json"})
        self.timeout = settings.REFINERY_HTTP_TIMEOUT_S

    # --- HTTP -----------------------------------------------------------------------------------

    def get(self, url: str, params: dict | None = None, method: str = "GET") -> Answer:
        """The answer, with retries; a failure that outlasts them becomes a JobError."""
        try:
            return fetch_answer(
                url, session=self.session, params=params, method=method, timeout=self.timeout
            )
        except SourceHTTPError as error:
            raise JobError(error.reason, no_retry=error.permanent) from None

    def rest(self, path: str, shape: object, **params) -> object:
        """The answer of a REST endpoint, checked against its `shape`."""
        url = settings.ENSEMBL_REST_URL.rstrip("/") + path
        answer = self.get(url, {"content-type": "application/json", **params})
        if answer.status != 200:
            raise JobError(
                f"{url}: {status_text(answer.status)}", no_retry=answer.status in (400, 404)
            )
        try:
            data = json.loads(answer.body)
        except RecursionError:
            raise JobError(f"{url}: the answer is nested too deeply to read") from None
        except ValueError:
            raise JobError(
                f"{url}: the answer is not JSON ({answer.content_type}, {len(answer.body)} bytes)"
            ) from None
        try:
            check(data, shape)
        except ShapeError as error:
            raise JobError(f"Ensembl REST {path}: {error}") from None
        return data

    def text_or_none(self, url: str) -> str | None:
        """A text file's content, or None when the server says it does not exist."""
        answer = self.get(url)
        if answer.status in (403, 404, 410):
            return None
        if answer.status != 200:
            raise JobError(f"{url}: {status_text(answer.status)}")
        return answer.body.decode("utf-8", errors="replace")

    def exists(self, url: str) -> bool:
        return self.get(url, method="HEAD").status == 200

    # --- what Ensembl says -----------------------------------------------------------------------

    def current_release(self) -> str:
        """The release the division publishes now."""
        if self.division == VERTEBRATES:
            return str(self.rest("/info/software", SOFTWARE)["release"])
        return str(self.rest("/info/eg_version", EG_VERSION)["version"])

    def division_of(self, species: str) -> str | None:
        """The division that publishes `species` (a production name), from
        `/info/genomes/<name>`; None when Ensembl knows no genome by that name
        (or names a division the refinery cannot read). Other failures raise."""
        try:
            answer = self.rest(f"/info/genomes/{species}", GENOME_DIVISION)
        except JobError as error:
            if error.no_retry:  # 400/404: Ensembl has no genome of that name
                return None
            raise
        division = answer["division"]
        return division if division in DIVISIONS else None

    def list_species(self) -> list[EnsemblSpecies]:
        """Every genome of the division."""
        if self.division == VERTEBRATES:
            path, where = "/info/species", "species"
            entries = self.rest(path, SPECIES, division=VERTEBRATES)["species"]
        else:
            path, where = f"/info/genomes/division/{self.division}", ""
            entries = self.rest(path, GENOMES)
        species = []
        for index, entry in enumerate(entries):
            if not (entry.get("name") or entry.get("species")):
                raise JobError(
                    f"Ensembl REST {path}: {where}[{index}] has neither name nor species"
                )
            species.append(self._species(entry))
        if not species:
            raise JobError(f"Ensembl lists no species in {self.division}")
        return sorted(species, key=lambda s: s.name)

    @staticmethod
    def _species(entry: dict) -> EnsemblSpecies:
        """One entry of a species list (already checked against GENOME)."""
        name = entry.get("name") or entry["species"]
        taxonomy = entry.get("taxonomy_id") or entry.get("taxon_id")
        return EnsemblSpecies(
            name=name,
            display_name=entry.get("display_name") or name,
            # Vertebrates' display names are common names ("Human"): the production
            # name is the binomial there.
            scientific_name=entry.get("scientific_name") or name.replace("_", " ").capitalize(),
            taxonomy_id=int(taxonomy) if taxonomy is not None else None,
            assembly=entry.get("assembly_default")
            or entry.get("assembly_name")
            or entry.get("assembly")
            or "",
            core_db=entry.get("dbname") or "",
        )

    def release_url(self, release: str) -> str:
        """The FTP folder of one release of this division."""
        if self.division == VERTEBRATES:
            return f"{settings.ENSEMBL_FTP_URL.rstrip('/')}/release-{release}"
        folder = DIVISION_FOLDERS[self.division]
        return f"{settings.ENSEMBL_GENOMES_FTP_URL.rstrip('/')}/{folder}/release-{release}"

    def collections(self, release: str) -> dict[str, str]:
        """Species -> collection folder, from the division's `species_<Division>.txt`
        (bacteria and some fungi, protists and metazoa live in collection folders)."""
        if self.division == VERTEBRATES:
            return {}
        url = f"{self.release_url(release)}/species_{self.division}.txt"
        text = self.text_or_none(url)
        if text is None:
            return {}
        return parse_species_table(text, where=url)


def parse_species_table(text: str, where: str = "the species file") -> dict[str, str]:
    """species -> collection for the genomes in a collection, from the
    tab-separated `species_<Division>.txt` (columns named by its `#name` header).
    A reason names the file (`where`) and the line, never what it says."""
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].lstrip("#").split("\t")
    try:
        species_column, core_db_column = header.index("species"), header.index("core_db")
    except ValueError:
        raise JobError(f"{where}: the header has no 'species' and 'core_db' columns") from None
    collections = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) <= max(species_column, core_db_column):
            continue
        core_db = fields[core_db_column]
        if not re.fullmatch(DATABASE_NAME.pattern, core_db):
            raise JobError(f"{where}: line {number}: core_db is not {DATABASE_NAME.name}")
        collection = collection_of(core_db)
        if collection:
            collections[fields[species_column]] = collection
    return collections


def collection_of(core_db: str) -> str:
    """`bacteria_0_collection_core_61_114_1` -> `bacteria_0_collection`; '' otherwise
    (and for anything but a database name: it becomes part of a URL)."""
    if "_collection_core_" not in core_db or not re.fullmatch(DATABASE_NAME.pattern, core_db):
        return ""
    return core_db.split("_core_", 1)[0]
