"""An offline, deterministic stand-in for Ensembl: its REST API and its FTP tree, on loopback.

:class:`EnsemblServer` serves, from one threaded HTTP server on ``127.0.0.1``:

``/rest/...``
    the parts of ``https://rest.ensembl.org`` that a transcriptome-index surveyor uses, in
    Ensembl's response shapes: ``info/genomes/division/<division>``, ``info/genomes/<name>``,
    ``info/species``, ``info/eg_version``, ``info/software``, ``info/data``,
    ``info/divisions``, ``info/ping``. JSON only; the ``content-type`` query parameter and the
    ``Accept`` / ``Content-Type`` request headers are honoured. Errors are ``{"error": "..."}``
    with status 400, as Ensembl's.
``/ftp/...``
    what ``https://ftp.ensembl.org/pub/`` holds for the served vertebrate genomes:
    ``release-<E>/fasta/<species>/dna/<Species>.<Assembly>.dna.toplevel.fa.gz`` (and
    ``...dna.primary_assembly.fa.gz`` where the genome has one),
    ``release-<E>/gtf/<species>/<Species>.<Assembly>.<E>.gtf.gz`` (and ``.chr.gtf.gz``), a
    ``README`` and a ``CHECKSUMS`` file (BSD ``sum``) in every leaf folder,
    ``release-<E>/species_EnsemblVertebrates.txt``, and the ``current_fasta`` /
    ``current_gtf`` links.
``/ftp-genomes/...``
    what ``https://ftp.ensemblgenomes.ebi.ac.uk/pub/`` holds for the other divisions:
    ``<short>/release-<G>/fasta/[<collection>/]<species>/dna/...``,
    ``<short>/release-<G>/gtf/[<collection>/]<species>/<Species>.<Assembly>.<G>.gtf.gz``,
    ``<short>/release-<G>/species_<Division>.txt`` (whose ``core_db`` column names the
    collection, e.g. ``bacteria_0_collection_core_61_114_1``), and the ``<short>/current`` and
    ``release-<G>/<short>`` links; ``<short>`` is plants, fungi, metazoa, protists or bacteria.

Folders are listed as Apache-style HTML index pages; files honour ``Range`` requests (206)
and ``If-Range``. With ``ftp=True`` the same two trees are also served over real FTP
(pyftpdlib, anonymous, read-only) on two more loopback ports, as ``ftp://.../pub/...``.

Every request is recorded (:attr:`EnsemblServer.requests`), and faults can be injected for
tests: :meth:`~EnsemblServer.fail_path`, :meth:`~EnsemblServer.truncate`,
:meth:`~EnsemblServer.corrupt_checksum`, :meth:`~EnsemblServer.delay`; and a hostile or
private mirror played: :meth:`~EnsemblServer.override_file` (serve other bytes, at any
path), :meth:`~EnsemblServer.require_credentials` (HTTP Basic authentication).

Run ``python -m demo.ensembl_server --genes 200 --seed 1`` to serve a generated demo
organism and print the URLs.
"""

from demo.ensembl_server.cli import main
from demo.ensembl_server.genomes import ServedGenome
from demo.ensembl_server.recording import RecordedRequest
from demo.ensembl_server.server import EnsemblServer
from demo.ensembl_server.trees import DEFAULT_FILE_MTIME, SPECIES_TXT_COLUMNS

__all__ = [
    "DEFAULT_FILE_MTIME",
    "SPECIES_TXT_COLUMNS",
    "EnsemblServer",
    "RecordedRequest",
    "ServedGenome",
    "main",
]
