"""The run archive's format (`common.run_archive`) on real folders and local
storage: round trips, determinism, exclusions, files that change while read,
hostile folders, damaged archives and hostile restores."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from common.run_archive import (
    ArchiveError,
    ArchiveMismatch,
    FileChanged,
    UnsafeEntry,
    load_manifest,
    restore_archive,
    verify_archive,
    write_run_archive,
)
from common.storage import LocalStorage
from tests.illumina_archive.helpers import (
    RUN_ID,
    small_run,
    snapshot,
    without_file_permission_override,
)

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_folder(tmp_path) -> Path:
    return small_run(tmp_path / "runs")


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


def archive(run_folder, storage, codec="zstd", **options):
    return write_run_archive(run_folder, storage, "a/run.tar", "a/run.json", codec=codec, **options)


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_round_trip_gives_a_byte_identical_tree_and_leaves_the_folder_untouched(
    run_folder, storage, tmp_path, codec
):
    before = snapshot(run_folder)
    # Access times older than the mtimes, which a plain read would move (even
    # under relatime); read with O_NOATIME (the test owns the files) they stay.
    files = [p for p in run_folder.rglob("*") if p.is_file() and not p.is_symlink()]
    for path in files:
        os.utime(path, ns=(1_000_000_000, path.stat().st_mtime_ns))
    result = archive(run_folder, storage, codec)
    assert {p.stat().st_atime_ns for p in files} == {1_000_000_000}
    assert snapshot(run_folder) == before, "archiving changed the run folder"
    manifest = load_manifest(storage.open("a/run.json"))
    assert manifest == result.manifest
    assert manifest["codec"] == codec and manifest["run_folder"] == RUN_ID
    assert manifest["archive"]["sha256"] == result.archive.sha256
    assert manifest["totals"]["files"] == len(manifest["files"]) > 200
    entry = next(e for e in manifest["files"] if e["path"] == "RunInfo.xml")
    assert set(entry) >= {"path", "size", "sha256", "mtime", "mtime_ns", "mode"}
    assert entry["mode"] == "0640"
    assert manifest["links"] == [
        {**manifest["links"][0], "path": "Logs/latest.log", "target": "run.log"}
    ]
    assert verify_archive(storage.open("a/run.tar"), manifest).files == len(manifest["files"])
    restored = tmp_path / "restored"
    restore_archive(storage.open("a/run.tar"), manifest, restored)
    assert snapshot(restored) == before
    assert snapshot(run_folder) == before


def test_the_archive_is_a_standard_tar_with_the_run_folder_on_top(run_folder, storage, tmp_path):
    archive(run_folder, storage, "gzip")
    with tarfile.open(storage.path("a/run.tar"), "r:gz") as tar:
        names = tar.getnames()
    assert names[0] == RUN_ID and all(n.startswith(RUN_ID) for n in names)
    assert names.index(f"{RUN_ID}/Data") < names.index(f"{RUN_ID}/Data/Intensities")
    assert f"{RUN_ID}/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl" in names


def test_the_same_folder_gives_the_same_archive(run_folder, storage):
    first = archive(run_folder, storage).archive
    second = write_run_archive(run_folder, storage, "b/run.tar", "b/run.json").archive
    assert (first.size, first.sha256) == (second.size, second.sha256)


def test_excluded_globs_leave_out_what_they_match(run_folder, storage, tmp_path):
    result = archive(run_folder, storage, exclude=["Thumbnail_Images", "InterOp/Q*"])
    manifest = result.manifest
    paths = {e["path"] for e in manifest["files"] + manifest["folders"]}
    assert not any(p.startswith("Thumbnail_Images") for p in paths)
    assert "InterOp/QMetricsOut.bin" not in paths and "InterOp/TileMetricsOut.bin" in paths
    assert "Thumbnail_Images" in manifest["excluded"]
    assert "InterOp/QMetricsOut.bin" in manifest["excluded"]
    restore_archive(storage.open("a/run.tar"), manifest, tmp_path / "restored")
    assert not (tmp_path / "restored" / "Thumbnail_Images").exists()


def test_a_file_that_grows_while_it_is_read_fails_retryably_and_nothing_is_stored(
    run_folder, storage
):
    target = "Data/Intensities/BaseCalls/L001/C3.1/s_1_1102.bcl"

    def grow(_n: int, path: str) -> None:
        if path == target:
            with open(run_folder / target, "ab") as handle:
                handle.write(b"\x01")

    with pytest.raises(FileChanged) as raised:
        archive(run_folder, storage, progress=grow)
    assert raised.value.retryable and raised.value.path == target
    assert target in raised.value.reason and "retry" in raised.value.reason
    assert list(storage.list()) == []
    assert not any(storage.root.rglob("*.partial-*"))


def test_a_file_touched_after_the_walk_fails_too(run_folder, storage):
    from common.run_archive import walk_run

    walked = walk_run(run_folder)
    os.utime(run_folder / "RunInfo.xml", ns=(1, 1))
    with pytest.raises(FileChanged, match=r"RunInfo.xml changed before it was read"):
        archive(run_folder, storage, walked=walked)
    assert list(storage.list()) == []


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside.txt"])
def test_a_link_out_of_the_folder_is_refused_and_never_followed(run_folder, storage, target):
    (run_folder.parent.parent / "outside.txt").write_text("not the run's")
    os.symlink(target, run_folder / "InterOp" / "leak.bin")
    with pytest.raises(UnsafeEntry) as raised:
        archive(run_folder, storage)
    assert not raised.value.retryable
    assert "InterOp/leak.bin is a symbolic link" in raised.value.reason
    assert "outside the run folder" in raised.value.reason
    assert list(storage.list()) == []


def test_a_fifo_is_refused_without_blocking(run_folder, storage):
    os.mkfifo(run_folder / "Logs" / "pipe")
    with pytest.raises(UnsafeEntry, match=r"Logs/pipe is a FIFO \(named pipe\)"):
        archive(run_folder, storage)
    assert list(storage.list()) == []


def test_a_device_file_is_refused(run_folder, storage):
    os.symlink("/dev/null", run_folder / "null")  # a link out: refused as one
    with pytest.raises(UnsafeEntry, match=r"null is a symbolic link"):
        archive(run_folder, storage)
    (run_folder / "null").unlink()
    try:
        os.mknod(run_folder / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:  # no CAP_MKNOD here: a socket is special just the same
        import socket

        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(run_folder / "null"))
        kind = "socket"
    else:
        kind = "character device"
    with pytest.raises(UnsafeEntry, match=f"null is a {kind}"):
        archive(run_folder, storage)


def test_an_unreadable_file_is_refused_with_what_to_do(run_folder, storage, tmp_path):
    """Run in a process that cannot override file modes (root otherwise reads
    anything), archiving into local storage."""
    os.chmod(run_folder / "InterOp" / "QMetricsOut.bin", 0)
    code = (
        "import sys; from common.run_archive import write_run_archive, ArchiveError\n"
        "from common.storage import LocalStorage\n"
        f"s = LocalStorage({str(tmp_path / 'store')!r})\n"
        "try:\n"
        f"    write_run_archive({str(run_folder)!r}, s, 'a/r.tar', 'a/r.json')\n"
        "except ArchiveError as e:\n"
        "    print(type(e).__name__, e.retryable, e.reason); sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=PROJECT,
        preexec_fn=without_file_permission_override,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("UnsafeEntry False InterOp/QMetricsOut.bin cannot be read")
    assert "make it readable" in result.stdout
    assert list(LocalStorage(tmp_path / "store").list()) == []


def test_verification_names_a_file_whose_bytes_differ_from_the_manifest(run_folder, storage):
    manifest = archive(run_folder, storage).manifest
    damaged = json.loads(json.dumps(manifest))
    entry = next(e for e in damaged["files"] if e["path"] == "RunInfo.xml")
    entry["sha256"] = "0" * 64
    with pytest.raises(ArchiveMismatch, match=r"RunInfo.xml: SHA-256 .* in the archive, 0{64}"):
        verify_archive(storage.open("a/run.tar"), damaged)
    damaged = json.loads(json.dumps(manifest))
    damaged["files"].append({**entry, "path": "Extra.txt"})
    with pytest.raises(ArchiveMismatch, match=r"Extra.txt listed in the manifest but not in"):
        verify_archive(storage.open("a/run.tar"), damaged)


def test_a_truncated_or_corrupt_archive_is_damaged(run_folder, storage, tmp_path):
    manifest = archive(run_folder, storage).manifest
    body = storage.path("a/run.tar").read_bytes()
    with pytest.raises(ArchiveMismatch, match=r"damaged|not in the archive"):
        verify_archive(io.BytesIO(body[: len(body) // 2]), manifest)
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0xFF
    with pytest.raises(ArchiveMismatch):
        verify_archive(io.BytesIO(bytes(flipped)), manifest)
    with pytest.raises(ArchiveMismatch):
        restore_archive(io.BytesIO(bytes(flipped)), manifest, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_restore_refuses_a_folder_that_is_not_empty(run_folder, storage, tmp_path):
    manifest = archive(run_folder, storage).manifest
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match=r"is not an empty folder"):
        restore_archive(storage.open("a/run.tar"), manifest, dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def hostile_archive(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    import zstandard

    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body else None)
    return zstandard.ZstdCompressor().compress(plain.getvalue())


def hostile_manifest(files=(), links=()) -> dict:
    return {
        "manifest_version": 1, "run_folder": RUN_ID, "codec": "zstd", "archive": {},
        "files": list(files), "folders": [], "links": list(links),
    }  # fmt: skip


def test_restore_refuses_paths_out_of_the_folder(tmp_path):
    escape = tarfile.TarInfo(f"{RUN_ID}/../../escaped.txt")
    escape.size = 4
    body = hostile_archive([(escape, b"evil")])
    manifest = hostile_manifest(files=[{"path": "../../escaped.txt", "size": 4, "sha256": "x"}])
    with pytest.raises(ArchiveMismatch, match=r"holds '', '\.' or '\.\.'"):
        restore_archive(io.BytesIO(body), manifest, tmp_path / "dest")
    absolute = tarfile.TarInfo("/tmp/escaped.txt")
    absolute.size = 4
    with pytest.raises(ArchiveMismatch, match=r"absolute"):
        restore_archive(io.BytesIO(hostile_archive([(absolute, b"evil")])), hostile_manifest(),
                        tmp_path / "dest")  # fmt: skip
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "dest").exists()


def test_restore_refuses_a_link_that_leads_out_then_a_file_through_it(tmp_path):
    link = tarfile.TarInfo(f"{RUN_ID}/out")
    link.type, link.linkname = tarfile.SYMTYPE, "../.."
    manifest = hostile_manifest(links=[{"path": "out", "target": "../..", "mtime_ns": 0}])
    with pytest.raises(ArchiveMismatch, match=r"out: a link to '../..' would lead out"):
        restore_archive(io.BytesIO(hostile_archive([(link, b"")])), manifest, tmp_path / "dest")
    through = tarfile.TarInfo(f"{RUN_ID}/out/escaped.txt")
    through.size = 4
    manifest["files"] = [{"path": "out/escaped.txt", "size": 4, "sha256": "x"}]
    with pytest.raises(ArchiveMismatch):
        restore_archive(io.BytesIO(hostile_archive([(link, b""), (through, b"evil")])),
                        manifest, tmp_path / "dest")  # fmt: skip
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "dest").exists()


def test_restore_refuses_a_member_the_manifest_does_not_list(run_folder, storage, tmp_path):
    extra = tarfile.TarInfo(f"{RUN_ID}/planted.sh")
    extra.size = 2
    with pytest.raises(ArchiveMismatch, match=r"planted.sh is in the archive but not in its"):
        restore_archive(io.BytesIO(hostile_archive([(extra, b"hi")])), hostile_manifest(),
                        tmp_path / "dest")  # fmt: skip


@pytest.mark.parametrize(
    "name, kind, link",
    [
        (f"{RUN_ID}/Data/s_1_1101.bcl", tarfile.REGTYPE, ""),
        (f"{RUN_ID}/Data", tarfile.DIRTYPE, ""),
        (f"{RUN_ID}/Logs/latest.log", tarfile.SYMTYPE, "run.log"),
        (f"{RUN_ID}/{'x' * 120}", tarfile.REGTYPE, ""),  # too long for ustar: PAX
        (f"{RUN_ID}/échantillon.csv", tarfile.REGTYPE, ""),  # not ASCII: PAX
    ],
)
def test_member_headers_are_the_ones_tarfile_writes(name, kind, link):
    from common.run_archive import ustar_header

    info = tarfile.TarInfo(name)
    info.mode, info.size, info.mtime, info.type, info.linkname = (
        0o640,
        12345,
        1_700_000_000,
        kind,
        link,
    )
    if kind != tarfile.REGTYPE:
        info.size = 0
    info.uname = info.gname = ""
    expected = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")
    assert ustar_header(name, 0o640, info.size, 1_700_000_000, kind, link) == expected


def test_unusual_but_legal_names_round_trip(run_folder, storage, tmp_path):
    odd = run_folder / "Odd names"
    odd.mkdir()
    for name in ["back\\slash.txt", "échantillon.csv", ".hidden", "x" * 200, "sp ace"]:
        (odd / name).write_text(name)
    deep = run_folder / "/".join(["level"] * 30)  # a path far over ustar's 100 bytes
    deep.mkdir(parents=True)
    (deep / "file.txt").write_text("deep")
    before = snapshot(run_folder)
    result = archive(run_folder, storage)
    restore_archive(storage.open("a/run.tar"), result.manifest, tmp_path / "restored")
    assert snapshot(tmp_path / "restored") == before


def test_a_name_with_a_control_character_is_refused(run_folder, storage):
    (run_folder / "Logs" / "bad\nname.txt").write_text("x")
    with pytest.raises(UnsafeEntry, match=r"control character"):
        archive(run_folder, storage)
