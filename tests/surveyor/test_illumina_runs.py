"""`manage.py survey illumina_runs`: run folders generated in five instruments'
layouts (demo/illumina_run.py), surveyed for real (a supervised child process,
the test database, real files and their ctimes).

A marker's ctime cannot be set: each test writes the markers, then sets
REFINERY_ILLUMINA_GRACE_S above their age (within the grace period) or to 0
(past it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from common.models import Batch, DownloaderJob, JobState, SurveyJob
from common.models.choices import DownloaderTask, ProcessorPipeline, SurveySource
from common.models.runs import RunState, SequencingRun
from demo.illumina_run import LAYOUTS, add_sample_sheet, finish_run, write_run_folder
from runner.job_logs import read_log
from surveyor.illumina_files import instrument_from_id
from tests.conftest import MANAGE, PROJECT

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_TYPES = {
    "miseq": "MiSeq",
    "nextseq500": "NextSeq 500/550",
    "novaseq6000": "NovaSeq 6000",
    "nextseq2000": "NextSeq 2000",
    "novaseqx": "NovaSeq X",
}


@pytest.fixture
def runs_dir(tmp_path, refinery_dirs, settings):
    settings.REFINERY_ILLUMINA_GRACE_S = 0
    folder = tmp_path / "sequencers"
    folder.mkdir()
    return folder


def survey(*dirs, archive_failed=False):
    args = ["survey", "illumina_runs", *map(str, dirs)]
    if archive_failed:
        args.append("--archive-failed")
    call_command(*args)


def history(run: SequencingRun) -> list[tuple[str, str]]:
    return [(c.old_state, c.new_state) for c in run.history]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_finished_run_is_complete_with_two_batches_sharing_one_downloader_job(runs_dir, layout):
    folder = write_run_folder(runs_dir, layout, sample_sheet=True, finished=True)
    survey(runs_dir)
    run = SequencingRun.objects.get()
    spec = LAYOUTS[layout]
    assert run.run_id == folder.name and run.location == str(folder)
    assert run.state == RunState.COMPLETE
    assert history(run) == [("", "sequencing"), ("sequencing", "complete")]
    marker = "CopyComplete.txt" if "CopyComplete.txt" in spec.markers else "RTAComplete.txt"
    assert run.state_reason.startswith(f"{marker} is ")
    survey_job = SurveyJob.objects.get()
    assert [(c.job_kind, c.job_id) for c in run.history] == [("survey", survey_job.pk)] * 2
    assert run.instrument_id == spec.instrument_id
    assert run.instrument_type == EXPECTED_TYPES[layout]
    assert run.flowcell == spec.flowcell and run.run_number == 42
    assert run.run_date.date().isoformat() == "2026-01-15"
    assert run.lanes == spec.lanes and len(run.tiles) == 2 * spec.lanes
    assert [r["cycles"] for r in run.read_structure] == [8, 4, 8]
    assert [r["is_index"] for r in run.read_structure] == [False, True, False]
    sheet = (folder / "SampleSheet.csv").read_bytes()
    assert run.sample_sheet == sheet.decode() and run.sample_sheet_sha256 == (
        hashlib.sha256(sheet).hexdigest()
    )
    batches = {b.variant: b for b in Batch.objects.all()}
    assert set(batches) == {"archive", "fastq"}
    assert batches["archive"].pipeline_required == ProcessorPipeline.ILLUMINA_RUN_ARCHIVE
    assert batches["fastq"].pipeline_required == ProcessorPipeline.BCL2FASTQ
    for batch in batches.values():
        assert batch.source == SurveySource.ILLUMINA_RUNS and batch.accession == run.run_id
        assert batch.sequencing_run_id == run.pk
    job = DownloaderJob.objects.get()
    assert job.downloader_task == DownloaderTask.ILLUMINA_RUN
    assert set(job.batches.all()) == set(batches.values())


def test_runs_in_progress_are_recorded_as_sequencing_and_get_no_batch(runs_dir):
    """NovaSeq 6000 with RTAComplete.txt but no CopyComplete.txt is still copying;
    a MiSeq's RTAComplete.txt is its end."""
    bare = write_run_folder(runs_dir, "novaseqx", number=1)
    copying = write_run_folder(runs_dir, "novaseq6000", number=2)
    (copying / "RTAComplete.txt").write_text("done\n")
    miseq = write_run_folder(runs_dir, "miseq", number=3)
    (miseq / "RTAComplete.txt").write_text("done\n")
    survey(runs_dir)
    states = dict(SequencingRun.objects.values_list("run_id", "state"))
    assert states == {
        bare.name: RunState.SEQUENCING,
        copying.name: RunState.SEQUENCING,
        miseq.name: RunState.COMPLETE,
    }
    assert SequencingRun.objects.get(run_id=copying.name).state_reason.startswith(
        "found by survey job"
    )
    assert set(Batch.objects.values_list("accession", flat=True)) == {miseq.name}
    assert DownloaderJob.objects.count() == 1


def test_a_marker_younger_than_the_grace_period_waits(runs_dir, settings):
    folder = write_run_folder(runs_dir, "novaseq6000", finished=True)
    settings.REFINERY_ILLUMINA_GRACE_S = 3600
    survey(runs_dir)
    run = SequencingRun.objects.get()
    assert run.state == RunState.SEQUENCING and not Batch.objects.exists()
    # Past it (the same marker, its ctime unchanged): complete.
    settings.REFINERY_ILLUMINA_GRACE_S = 0
    survey(runs_dir)
    run.refresh_from_db()
    assert run.state == RunState.COMPLETE
    assert set(Batch.objects.values_list("variant", flat=True)) == {"archive"}
    assert folder.name == run.run_id


def test_the_grace_period_is_measured_by_ctime_not_mtime(runs_dir, settings):
    """A copy to NFS keeps the source's mtime: an old mtime on a marker that has
    just arrived must not count."""
    folder = write_run_folder(runs_dir, "novaseq6000", finished=True)
    os.utime(folder / "CopyComplete.txt", (1_000_000_000, 1_000_000_000))  # 2001
    settings.REFINERY_ILLUMINA_GRACE_S = 3600
    survey(runs_dir)
    assert SequencingRun.objects.get().state == RunState.SEQUENCING


@pytest.mark.parametrize("layout", ["novaseqx", "nextseq2000"])
def test_a_run_the_instrument_reports_failed_is_failed_and_not_archived(runs_dir, layout):
    write_run_folder(runs_dir, layout, sample_sheet=True, finished=True, failed=True)
    survey(runs_dir)
    run = SequencingRun.objects.get()
    assert run.state == RunState.FAILED
    status = "RunErrored" if layout == "novaseqx" else "ExceptionEndedEarly"
    assert run.state_reason.startswith(f"the instrument reports {status}")
    assert "RunCompletionStatus.xml" in run.state_reason
    assert not Batch.objects.exists() and not DownloaderJob.objects.exists()
    # --archive-failed: the archive (never the FASTQ of a failed run).
    survey(runs_dir, archive_failed=True)
    assert list(Batch.objects.values_list("variant", flat=True)) == ["archive"]
    assert SequencingRun.objects.get().state == RunState.FAILED


def test_surveying_again_creates_nothing_and_a_late_sample_sheet_adds_the_fastq_batch(runs_dir):
    folder = write_run_folder(runs_dir, "novaseq6000", finished=True)
    survey(runs_dir)
    survey(runs_dir)
    assert SequencingRun.objects.count() == 1
    assert list(Batch.objects.values_list("variant", flat=True)) == ["archive"]
    first = DownloaderJob.objects.get()
    assert len(SequencingRun.objects.get().history) == 2
    add_sample_sheet(folder, "novaseq6000")
    survey(runs_dir)
    survey(runs_dir)
    fastq = Batch.objects.get(variant="fastq")
    assert fastq.pipeline_required == ProcessorPipeline.BCL2FASTQ
    late = DownloaderJob.objects.exclude(pk=first.pk).get()
    assert late.downloader_task == DownloaderTask.ILLUMINA_RUN
    assert list(late.batches.all()) == [fastq]
    run = SequencingRun.objects.get()
    assert run.sample_sheet == (folder / "SampleSheet.csv").read_text()
    assert len(run.history) == 2  # no state change from surveying again


def write_bad_folders(root: Path, outside: Path) -> dict[str, str]:
    """Folders a survey must refuse, by name → what the refusal must say."""
    bad = {}
    malformed = write_run_folder(root, "miseq", number=11, finished=True)
    (malformed / "RunInfo.xml").write_text("<RunInfo><Run Id='x'")
    bad[malformed.name] = "RunInfo.xml is not well-formed XML"
    missing = write_run_folder(root, "miseq", number=12, finished=True)
    text = (missing / "RunInfo.xml").read_text()
    (missing / "RunInfo.xml").write_text(text.replace("<Flowcell>000000000-ABC12</Flowcell>", ""))
    bad[missing.name] = "Run/Flowcell is missing"
    renamed = write_run_folder(root, "novaseq6000", number=13, finished=True)
    renamed = renamed.rename(root / "renamed_run")
    bad["renamed_run"] = "but the folder is named 'renamed_run'"
    huge = write_run_folder(root, "nextseq500", number=14, finished=True)
    with open(huge / "RunParameters.xml", "wb") as stream:
        stream.truncate(5 * 1024 * 1024)
    bad[huge.name] = "RunParameters.xml is larger than"
    broken = write_run_folder(root, "nextseq2000", number=15, finished=True)
    (broken / "RunParameters.xml").write_text("<RunParameters><Instrument")
    bad[broken.name] = "RunParameters.xml is not well-formed XML"
    elsewhere = write_run_folder(outside, "novaseqx", number=16, finished=True)
    (root / elsewhere.name).symlink_to(elsewhere, target_is_directory=True)
    bad[elsewhere.name] = f"a link to {elsewhere}, outside {root}"
    return bad


def test_bad_folders_are_refused_with_path_and_reason_and_the_rest_recorded(runs_dir, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    bad = write_bad_folders(runs_dir, outside)
    good = write_run_folder(runs_dir, "novaseqx", number=99, finished=True)
    with pytest.raises(CommandError) as raised:
        survey(runs_dir)
    assert list(SequencingRun.objects.values_list("run_id", flat=True)) == [good.name]
    assert SequencingRun.objects.get().state == RunState.COMPLETE
    assert Batch.objects.get().accession == good.name
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED and job.no_retry
    logged = read_log(job).decode()
    for name, why in bad.items():
        line = f"refused {runs_dir / name}: "
        assert line in logged and why in logged.split(line, 1)[1].splitlines()[0], name
    message = str(raised.value)
    assert "1 new batch(es)" in message and "and 1 more" in message  # five named, then a count


def unreadable_runner() -> list[str]:
    """A prefix that runs a command unable to read a folder with mode 000. Root
    reads anything: as root, the command runs without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (setpriv drops them from its bounding set), which is
    exactly a process that permissions apply to; as anyone else, it runs as is."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "as root this test needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_an_unreadable_folder_is_refused_and_the_survey_goes_on(runs_dir, subprocess_env):
    """Run as a real process that permissions apply to (see unreadable_runner)."""
    locked = write_run_folder(runs_dir, "novaseq6000", number=21, finished=True)
    good = write_run_folder(runs_dir, "miseq", number=22, finished=True)
    locked.chmod(0)
    try:
        result = subprocess.run(
            [
                *unreadable_runner(),
                sys.executable,
                str(MANAGE),
                "survey",
                "illumina_runs",
                str(runs_dir),
            ],
            env={**subprocess_env(), "REFINERY_ILLUMINA_GRACE_S": "0"},
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"refused {locked}: cannot be read: Permission denied" in result.stdout
    assert list(SequencingRun.objects.values_list("run_id", flat=True)) == [good.name]


def test_the_same_run_in_two_folders_is_refused_the_second_time(runs_dir, tmp_path):
    first = write_run_folder(runs_dir, "miseq", finished=True)
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copytree(first, other / first.name)
    survey(runs_dir)
    with pytest.raises(CommandError, match=f"is also at {first}"):
        survey(other)
    assert SequencingRun.objects.get().location == str(first)


@pytest.mark.postgres_only
def test_two_surveys_at_once_create_no_duplicate(runs_dir, start_manage):
    """Two real survey processes over the same folders on PostgreSQL."""
    for number, layout in enumerate(sorted(LAYOUTS) * 2, start=1):
        write_run_folder(runs_dir, layout, number=number, sample_sheet=True, finished=True)
    env = {"REFINERY_ILLUMINA_GRACE_S": "0"}
    processes = [start_manage("survey", "illumina_runs", runs_dir, env=env) for _ in range(2)]
    for process in processes:
        output, _ = process.communicate(timeout=180)
        assert process.returncode == 0, output
    runs = SequencingRun.objects.all()
    assert runs.count() == 10
    assert Batch.objects.count() == 20
    assert DownloaderJob.objects.count() == 10
    for run in runs:
        assert history(run) == [("", "sequencing"), ("sequencing", "complete")]
        jobs = DownloaderJob.objects.filter(batches__sequencing_run=run).distinct()
        assert jobs.count() == 1 and jobs.get().batches.count() == 2


def test_instrument_prefixes():
    assert instrument_from_id("A01234").type == "NovaSeq 6000"
    assert instrument_from_id("LH00123").writes_copy_complete
    assert instrument_from_id("M05678").type == "MiSeq"
    assert instrument_from_id("MN00123").type == "MiniSeq"
    assert instrument_from_id("NB501234").type == "NextSeq 500/550"
    assert instrument_from_id("ST-E00123").type == "HiSeq X"
    assert instrument_from_id("VH00123").type == "NextSeq 2000"
    assert instrument_from_id("Mystery").type == ""


def test_a_missing_dir_is_an_error_that_says_so(tmp_path, refinery_dirs):
    with pytest.raises(CommandError, match="is not a folder"):
        survey(tmp_path / "nowhere")


def test_a_marker_file_finish_run_writes_is_the_one_the_survey_reads(runs_dir):
    folder = write_run_folder(runs_dir, "nextseq500")
    written = finish_run(folder, "nextseq500")
    assert [p.name for p in written] == ["RTAComplete.txt"]


def test_a_survey_killed_after_moving_the_run_and_before_its_batches_is_completed_next_time(
    runs_dir,
):
    """The run's move and the batches are separate transactions: a survey killed
    between them leaves a complete run without batches, which the next survey
    gives its batches and one downloader job, with no second state change."""
    write_run_folder(runs_dir, "novaseqx", sample_sheet=True, finished=True)
    survey(runs_dir)
    DownloaderJob.objects.all().delete()
    Batch.objects.all().delete()  # as if the batches' transaction never committed
    survey(runs_dir)
    run = SequencingRun.objects.get()
    assert history(run) == [("", "sequencing"), ("sequencing", "complete")]
    assert set(Batch.objects.values_list("variant", flat=True)) == {"archive", "fastq"}
    assert DownloaderJob.objects.get().batches.count() == 2


def test_a_run_info_being_written_is_looked_at_later_not_refused(runs_dir, settings, capsys):
    folder = write_run_folder(runs_dir, "miseq", finished=True)
    (folder / "RunInfo.xml").write_text("<RunInfo><Run Id=")  # half written, just now
    settings.REFINERY_ILLUMINA_GRACE_S = 3600
    survey(runs_dir)  # succeeds: nothing refused
    assert f"{folder}: not yet: RunInfo.xml is not well-formed XML" in capsys.readouterr().out
    assert not SequencingRun.objects.exists()
    assert SurveyJob.objects.get().state == JobState.SUCCEEDED


def test_a_folder_name_with_a_terminal_escape_is_shown_harmless(runs_dir, capsys):
    folder = write_run_folder(runs_dir, "miseq", finished=True)
    folder.rename(runs_dir / "run\x1b]0;owned\x07")
    with pytest.raises(CommandError) as raised:
        survey(runs_dir)
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x1b" not in str(raised.value)
    assert f"refused {runs_dir}/run?]0;owned?: RunInfo.xml says the run is" in printed
