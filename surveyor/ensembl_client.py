"""Talking to Ensembl: its REST API and its FTP tree (read over HTTPS).

Every base URL is a setting (`ENSEMBL_REST_URL`, `ENSEMBL_FTP_URL`,
`ENSEMBL_GENOMES_FTP_URL`) so a mirror, a proxy or a test server can serve.
Transient failures (5xx, 429, timeouts) are retried with backoff; anything else
ends the survey with a message that names the URL and what it answered.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from retrying import retry

from runner.pipeline import JobError
from surveyor.ensembl_divisions import DIVISION_FOLDERS, DIVISIONS, VERTEBRATES

logger = logging.getLogger(__name__)

ATTEMPTS = 4


class TransientHTTPError(Exception):
    pass


@dataclass(frozen=True)
class EnsemblSpecies:
    """One genome of a division, as the REST API describes it."""

    name: str  # the production name: saccharomyces_cerevisiae
    display_name: str
    scientific_name: str
    taxonomy_id: int | None
    assembly: str
    core_db: str = ""


def _transient(error: Exception) -> bool:
    return isinstance(error, TransientHTTPError)


class EnsemblClient:
    """Reads one division of Ensembl."""

    def __init__(self, division: str, session: requests.Session | None = None):
        if division not in DIVISIONS:
            raise JobError(
                f"unknown Ensembl division {division!r}: use one of {', '.join(DIVISIONS)}",
                no_retry=True,
            )
        self.division = division
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "data-refinery"})
        self.timeout = settings.REFINERY_HTTP_TIMEOUT_S

    # --- HTTP -----------------------------------------------------------------------------------

    @retry(
        stop_max_attempt_number=ATTEMPTS,
        wait_exponential_multiplier=500,
        wait_exponential_max=10_000,
        retry_on_exception=_transient,
    )
    def _get(self, url: str, params: dict | None = None) -> requests.Response:
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.exceptions.Timeout:
            raise TransientHTTPError(f"{url}: timed out after {self.timeout} s") from None
        except requests.exceptions.ConnectionError as error:
            raise TransientHTTPError(f"{url}: cannot connect ({error})") from None
        if response.status_code == 429:
            time.sleep(min(float(response.headers.get("Retry-After", 1) or 1), 30))
            raise TransientHTTPError(f"{url}: HTTP 429 Too Many Requests")
        if response.status_code >= 500:
            raise TransientHTTPError(f"{url}: HTTP {response.status_code} {response.reason}")
        return response

    def get(self, url: str, params: dict | None = None) -> requests.Response:
        """GET with retries; a failure that outlasts them becomes a JobError."""
        try:
            return self._get(url, params)
        except TransientHTTPError as error:
            raise JobError(f"{error} (gave up after {ATTEMPTS} attempts)") from None

    def rest(self, path: str, **params) -> object:
        url = settings.ENSEMBL_REST_URL.rstrip("/") + path
        response = self.get(url, {"content-type": "application/json", **params})
        if response.status_code != 200:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = response.json().get("error", "")
            raise JobError(
                f"{response.url}: HTTP {response.status_code}" + (f": {detail}" if detail else ""),
                no_retry=response.status_code in (400, 404),
            )
        try:
            return response.json()
        except ValueError:
            raise JobError(f"{response.url}: the answer is not JSON") from None

    def text_or_none(self, url: str) -> str | None:
        """A text file's content, or None when the server says it does not exist."""
        response = self.get(url)
        if response.status_code in (403, 404, 410):
            return None
        if response.status_code != 200:
            raise JobError(f"{url}: HTTP {response.status_code} {response.reason}")
        return response.text

    def exists(self, url: str) -> bool:
        try:
            response = self.session.head(url, timeout=self.timeout, allow_redirects=True)
        except requests.exceptions.RequestException as error:
            raise JobError(f"{url}: cannot connect ({error})") from None
        return response.status_code == 200

    # --- what Ensembl says -----------------------------------------------------------------------

    def current_release(self) -> str:
        """The release the division publishes now."""
        if self.division == VERTEBRATES:
            answer = self.rest("/info/software")
            key = "release"
        else:
            answer = self.rest("/info/eg_version")
            key = "version"
        if not isinstance(answer, dict) or not str(answer.get(key, "")).strip():
            raise JobError(f"Ensembl's REST API gave no release: {str(answer)[:200]}")
        return str(answer[key]).strip()

    def list_species(self) -> list[EnsemblSpecies]:
        """Every genome of the division."""
        if self.division == VERTEBRATES:
            answer = self.rest("/info/species", division=VERTEBRATES)
            entries = answer.get("species") if isinstance(answer, dict) else None
        else:
            entries = self.rest(f"/info/genomes/division/{self.division}")
        if not isinstance(entries, list):
            raise JobError(f"Ensembl's species list for {self.division} is not a list")
        species = [self._species(entry) for entry in entries if isinstance(entry, dict)]
        species = [s for s in species if s is not None]
        if not species:
            raise JobError(f"Ensembl lists no species in {self.division}")
        return sorted(species, key=lambda s: s.name)

    @staticmethod
    def _species(entry: dict) -> EnsemblSpecies | None:
        name = entry.get("name") or entry.get("species")
        if not name:
            return None
        taxonomy = entry.get("taxonomy_id", entry.get("taxon_id"))
        try:
            taxonomy_id = int(taxonomy) if taxonomy not in (None, "") else None
        except (TypeError, ValueError):
            taxonomy_id = None
        display = entry.get("display_name") or name
        return EnsemblSpecies(
            name=name,
            display_name=display,
            # Vertebrates' display names are common names ("Human"): the production
            # name is the binomial there.
            scientific_name=entry.get("scientific_name") or name.replace("_", " ").capitalize(),
            taxonomy_id=taxonomy_id,
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
        text = self.text_or_none(f"{self.release_url(release)}/species_{self.division}.txt")
        if text is None:
            return {}
        return parse_species_table(text)


def parse_species_table(text: str) -> dict[str, str]:
    """species -> collection for the genomes in a collection, from the
    tab-separated `species_<Division>.txt` (columns named by its `#name` header)."""
    lines = text.splitlines()
    if not lines:
        return {}
    header = lines[0].lstrip("#").split("\t")
    try:
        species_column, core_db_column = header.index("species"), header.index("core_db")
    except ValueError:
        raise JobError(
            f"species file has no 'species' and 'core_db' columns: its header is {lines[0][:200]!r}"
        ) from None
    collections = {}
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) <= max(species_column, core_db_column):
            continue
        collection = collection_of(fields[core_db_column])
        if collection:
            collections[fields[species_column]] = collection
    return collections


def collection_of(core_db: str) -> str:
    """`bacteria_0_collection_core_61_114_1` -> `bacteria_0_collection`; '' otherwise."""
    if "_collection_core_" not in core_db:
        return ""
    return core_db.split("_core_", 1)[0]
