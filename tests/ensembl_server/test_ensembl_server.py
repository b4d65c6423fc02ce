"""The demo organism generator, the BSD sum, and the offline Ensembl server.

Plain pytest: no database. Everything runs on loopback.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from common.bsd_sum import (
    bsd_sum,
    bsd_sum_bytes,
    bsd_sum_path,
    format_sum_line,
    parse_checksums,
)
from demo.ensembl_server import (
    SPECIES_TXT_COLUMNS,
    EnsemblServer,
    ServedGenome,
)
from demo.fasta import read_fasta, reverse_complement
from demo.organism import (
    DEMO_DISPLAY_NAME,
    DEMO_SPECIES,
    DEMO_TAXONOMY_ID,
    PSEUDOGENE_BIOTYPES,
    DemoOrganism,
    generate_organism,
)
from demo.reads import simulate_reads

PROJECT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def parse_gtf(path: Path) -> tuple[list[str], list[dict]]:
    headers, records = [], []
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith("#"):
            headers.append(line)
            continue
        fields = line.split("\t")
        assert len(fields) == 9, line
        assert fields[8].endswith(";"), line
        attrs: dict[str, list[str]] = defaultdict(list)
        for key, value in re.findall(r'(\w+) "([^"]*)";', fields[8]):
            attrs[key].append(value)
        records.append(
            {
                "seqname": fields[0],
                "source": fields[1],
                "feature": fields[2],
                "start": int(fields[3]),
                "end": int(fields[4]),
                "strand": fields[6],
                "frame": fields[7],
                "attrs": {k: v[0] for k, v in attrs.items()},
                "tags": attrs.get("tag", []),
            }
        )
    return headers, records


def fetch(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_get(url: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """A GET that does not follow redirects; the caller reads and closes."""
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=5)
    connection.request(
        "GET", split.path + (f"?{split.query}" if split.query else ""), headers=headers or {}
    )
    return connection.getresponse()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def organism(tmp_path_factory: pytest.TempPathFactory) -> DemoOrganism:
    return generate_organism(tmp_path_factory.mktemp("organism"), n_genes=60, seed=7)


@pytest.fixture(scope="module")
def server(organism: DemoOrganism, tmp_path_factory: pytest.TempPathFactory) -> EnsemblServer:
    genomes = [
        ServedGenome.from_organism(organism, primary_assembly=True, common_name="demo"),
        ServedGenome.from_organism(organism, division="EnsemblFungi"),
        ServedGenome.from_organism(
            organism,
            division="EnsemblBacteria",
            collection="bacteria_0_collection",
            species="refinery_demonstrans_gca_000000000",
            display_name="Refinery demonstrans (demo organism, bacterial copy)",
            strain="demo",
        ),
    ]
    with EnsemblServer(genomes, ftp=True, cache_dir=tmp_path_factory.mktemp("gz-cache")) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_server(request: pytest.FixtureRequest) -> None:
    yield
    if "server" in request.fixturenames:
        running = request.getfixturevalue("server")
        running.clear_faults()
        running.clear_requests()


def genome_of(server: EnsemblServer, division: str) -> ServedGenome:
    return next(g for g in server.genomes if g.division == division)


# --------------------------------------------------------------------------- generator


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = generate_organism(tmp_path / "a", n_genes=40, seed=3)
    second = generate_organism(tmp_path / "b", n_genes=40, seed=3)
    other = generate_organism(tmp_path / "c", n_genes=40, seed=4)
    assert first.genome_fasta.read_bytes() == second.genome_fasta.read_bytes()
    assert first.gtf.read_bytes() == second.gtf.read_bytes()
    assert first.transcript_sequences == second.transcript_sequences
    assert first.genome_fasta.read_bytes() != other.genome_fasta.read_bytes()
    reads_a = simulate_reads(first, {first.protein_coding_transcript_ids()[0]: 1.0}, 50, seed=9)
    reads_b = simulate_reads(second, {second.protein_coding_transcript_ids()[0]: 1.0}, 50, seed=9)
    assert reads_a.read_bytes() == reads_b.read_bytes()


def test_organism_is_clearly_a_demo(organism: DemoOrganism) -> None:
    assert organism.species == DEMO_SPECIES == "refinery_demonstrans"
    assert organism.display_name == DEMO_DISPLAY_NAME
    assert "demo" in organism.display_name
    assert organism.assembly == "Demo1.0"
    assert organism.taxonomy_id == DEMO_TAXONOMY_ID > 100_000_000


def test_fasta_headers_look_like_ensembl(organism: DemoOrganism) -> None:
    lines = organism.genome_fasta.read_text(encoding="ascii").splitlines()
    headers = [line for line in lines if line.startswith(">")]
    assert len(headers) == len(organism.chromosomes) >= 2
    for header, (name, length) in zip(headers, organism.chromosomes.items(), strict=True):
        assert header == f">{name} dna:chromosome chromosome:Demo1.0:{name}:1:{length}:1 REF"
    body = [line for line in lines if not line.startswith(">")]
    assert all(len(line) <= 60 for line in body)
    assert set("".join(body)) <= set("ACGT")


def test_gtf_is_consistent(organism: DemoOrganism) -> None:
    headers, records = parse_gtf(organism.gtf)
    assert headers[0] == "#!genome-build Demo1.0"
    assert any(h.startswith("#!genome-build-accession ") for h in headers)
    genes = {r["attrs"]["gene_id"]: r for r in records if r["feature"] == "gene"}
    transcripts = {r["attrs"]["transcript_id"]: r for r in records if r["feature"] == "transcript"}
    exons: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        assert record["source"] == "ensembl"
        assert record["strand"] in "+-"
        assert record["start"] <= record["end"]
        if record["feature"] == "exon":
            exons[record["attrs"]["transcript_id"]].append(record)

    assert set(genes) == set(organism.genes)
    assert set(transcripts) == set(organism.transcripts)
    for gene_id, gene in genes.items():
        attrs = gene["attrs"]
        assert attrs["gene_version"] == "1"
        assert attrs["gene_source"] == "ensembl"
        assert attrs["gene_biotype"] == organism.genes[gene_id].biotype
        assert attrs["gene_name"]
    per_gene: Counter[str] = Counter()
    for transcript_id, transcript in transcripts.items():
        attrs = transcript["attrs"]
        gene = genes[attrs["gene_id"]]
        per_gene[attrs["gene_id"]] += 1
        assert attrs["transcript_version"] == "1"
        assert attrs["gene_biotype"] == gene["attrs"]["gene_biotype"]
        assert attrs["transcript_biotype"] == organism.transcripts[transcript_id].biotype
        assert transcript["strand"] == gene["strand"]
        assert gene["start"] <= transcript["start"] <= transcript["end"] <= gene["end"]
        its_exons = exons[transcript_id]
        assert 1 <= len(its_exons) <= 6
        assert [int(e["attrs"]["exon_number"]) for e in its_exons] == list(
            range(1, len(its_exons) + 1)
        )
        assert min(e["start"] for e in its_exons) == transcript["start"]
        assert max(e["end"] for e in its_exons) == transcript["end"]
        for exon in its_exons:
            assert exon["attrs"]["gene_id"] == attrs["gene_id"]
            assert exon["attrs"]["exon_id"]
        # exons do not overlap and are listed 5' to 3'
        starts = [e["start"] for e in its_exons]
        assert starts == sorted(starts, reverse=transcript["strand"] == "-")
        ordered = sorted(its_exons, key=lambda e: e["start"])
        assert all(a["end"] < b["start"] for a, b in itertools.pairwise(ordered))

    biotypes = Counter(g["attrs"]["gene_biotype"] for g in genes.values())
    assert biotypes["protein_coding"] > 0
    for biotype in PSEUDOGENE_BIOTYPES:
        assert biotypes[biotype] > 0, f"no {biotype} gene"
    for gene_id, gene in genes.items():
        count = per_gene[gene_id]
        if gene["attrs"]["gene_biotype"] == "protein_coding":
            assert 1 <= count <= 3
        else:
            assert count == 1
    assert max(per_gene.values()) > 1, "some gene should have alternative transcripts"
    assert {g["strand"] for g in genes.values()} == {"+", "-"}

    # genes never overlap
    by_chromosome: dict[str, list[dict]] = defaultdict(list)
    for gene in genes.values():
        by_chromosome[gene["seqname"]].append(gene)
    for chromosome_genes in by_chromosome.values():
        chromosome_genes.sort(key=lambda g: g["start"])
        for left, right in itertools.pairwise(chromosome_genes):
            assert left["end"] < right["start"]

    # coding features only on protein-coding transcripts, with coherent frames
    cds: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record["feature"] in ("CDS", "start_codon", "stop_codon"):
            assert record["attrs"]["transcript_biotype"] == "protein_coding"
        if record["feature"] == "CDS":
            cds[record["attrs"]["transcript_id"]].append(record)
            assert record["attrs"]["protein_id"]
    assert cds
    for pieces in cds.values():
        done = 0
        for piece in pieces:
            assert int(piece["frame"]) == (3 - done % 3) % 3
            done += piece["end"] - piece["start"] + 1
        assert done % 3 == 0


def test_spliced_sequences_match_the_genome(organism: DemoOrganism) -> None:
    genome = read_fasta(organism.genome_fasta)
    _, records = parse_gtf(organism.gtf)
    exons: dict[str, list[dict]] = defaultdict(list)
    strands = {}
    for record in records:
        if record["feature"] == "exon":
            exons[record["attrs"]["transcript_id"]].append(record)
            strands[record["attrs"]["transcript_id"]] = record["strand"]
    assert len(exons) == len(organism.transcript_sequences)
    for transcript_id, its_exons in exons.items():
        chromosome = genome[its_exons[0]["seqname"]]
        pieces = [
            chromosome[e["start"] - 1 : e["end"]]
            for e in sorted(its_exons, key=lambda e: e["start"])
        ]
        spliced = "".join(pieces)
        if strands[transcript_id] == "-":
            spliced = reverse_complement(spliced)
        assert organism.transcript_sequences[transcript_id] == spliced
    assert organism.transcript_to_gene[transcript_id] == its_exons[0]["attrs"]["gene_id"]


def test_simulated_reads_follow_abundances(organism: DemoOrganism, tmp_path: Path) -> None:
    chosen = organism.protein_coding_transcript_ids()[:3]
    abundances = {chosen[0]: 1.0, chosen[1]: 3.0, chosen[2]: 6.0}
    path = simulate_reads(
        organism, abundances, 1000, read_length=50, seed=1, out_path=tmp_path / "r.fq"
    )
    lines = path.read_text(encoding="ascii").splitlines()
    assert len(lines) == 4000
    counts: Counter[str] = Counter()
    for i in range(0, len(lines), 4):
        name, sequence, plus, quality = lines[i : i + 4]
        assert name.startswith("@demo_read_") and plus == "+" and len(quality) == 50
        transcript_id = name.split()[1]
        counts[transcript_id] += 1
        source = organism.transcript_sequences[transcript_id]
        assert sequence in source or reverse_complement(sequence) in source
    assert counts == {chosen[0]: 100, chosen[1]: 300, chosen[2]: 600}


def test_big_organism_has_enough_transcripts(tmp_path: Path) -> None:
    big = generate_organism(tmp_path, n_genes=12_000, seed=11)
    assert len(big.transcripts) >= 20_000
    assert len(big.genes) == 12_000


# --------------------------------------------------------------------------- BSD sum


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 70_001])
def test_bsd_sum_matches_coreutils(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / f"file-{size}.bin"
    path.write_bytes(data)
    expected_python = bsd_sum_bytes(data)
    with open(path, "rb") as handle:
        assert bsd_sum(handle, use_external=False) == expected_python
    assert expected_python[1] == (size + 1023) // 1024
    if shutil.which("sum") is None:
        pytest.skip("coreutils sum is not installed")
    assert bsd_sum_path(path, use_external=True) == expected_python
    coreutils = subprocess.run(
        ["sum", "-r", path.name], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert format_sum_line(*expected_python, path.name) == coreutils


def test_parse_checksums_accepts_spaces_and_tabs() -> None:
    parsed = parse_checksums("07211  9766 a.fa.gz\n00042     1\tREADME\n\n")
    assert parsed == {"a.fa.gz": (7211, 9766), "README": (42, 1)}
    with pytest.raises(ValueError, match="line 1"):
        parse_checksums("not a checksum line\n")


# --------------------------------------------------------------------------- REST


def test_rest_genomes_division_shape(server: EnsemblServer) -> None:
    status, headers, body = fetch(
        server.rest_url + "/info/genomes/division/EnsemblFungi?content-type=application/json"
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    genomes = json.loads(body)
    assert isinstance(genomes, list) and len(genomes) == 1
    genome = genomes[0]
    for key in (
        "name",
        "species",
        "display_name",
        "scientific_name",
        "url_name",
        "taxonomy_id",
        "species_taxonomy_id",
        "assembly_name",
        "assembly_accession",
        "assembly_level",
        "assembly_default",
        "division",
        "dbname",
        "strain",
        "genebuild",
        "base_count",
    ):
        assert key in genome, key
    assert genome["division"] == "EnsemblFungi"
    assert genome["name"] == genome["species"] == "refinery_demonstrans"
    assert genome["taxonomy_id"] == str(DEMO_TAXONOMY_ID)
    assert genome["assembly_name"] == "Demo1.0"
    assert genome["dbname"] == "refinery_demonstrans_core_61_114_1"
    assert int(genome["base_count"]) > 0
    assert genome["strain"] is None

    _, _, body = fetch(server.rest_url + "/info/genomes/division/EnsemblBacteria")
    (bacterium,) = json.loads(body)
    assert bacterium["dbname"] == "bacteria_0_collection_core_61_114_1"
    assert bacterium["species_id"] == "1"
    assert bacterium["strain"] == "demo"


def test_rest_species_and_versions(server: EnsemblServer) -> None:
    status, _, body = fetch(server.rest_url + "/info/species?content-type=application/json")
    assert status == 200
    (species,) = json.loads(body)["species"]
    assert set(species) >= {
        "name",
        "display_name",
        "taxon_id",
        "assembly",
        "accession",
        "division",
        "groups",
        "release",
        "aliases",
        "strain",
        "common_name",
    }
    assert species["division"] == "EnsemblVertebrates"
    assert species["taxon_id"] == str(DEMO_TAXONOMY_ID)
    assert species["release"] == 114
    assert species["common_name"] == "demo"
    assert isinstance(species["groups"], list) and isinstance(species["aliases"], list)

    _, _, body = fetch(server.rest_url + "/info/species?division=ensemblfungi&hide_strain_info=1")
    (fungus,) = json.loads(body)["species"]
    assert fungus["division"] == "EnsemblFungi" and "strain" not in fungus

    assert json.loads(fetch(server.rest_url + "/info/eg_version")[2]) == {"version": "61"}
    assert json.loads(fetch(server.rest_url + "/info/software")[2]) == {"release": 114}
    assert json.loads(fetch(server.rest_url + "/info/ping")[2]) == {"ping": 1}


def test_rest_content_negotiation_and_errors(server: EnsemblServer) -> None:
    url = server.rest_url + "/info/software"
    assert fetch(url, {"Accept": "application/json"})[0] == 200
    assert fetch(url, {"Content-Type": "application/json"})[0] == 200
    assert fetch(url, {"Accept": "text/x-fasta"})[0] == 415
    assert fetch(url + "?content-type=text/xml")[0] == 415

    status, headers, body = fetch(server.rest_url + "/info/genomes/division/EnsemblNowhere")
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert set(json.loads(body)) == {"error"}
    status, _, body = fetch(server.rest_url + "/info/species?division=wibble")
    assert status == 400 and "error" in json.loads(body)


def test_rest_unknown_division_can_be_empty_and_legacy_fields_dropped(
    organism: DemoOrganism,
) -> None:
    genomes = [ServedGenome.from_organism(organism, division="EnsemblPlants")]
    with EnsemblServer(genomes, unknown_division="empty", legacy_genome_fields=False) as plain:
        assert json.loads(fetch(plain.rest_url + "/info/species?division=wibble")[2]) == {
            "species": []
        }
        assert json.loads(fetch(plain.rest_url + "/info/genomes/division/Nope")[2]) == []
        (plant,) = json.loads(fetch(plain.rest_url + "/info/genomes/division/EnsemblPlants")[2])
        assert not {"species", "dbname", "species_id"} & set(plant)


# --------------------------------------------------------------------------- FTP tree


def test_gz_files_and_checksums(server: EnsemblServer, organism: DemoOrganism) -> None:
    for genome in server.genomes:
        for url, original in (
            (server.fasta_url(genome), organism.genome_fasta),
            (server.gtf_url(genome), organism.gtf),
        ):
            status, headers, body = fetch(url)
            assert status == 200, url
            assert headers["Content-Length"] == str(len(body))
            assert gzip.decompress(body) == original.read_bytes()
            status, _, listing = fetch(server.checksums_url(url))
            assert status == 200
            checksums = parse_checksums(listing.decode("ascii"))
            assert checksums[url.rsplit("/", 1)[1]] == bsd_sum_bytes(body)
            assert "README" in checksums
            assert "CHECKSUMS" not in checksums
    assert server.request_count("dna.primary_assembly.fa.gz") == 1

    # Each CHECKSUMS line is exactly what coreutils `sum -r <name>` prints in that folder.
    if shutil.which("sum") is None:
        pytest.skip("coreutils sum is not installed")
    url = server.gtf_url(genome_of(server, "EnsemblBacteria"))
    local = server.local_path(url)
    coreutils = subprocess.run(
        ["sum", "-r", local.name], cwd=local.parent, capture_output=True, text=True, check=True
    ).stdout
    assert coreutils in fetch(server.checksums_url(url))[2].decode("ascii").splitlines(True)


def test_url_layouts(server: EnsemblServer) -> None:
    vertebrate = genome_of(server, "EnsemblVertebrates")
    fungus = genome_of(server, "EnsemblFungi")
    bacterium = genome_of(server, "EnsemblBacteria")
    assert server.fasta_url(vertebrate) == (
        f"{server.ftp_url}/release-114/fasta/refinery_demonstrans/dna/"
        "Refinery_demonstrans.Demo1.0.dna.primary_assembly.fa.gz"
    )
    assert server.gtf_url(vertebrate) == (
        f"{server.ftp_url}/release-114/gtf/refinery_demonstrans/Refinery_demonstrans.Demo1.0.114.gtf.gz"
    )
    assert server.fasta_url(fungus) == (
        f"{server.divisions_ftp_url}/fungi/release-61/fasta/refinery_demonstrans/dna/"
        "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz"
    )
    assert server.gtf_url(bacterium) == (
        f"{server.divisions_ftp_url}/bacteria/release-61/gtf/bacteria_0_collection/"
        "refinery_demonstrans_gca_000000000/Refinery_demonstrans_gca_000000000.Demo1.0.61.gtf.gz"
    )
    # toplevel always exists; primary_assembly only where the genome has one
    assert fetch(server.fasta_url(vertebrate, level="toplevel"))[0] == 200
    assert fetch(server.fasta_url(fungus, level="primary_assembly"))[0] == 404
    # the "current" links of both sites
    assert fetch(f"{server.ftp_url}/current_gtf/refinery_demonstrans/CHECKSUMS")[0] == 200
    assert fetch(f"{server.divisions_ftp_url}/fungi/current/species_EnsemblFungi.txt")[0] == 200
    assert fetch(f"{server.divisions_ftp_url}/release-61/fungi/species_EnsemblFungi.txt")[0] == 200


def test_species_txt(server: EnsemblServer) -> None:
    status, _, body = fetch(server.species_txt_url("EnsemblBacteria"))
    assert status == 200
    header, row, *rest = body.decode("utf-8").split("\n")
    assert rest == [""]
    assert header == "#" + "\t".join(SPECIES_TXT_COLUMNS)
    assert header.startswith(
        "#name\tspecies\tdivision\ttaxonomy_id\tassembly\tassembly_accession\tgenebuild\t"
        "variation\tmicroarray\tpan_compara\tpeptide_compara\tgenome_alignments\t"
        "other_alignments\tcore_db\tspecies_id"
    )
    assert row.endswith("\t")
    values = dict(zip(SPECIES_TXT_COLUMNS, row.split("\t"), strict=False))
    assert values["species"] == "refinery_demonstrans_gca_000000000"
    assert values["assembly"] == "Demo1.0"
    assert re.match(r"^(bacteria_.+_collection)_core_", values["core_db"]).group(1) == (
        "bacteria_0_collection"
    )
    vertebrates = fetch(server.species_txt_url("EnsemblVertebrates"))[2].decode()
    assert "\trefinery_demonstrans_core_114_1\t1\t\n" in vertebrates


def test_directory_listing_and_redirect(server: EnsemblServer) -> None:
    folder = server.fasta_url(genome_of(server, "EnsemblVertebrates")).rsplit("/", 1)[0]
    status, headers, body = fetch(folder + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "Index of /ftp/release-114/fasta/refinery_demonstrans/dna" in page
    assert '<a href="CHECKSUMS">CHECKSUMS</a>' in page
    assert "Refinery_demonstrans.Demo1.0.dna.toplevel.fa.gz" in page
    response = raw_get(folder)
    response.read()
    assert response.status == 301
    assert response.getheader("Location").endswith("/dna/")
    assert fetch(server.ftp_url + "/release-114/nothing-here")[0] == 404


def test_range_requests(server: EnsemblServer) -> None:
    url = server.fasta_url(genome_of(server, "EnsemblVertebrates"))
    _, headers, full = fetch(url)
    size = len(full)
    status, headers, part = fetch(url, {"Range": "bytes=10-99"})
    assert status == 206 and part == full[10:100]
    assert headers["Content-Range"] == f"bytes 10-99/{size}"
    status, _, tail = fetch(url, {"Range": "bytes=1000-"})
    assert status == 206 and tail == full[1000:]
    status, _, suffix = fetch(url, {"Range": "bytes=-20"})
    assert status == 206 and suffix == full[-20:]
    status, headers, _ = fetch(url, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    status, _, body = fetch(url, {"Range": "bytes=5-9", "If-Range": '"stale-etag"'})
    assert status == 200 and body == full
    _, head_headers, _ = fetch(url)
    status, _, body = fetch(url, {"Range": "bytes=5-9", "If-Range": head_headers["ETag"]})
    assert status == 206 and body == full[5:10]
    assert server.request_count(url.rsplit("/", 1)[1], statuses=(206,)) == 4


def test_ftp_scheme(server: EnsemblServer) -> None:
    for genome in server.genomes:
        http_body = fetch(server.fasta_url(genome))[2]
        with urllib.request.urlopen(server.fasta_url(genome, protocol="ftp"), timeout=5) as ftp:
            assert ftp.read() == http_body
    bacterium = genome_of(server, "EnsemblBacteria")
    name = server.gtf_filename(bacterium)
    with urllib.request.urlopen(server.gtf_url(bacterium, protocol="ftp"), timeout=5) as ftp:
        assert gzip.decompress(ftp.read()) == bacterium.gtf.read_bytes()
    assert server.request_count(name, method="RETR", protocol="ftp") == 1
    with urllib.request.urlopen(server.species_txt_url("EnsemblFungi", protocol="ftp")) as ftp:
        assert ftp.read().startswith(b"#name\tspecies\t")

    server.fail_path(name, status=404)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.gtf_url(bacterium, protocol="ftp"), timeout=5).read()


# --------------------------------------------------------------------------- faults


def test_fail_path(server: EnsemblServer) -> None:
    url = server.gtf_url(genome_of(server, "EnsemblFungi"))
    server.fail_path(".61.gtf.gz", status=500, times=2)
    assert fetch(url)[0] == 500
    assert fetch(url)[0] == 500
    assert fetch(url)[0] == 200
    assert server.request_count(".61.gtf.gz", statuses=(500,)) == 2

    server.fail_path("/info/software", status=429, times=1, retry_after=2)
    status, headers, body = fetch(server.rest_url + "/info/software")
    assert status == 429 and headers["Retry-After"] == "2" and "error" in json.loads(body)
    assert fetch(server.rest_url + "/info/software")[0] == 200

    server.fail_path("species_EnsemblFungi.txt", status=404)
    for _ in range(3):
        assert fetch(server.species_txt_url("EnsemblFungi"))[0] == 404
    server.clear_faults()
    assert fetch(server.species_txt_url("EnsemblFungi"))[0] == 200


def test_truncate_closes_the_connection(server: EnsemblServer) -> None:
    url = server.fasta_url(genome_of(server, "EnsemblFungi"))
    full = fetch(url)[2]
    server.truncate("Demo1.0.dna.toplevel.fa.gz", 1000, times=1)
    response = raw_get(url)
    assert response.getheader("Content-Length") == str(len(full))
    with pytest.raises(http.client.IncompleteRead) as raised:
        response.read()
    assert len(raised.value.partial) == 1000
    assert fetch(url)[2] == full  # only once


def test_truncate_gzip_mode_serves_a_consistent_short_file(server: EnsemblServer) -> None:
    url = server.gtf_url(genome_of(server, "EnsemblVertebrates"))
    full = fetch(url)[2]
    server.truncate(".114.gtf.gz", len(full) // 2, mode="gzip")
    status, headers, body = fetch(url)
    assert status == 200
    assert headers["Content-Length"] == str(len(full) // 2) == str(len(body))
    with pytest.raises((EOFError, zlib.error, OSError)):
        gzip.decompress(body)
    checksums = parse_checksums(fetch(server.checksums_url(url))[2].decode())
    assert checksums[url.rsplit("/", 1)[1]] != bsd_sum_bytes(body)


def test_corrupt_checksum(server: EnsemblServer) -> None:
    genome = genome_of(server, "EnsemblBacteria")
    url = server.fasta_url(genome)
    name = url.rsplit("/", 1)[1]
    body = fetch(url)[2]
    server.corrupt_checksum(name)
    listed = parse_checksums(fetch(server.checksums_url(url))[2].decode())
    assert listed[name] != bsd_sum_bytes(body)
    assert listed[name][1] == bsd_sum_bytes(body)[1]
    with urllib.request.urlopen(
        server.checksums_url(server.fasta_url(genome, protocol="ftp"))
    ) as f:
        assert parse_checksums(f.read().decode())[name] == listed[name]
    server.clear_faults()
    restored = parse_checksums(fetch(server.checksums_url(url))[2].decode())
    assert restored[name] == bsd_sum_bytes(body)
    with pytest.raises(FileNotFoundError):
        server.corrupt_checksum("no-such-file.fa.gz")


def test_override_file_serves_other_bytes_until_cleared(server: EnsemblServer) -> None:
    url = server.gtf_url(genome_of(server, "EnsemblFungi"))
    folder = url.rsplit("/", 1)[0]
    original = fetch(f"{folder}/CHECKSUMS")[2]
    server.override_file(f"{folder}/CHECKSUMS", b"00001     1 other.gtf.gz\n")
    server.override_file(f"{folder}/extra.txt", b"added")
    assert fetch(f"{folder}/CHECKSUMS")[2] == b"00001     1 other.gtf.gz\n"
    assert fetch(f"{folder}/extra.txt")[:3:2] == (200, b"added")
    with pytest.raises(ValueError, match="outside the served tree"):
        server.override_file(f"{folder}/../../../../../../../escape.txt", b"no")
    server.clear_faults()
    assert fetch(f"{folder}/CHECKSUMS")[2] == original
    assert fetch(f"{folder}/extra.txt")[0] == 404


def test_required_credentials_guard_the_trees_not_the_rest_api(server: EnsemblServer) -> None:
    url = server.gtf_url(genome_of(server, "EnsemblFungi"))
    server.require_credentials("reader", "secret")
    status, headers, _ = fetch(url)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    good = "Basic " + base64.b64encode(b"reader:secret").decode()
    assert fetch(url, {"Authorization": good})[0] == 200
    assert fetch(f"{server.rest_url}/info/ping")[0] == 200
    server.clear_faults()
    assert fetch(url)[0] == 200


def test_delay_trips_client_timeouts(server: EnsemblServer) -> None:
    url = server.gtf_url(genome_of(server, "EnsemblFungi"))
    server.delay(".61.gtf.gz", 3, times=1)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        fetch(url, timeout=0.3)
    full = fetch(url)[2]

    server.delay(".61.gtf.gz", 3, times=1, after_bytes=100)
    response = raw_get(url)
    response.fp.raw._sock.settimeout(0.3)  # type: ignore[attr-defined]
    assert response.status == 200
    with pytest.raises((TimeoutError, socket.timeout)):
        response.read()
    assert fetch(url)[2] == full


# --------------------------------------------------------------------------- CLI


def test_cli_serves_a_demo_organism(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo.ensembl_server",
            "--genes",
            "20",
            "--seed",
            "1",
            "--json",
            "--out",
            str(tmp_path / "organism"),
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        assert json.loads(fetch(urls["rest_url"] + "/info/software")[2]) == {"release": 114}
        (genome,) = urls["genomes"]
        assert fetch(genome["fasta_url"])[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
