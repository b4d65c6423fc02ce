"""The command line: generate a demo organism and serve it until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from demo.ensembl_server.genomes import ServedGenome
from demo.ensembl_server.server import EnsemblServer
from surveyor.ensembl_divisions import DIVISIONS, VERTEBRATES


def main(argv: Sequence[str] | None = None) -> int:
    """Generate a demo organism, serve it as Ensembl would, print the URLs, wait for Ctrl-C."""
    from demo.organism import DEMO_SPECIES, generate_organism

    parser = argparse.ArgumentParser(
        prog="python -m demo.ensembl_server",
        description="Serve a generated demo organism the way Ensembl's REST API and FTP do.",
    )
    parser.add_argument("--genes", type=int, default=200, help="genes to generate (200)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--species", default=DEMO_SPECIES, help="production name")
    parser.add_argument(
        "--division",
        action="append",
        choices=DIVISIONS,
        help="division(s) to publish the organism in (default EnsemblVertebrates); repeatable",
    )
    parser.add_argument("--collection", help="collection folder for non-vertebrate divisions")
    parser.add_argument(
        "--primary-assembly", action="store_true", help="also publish primary_assembly"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the organism (default: a temp dir)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="HTTP port (default: any free one)")
    parser.add_argument("--ftp", action="store_true", help="also serve real FTP")
    parser.add_argument("--ftp-port", type=int, default=0)
    parser.add_argument("--divisions-ftp-port", type=int, default=0)
    parser.add_argument("--ensembl-release", type=int, default=114)
    parser.add_argument("--eg-release", type=int, default=61)
    parser.add_argument("--json", action="store_true", help="print the URLs as one JSON object")
    args = parser.parse_args(argv)

    out_dir = args.out or Path(tempfile.mkdtemp(prefix="refinery-demo-organism-"))
    organism = generate_organism(out_dir, species=args.species, n_genes=args.genes, seed=args.seed)
    genomes = [
        ServedGenome.from_organism(
            organism,
            division=division,
            primary_assembly=args.primary_assembly,
            collection=args.collection if division != VERTEBRATES else None,
        )
        for division in (args.division or [VERTEBRATES])
    ]
    server = EnsemblServer(
        genomes,
        ensembl_release=args.ensembl_release,
        eg_release=args.eg_release,
        host=args.host,
        port=args.port,
        ftp=args.ftp,
        ftp_port=args.ftp_port,
        divisions_ftp_port=args.divisions_ftp_port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        urls: dict[str, Any] = {
            "rest_url": server.rest_url,
            "ftp_url": server.ftp_url,
            "divisions_ftp_url": server.divisions_ftp_url,
            "organism_dir": str(out_dir),
            "species": organism.species,
            "genomes": [
                {
                    "division": g.division,
                    "fasta_url": server.fasta_url(g),
                    "gtf_url": server.gtf_url(g),
                }
                for g in server.genomes
            ],
        }
        if args.ftp:
            urls["ftp_scheme_url"] = server.ftp_scheme_url
            urls["divisions_ftp_scheme_url"] = server.divisions_ftp_scheme_url
        if args.json:
            print(json.dumps(urls), flush=True)
        else:
            print(
                f"Demo organism {organism.species} ({len(organism.genes)} genes, "
                f"{len(organism.transcripts)} transcripts) in {out_dir}"
            )
            print(f"REST API (rest.ensembl.org):                 {server.rest_url}")
            print(f"FTP tree over HTTP (ftp.ensembl.org/pub):    {server.ftp_url}")
            print(f"FTP tree over HTTP (ftp.ensemblgenomes/pub): {server.divisions_ftp_url}")
            if args.ftp:
                print(f"FTP (ftp.ensembl.org/pub):                   {server.ftp_scheme_url}")
                divisions_ftp = server.divisions_ftp_scheme_url
                print(f"FTP (ftp.ensemblgenomes/pub):                {divisions_ftp}")
            for entry in urls["genomes"]:
                print(f"  {entry['division']}: {entry['fasta_url']}")
                print(f"  {' ' * len(entry['division'])}  {entry['gtf_url']}")
            print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
