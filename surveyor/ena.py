"""The `ena` source: the RNA-seq runs of a study (or one run) in ENA, each a batch
of the `salmon_quant` pipeline whose files are the run's FASTQs, fetched over
HTTPS with the MD5 and size ENA lists for each.

Runs the pipeline cannot use are skipped with the reason (not RNA-Seq, not
TRANSCRIPTOMIC, not ILLUMINA, no FASTQ, another organism than asked, an
organism without a transcriptome index): recorded as `SkippedRun` rows and
printed by the survey. A record whose files are inconsistent (MD5s or sizes
missing or not one per file, a paired run with one file) is refused: the
other runs are recorded, then the survey fails naming it. Samples and studies
are recorded as `Sample` and `Experiment` rows.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from urllib.parse import quote

from django.conf import settings
from django.db import transaction

from common.filenames import shorten
from common.models import (
    Batch,
    Experiment,
    JobState,
    Sample,
    SkippedRun,
    SurveyJob,
    TranscriptomeIndex,
)
from common.models.choices import ProcessorPipeline, SurveySource
from runner.dispatch import send_job
from runner.pipeline import JobError, run_pipeline
from surveyor.ena_client import EnaClient
from surveyor.ensembl_client import EnsemblClient
from surveyor.ensembl_divisions import DIVISIONS, VERTEBRATES
from surveyor.external_source import (
    DiscoveredBatch,
    DiscoveredFile,
    ExternalSourceSurveyor,
    SurveyContext,
)

STUDY = re.compile(r"(PRJ[EDN][AB][0-9]{1,12}|[SED]RP[0-9]{1,12})")
RUN = re.compile(r"[SED]RR[0-9]{1,12}")
MD5 = re.compile(r"[0-9a-f]{32}")


def organism_key(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def fastq_url(path: str) -> str:
    """ENA's `fastq_ftp` entry (`ftp.sra.ebi.ac.uk/vol1/…`, no scheme) at the HTTPS
    base `ENA_FASTQ_URL`: the host ENA names is replaced, whatever it is."""
    rest = path.split("://", 1)[-1].split("/", 1)
    tail = rest[1] if len(rest) == 2 else ""
    return f"{settings.ENA_FASTQ_URL.rstrip('/')}/{quote(tail, safe='/')}"


def species_name(organism: str) -> str | None:
    """Ensembl's production name for a scientific name (`homo_sapiens`), or None
    when the name cannot be one."""
    species = organism.lower().replace(" ", "_")
    return species if re.fullmatch(r"[a-z0-9_]{1,200}", species) else None


class EnaSurveyor(ExternalSourceSurveyor):
    source = SurveySource.ENA
    help = "RNA-seq runs of an ENA/SRA study or run: one salmon_quant batch per run"
    base_url_settings = ("ENA_PORTAL_URL", "ENA_FASTQ_URL")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--study", help="a study: PRJNA…, PRJEB…, SRP…, ERP…")
        what.add_argument("--run", help="one run: SRR…, ERR…, DRR…")
        parser.add_argument("--organism", help="only runs of this organism (scientific name)")
        parser.add_argument(
            "--format", choices=["tsv", "json"], default="tsv", help="ENA's answer format"
        )
        parser.add_argument(
            "--ensembl-division",
            choices=list(DIVISIONS),
            help="for an organism without a transcriptome index, the Ensembl division to "
            "survey for it (default: the division Ensembl's REST API names for the species). "
            "The survey is queued once, and the organism's runs wait for the index",
        )

    @classmethod
    def parameters_from_options(cls, options: dict) -> dict:
        study, run = options.get("study"), options.get("run")
        if study is not None and not STUDY.fullmatch(study):
            raise JobError(f"--study must be a study accession (PRJNA…, SRP…), not {study!r}")
        if run is not None and not RUN.fullmatch(run):
            raise JobError(f"--run must be a run accession (SRR…, ERR…, DRR…), not {run!r}")
        return {
            "accession": study or run,
            "organism": options.get("organism") or "",
            "format": options.get("format") or "tsv",
            "ensembl_division": options.get("ensembl_division") or "",
        }

    # --- the survey --------------------------------------------------------------------------

    def survey(self) -> SurveyContext:
        self.skipped: list[tuple[str, str]] = []
        self.rows: dict[str, dict] = {}
        return run_pipeline(
            self.job,
            [self.discover, self.record_batches, self.record_samples, self.report],
        )

    def discover_batches(self) -> Iterable[DiscoveredBatch]:
        accession = self.parameters["accession"]
        rows = EnaClient(answer_format=self.parameters.get("format", "tsv")).filereport(accession)
        wanted = organism_key(self.parameters.get("organism") or "")
        batches = []
        for row in rows:
            run = row["run_accession"]
            why = self.unusable(row, wanted)
            if why:
                self.skip(run, why)
                continue
            files = self.run_files(row)
            if files is None:
                continue
            self.rows[run] = row
            batches.append(self.run_batch(row, files))
        return batches

    def unusable(self, row: dict, wanted: str) -> str | None:
        """Why this pipeline cannot use a run, or None when it can."""
        checks = (
            ("library_strategy", "RNA-Seq"),
            ("library_source", "TRANSCRIPTOMIC"),
            ("instrument_platform", "ILLUMINA"),
        )
        for field, value in checks:
            if row[field].upper() != value.upper():
                return f"{field} is {shorten(row[field], 40) or 'empty'}, not {value}"
        if not row["fastq_ftp"].strip():
            return "ENA has no FASTQ files for it"
        organism = organism_key(row["scientific_name"])
        if wanted and organism != wanted:
            return f"its organism is {shorten(organism, 80)}, not {wanted}"
        if not TranscriptomeIndex.objects.filter(organism__scientific_name=organism).exists():
            division = self.division_for(organism)
            if division:
                self.request_index(organism, division)
                return None  # recorded: its quantification waits for the index
            return (
                f"no transcriptome index for {shorten(organism, 80)} and none to be had: "
                "Ensembl has no genome of that name (--ensembl-division names a division "
                "to survey for it)"
            )
        return None

    def division_for(self, organism: str) -> str | None:
        """The Ensembl division to build the organism's index from: the one
        --ensembl-division names, or the one Ensembl's REST API says publishes
        it (asked once per organism and survey)."""
        if self.parameters.get("ensembl_division"):
            return self.parameters["ensembl_division"]
        species = species_name(organism)
        if species is None:
            return None
        cache = self.__dict__.setdefault("_divisions", {})
        if species not in cache:
            cache[species] = EnsemblClient(VERTEBRATES).division_of(species)
        return cache[species]

    def request_index(self, organism: str, division: str) -> None:
        """Queue the Ensembl survey of the organism's species, unless one is queued,
        running or done already."""
        species = species_name(organism)
        if species is None:
            return  # not a name Ensembl could have: its runs wait, the reason says why
        earlier = SurveyJob.objects.filter(source=SurveySource.ENSEMBL).exclude(
            state=JobState.FAILED
        )
        if any(species in (job.parameters or {}).get("species", []) for job in earlier):
            return
        job = SurveyJob.objects.create(
            source=SurveySource.ENSEMBL,
            parameters={"division": division, "species": [species], "release": None},
        )
        send_job(job)
        print(f"queued survey job {job.pk}: Ensembl {division} for {species}", flush=True)

    def run_files(self, row: dict) -> list[DiscoveredFile] | None:
        """The run's FASTQs with their MD5s and sizes; None (refused) when ENA's
        record is inconsistent."""
        run = row["run_accession"]
        urls, md5s, sizes = ([x for x in row[f].split(";") if x.strip()] for f in
                             ("fastq_ftp", "fastq_md5", "fastq_bytes"))  # fmt: skip
        problem = None
        if len(md5s) != len(urls):
            problem = f"fastq_md5 lists {len(md5s)} sum(s) for {len(urls)} file(s)"
        elif len(sizes) != len(urls):
            problem = f"fastq_bytes lists {len(sizes)} size(s) for {len(urls)} file(s)"
        elif not all(MD5.fullmatch(m.lower()) for m in md5s):
            problem = "fastq_md5 holds something that is not an MD5"
        elif not all(s.isascii() and s.isdigit() and len(s) < 16 for s in sizes):
            problem = "fastq_bytes holds something that is not a size"
        if problem is None and row["library_layout"].upper() == "PAIRED":
            mates = [i for i, u in enumerate(urls) if re.search(r"_[12]\.f(ast)?q\.gz$", u)]
            if len(mates) != 2:
                problem = f"a paired run needs _1 and _2 files, ENA lists {len(mates)}"
            else:
                urls, md5s, sizes = ([xs[i] for i in mates] for xs in (urls, md5s, sizes))
        elif problem is None and len(urls) != 1:
            problem = f"a single-end run needs one file, ENA lists {len(urls)}"
        if problem:
            self.refuse(f"run {run}", problem)
            return None
        return [
            DiscoveredFile(
                url=fastq_url(url),
                filename=url.rsplit("/", 1)[-1],
                raw_format="fastq.gz",
                expected_size=int(size),
                expected_checksums={"md5": md5.lower()},
                listed_in=f"ENA's record of {run}",
            )
            for url, md5, size in zip(urls, md5s, sizes, strict=True)
        ]

    def run_batch(self, row: dict, files: list[DiscoveredFile]) -> DiscoveredBatch:
        reads, bases = row["read_count"], row["base_count"]
        paired = row["library_layout"].upper() == "PAIRED"
        length = None
        if reads.isdigit() and bases.isdigit() and int(reads):
            length = int(bases) / int(reads) / (2 if paired else 1)
        kept = ("experiment_accession", "study_accession", "sample_accession",
                "instrument_model", "read_count", "base_count")  # fmt: skip
        metadata = {name: row[name] for name in kept}
        metadata["layout"] = "PAIRED" if paired else "SINGLE"
        metadata["mean_read_length"] = length
        return DiscoveredBatch(
            accession=row["run_accession"],
            files=files,
            organism_name=organism_key(row["scientific_name"]),
            taxonomy_id=int(row["tax_id"]) if row["tax_id"].isdigit() else None,
            pipeline=ProcessorPipeline.SALMON_QUANT,
            metadata=metadata,
        )

    def skip(self, run: str, why: str) -> None:
        print(f"skipped run {run}: {why}", flush=True)
        self.skipped.append((run, why))

    def record_samples(self, context: SurveyContext) -> SurveyContext:
        """The skipped runs, and each recorded run's sample and study."""
        with transaction.atomic():
            SkippedRun.objects.bulk_create(
                SkippedRun(survey_job=self.job, accession=run, reason=why[:1024])
                for run, why in self.skipped
            )
            batches = Batch.objects.filter(source=self.source, accession__in=list(self.rows))
            for batch in batches:
                self.record_sample(self.rows[batch.accession], batch)
        return context

    @staticmethod
    def record_sample(row: dict, batch: Batch) -> None:
        """The run's sample (its run accession stands in when ENA names none) and
        study (none when ENA names none)."""
        sample, _ = Sample.objects.get_or_create(
            accession=(row["sample_accession"] or row["secondary_sample_accession"])[:64]
            or batch.accession,
            defaults={
                "source": SurveySource.ENA,
                "alternate_accession": row["secondary_sample_accession"][:64],
                "title": row["sample_title"][:1024],
                "organism": batch.organism,
                "platform": row["instrument_platform"][:64],
                "attributes": {
                    "instrument_model": row["instrument_model"],
                    "experiment_accession": row["experiment_accession"],
                    "experiment_title": row["experiment_title"],
                    "library_layout": row["library_layout"],
                },
            },
        )
        sample.batches.add(batch)
        accession = (row["study_accession"] or row["secondary_study_accession"])[:64]
        if accession:
            study, _ = Experiment.objects.get_or_create(
                accession=accession,
                defaults={
                    "source": SurveySource.ENA,
                    "alternate_accession": row["secondary_study_accession"][:64],
                    "title": row["study_title"][:1024],
                },
            )
            sample.experiments.add(study)

    def report(self, context: SurveyContext) -> SurveyContext:
        if self.skipped:
            print(f"{len(self.skipped)} run(s) skipped", flush=True)
        return super().report(context)


__all__ = ["EnaSurveyor"]
