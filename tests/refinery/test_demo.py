"""`manage.py demo` runs the main job end to end on the embedded defaults."""

import gzip
import os
import sqlite3
import subprocess
import sys
import uuid

import pytest

from tests.conftest import MANAGE, PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]  # it brings its own SQLite: once


def test_the_demo_builds_two_indices_quantifies_a_study_and_builds_its_dataset(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REFINERY_"))}
    env["REFINERY_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, str(MANAGE), "demo", "--genes", "120"],
        env=env, cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Refinery demonstrans long (k=31" in result.stdout
    assert "Refinery demonstrans short (k=23" in result.stdout
    database = sqlite3.connect(tmp_path / "refinery.sqlite3")
    rows = database.execute(
        "SELECT i.length, f.key, f.size, p.tools, p.commands, p.inputs "
        "FROM common_transcriptomeindex i JOIN common_computedfile f ON f.id = i.computed_file_id "
        "JOIN common_provenance p ON p.id = f.provenance_id ORDER BY i.length"
    ).fetchall()
    assert [row[0] for row in rows] == ["long", "short"]
    for _length, key, size, tools, commands, inputs in rows:
        stored = tmp_path / "storage" / "permanent" / key
        assert stored.stat().st_size == size > 0
        assert "salmon" in tools and "rsem" in tools
        assert "salmon" in commands and "rsem-prepare-reference" in commands
        assert inputs.count("sha256") == 2
    states = database.execute(
        "SELECT state FROM common_downloaderjob UNION ALL SELECT state FROM common_processorjob"
    ).fetchall()
    # The indices (3 jobs), the RNA-seq study (9), the Illumina run's archive and
    # demultiplexing (3) and the Nanopore run's pod5 batch (1) succeed; its
    # basecalling waits for Dorado, which this machine does not have.
    assert sorted(states) == [("queued",)] + [("succeeded",)] * 16
    assert "Basecalling waits: 1 job(s) queued for a GPU worker with Dorado" in result.stdout
    runs = database.execute(
        "SELECT platform, state FROM common_sequencingrun ORDER BY platform"
    ).fetchall()
    assert runs == [("illumina", "demultiplexed"), ("nanopore", "complete")]
    history = database.execute(
        "SELECT c.new_state FROM common_runstatechange c JOIN common_sequencingrun r "
        "ON r.id = c.run_id WHERE r.platform = 'illumina' ORDER BY c.at, c.id"
    ).fetchall()
    assert history == [
        ("sequencing",), ("complete",), ("archiving",), ("archived",), ("demultiplexing",),
        ("demultiplexed",),
    ]  # fmt: skip
    (fastqs,) = database.execute(
        "SELECT count(*) FROM common_computedfile WHERE format = 'fastq.gz'"
    ).fetchone()
    assert fastqs > 0
    assert not any((tmp_path / "storage" / "temp").rglob("*.gz"))  # raw files were removed
    quantified = database.execute("SELECT mapping_rate FROM common_quantification").fetchall()
    assert len(quantified) == 4 and all(rate > 0.9 for (rate,) in quantified)
    [(dataset_id, genes, key)] = database.execute(
        "SELECT d.id, d.genes, f.key FROM common_dataset d "
        "JOIN common_computedfile f ON f.id = d.matrix_file_id"
    ).fetchall()
    matrix = gzip.decompress((tmp_path / "storage" / "permanent" / key).read_bytes()).decode()
    header, *rows = matrix.splitlines()
    assert header.split("\t") == ["gene_id", *(f"SAMN9000000{n}" for n in range(1, 5))]
    assert len(rows) == genes > 0
    assert f"/api/datasets/{uuid.UUID(dataset_id)}/download/" in result.stdout
