"""Ensembl-shaped loopback servers for the surveyor, downloader and processor tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.ensembl_server import EnsemblServer, ServedGenome
from demo.organism import generate_organism

FUNGI, VERTEBRATES = "EnsemblFungi", "EnsemblVertebrates"


def serve(tmp_path: Path, settings, genomes: list[ServedGenome], **options) -> EnsemblServer:
    server = EnsemblServer(genomes, cache_dir=tmp_path / "gz-cache", **options).start()
    settings.ENSEMBL_REST_URL = server.rest_url
    settings.ENSEMBL_FTP_URL = server.ftp_url
    settings.ENSEMBL_GENOMES_FTP_URL = server.divisions_ftp_url
    settings.REFINERY_HTTP_TIMEOUT_S = 2
    return server


@pytest.fixture
def organisms(tmp_path):
    """Three small generated organisms."""
    return {
        name: generate_organism(tmp_path / name, species=name, n_genes=12, seed=seed)
        for seed, name in enumerate(
            ["refinery_demonstrans", "refinery_collectans", "refinery_vertebratus"]
        )
    }


@pytest.fixture
def ensembl(tmp_path, settings, organisms, refinery_dirs):
    """Fungi (one in a collection folder) and a vertebrate with a primary assembly."""
    genomes = [
        ServedGenome.from_organism(organisms["refinery_demonstrans"], division=FUNGI),
        ServedGenome.from_organism(
            organisms["refinery_collectans"], division=FUNGI,
            collection="fungi_ascomycota1_collection",
        ),
        ServedGenome.from_organism(
            organisms["refinery_vertebratus"], division=VERTEBRATES, primary_assembly=True
        ),
    ]  # fmt: skip
    server = serve(tmp_path, settings, genomes, ftp=True)
    yield server
    server.stop()
