"""The local_files source stays inside its folder: links whose target lies
outside are skipped, and the survey says so."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from common.models import Batch, ComputedFile, JobState, OriginalFile, SurveyJob
from common.storage import permanent_storage
from runner.job_logs import read_log
from tests.attacks import run_queued_jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def folder_with_links(tmp_path):
    folder, outside = tmp_path / "incoming", tmp_path / "private"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("the first line is a secret\n")
    (folder / "a.txt").write_text("sample a\n")
    (folder / "sub" / "b.txt").write_text("sample b\n")
    (folder / "out.txt").symlink_to(outside / "secret.txt")
    (folder / "up.txt").symlink_to("../private/secret.txt")
    (folder / "in.txt").symlink_to(folder / "sub" / "b.txt")  # stays inside: kept
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    return folder


def test_links_out_of_the_folder_are_skipped_and_said(folder_with_links, refinery_dirs, capsys):
    call_command("survey", "local_files", str(folder_with_links))
    printed = capsys.readouterr().out
    # The survey runs in a supervised child: its log records are in its job's log.
    logged = read_log(SurveyJob.objects.get()).decode()
    assert set(Batch.objects.values_list("accession", flat=True)) == {
        "a.txt", "sub/b.txt", "in.txt",
    }  # fmt: skip
    for name in ("out.txt", "up.txt"):
        assert f"skipped {name}: a link to a file outside {folder_with_links}" in printed
        assert f"WARNING surveyor.local_files: local_files: skipped {name}" in logged
    # The link inside points at a file another batch has: it is downloaded once.
    assert OriginalFile.objects.count() == 2
    jobs = run_queued_jobs()
    assert {j.state for j in jobs} == {JobState.SUCCEEDED}
    for result in ComputedFile.objects.all():
        with permanent_storage().open(result.key) as stream:
            summary = json.load(stream)
        assert "secret" not in json.dumps(summary)


def test_a_file_whose_name_is_not_plain_is_refused_and_the_rest_recorded(tmp_path, refinery_dirs):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "good.txt").write_text("good\n")
    (folder / "bad\nname.txt").write_text("bad\n")
    with pytest.raises(CommandError) as error:
        call_command("survey", "local_files", str(folder))
    assert set(Batch.objects.values_list("accession", flat=True)) == {"good.txt"}
    assert "batch 'bad\\nname.txt'" in str(error.value)
    assert "control character '\\n'" in str(error.value)
    assert f"the folder {folder}" in str(error.value)
    job = SurveyJob.objects.get()
    assert job.state == JobState.FAILED and job.no_retry


def test_a_path_with_a_terminal_escape_is_refused(tmp_path, refinery_dirs):
    """The accession (the path in the folder) is shown by `jobs show` and logs."""
    folder = tmp_path / "incoming"
    (folder / "dir\x1b]0;owned\x07").mkdir(parents=True)
    (folder / "dir\x1b]0;owned\x07" / "a.txt").write_text("a\n")
    with pytest.raises(CommandError, match=r"its accession holds the control character '\\x1b'"):
        call_command("survey", "local_files", str(folder))
    assert not Batch.objects.exists()
