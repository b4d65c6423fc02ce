"""A sequencer's run folder as one compressed tar archive, with its manifest.

Writing streams: the folder is walked (sorted, so the same tree gives the same
archive), each file is read once, hashed and fed to the compressor, and the
compressed bytes go straight to the storage's streaming upload (`put_stream`:
an S3 multipart upload, aborted on failure, or a local file written under a
temporary name and renamed). Nothing is copied to local disk first, and memory
stays bounded by the upload's parts whatever the run's size.

The manifest (JSON, stored beside the archive) lists each member: a file's
relative path, size, SHA-256, mtime and mode; each folder; each symbolic link
and its target. It also records the codec, what was excluded, and the archive's
own size and SHA-256.

What is refused (the reason names the entry): a symbolic link that leads out of
the folder (it is never followed; links inside are stored as links), a FIFO,
socket or device, an unreadable file, a name that is not valid UTF-8. A file
whose size or mtime changes while it is read fails with a retryable
`FileChanged`. The run folder is only ever read (files are opened
`O_RDONLY|O_NOFOLLOW|O_NONBLOCK`, with `O_NOATIME` where allowed).

Reading back (`read_archive`) checks every member against the manifest (size
and SHA-256 of each file, the target of each link, nothing missing, nothing
extra) and the archive's own SHA-256; `restore_archive` also unpacks it into a
folder, refusing absolute paths, `..`, links out of the folder and any member
type other than file, folder and link, under a temporary name renamed into
place once everything checked out.

The package imports no app: callers turn `ArchiveError` into their own errors.
Its parts: `members` (walking the folder, the errors), `writing`, `reading`.
"""

from common.run_archive.members import (
    CODECS,
    ArchiveError,
    ArchiveMismatch,
    FileChanged,
    Member,
    ReadFailed,
    UnsafeEntry,
    link_escapes,
    walk_run,
)
from common.run_archive.reading import (
    ReadResult,
    extract_members,
    load_manifest,
    read_archive,
    restore_archive,
    verify_archive,
)
from common.run_archive.writing import (
    ArchiveResult,
    codec_version,
    total_bytes,
    ustar_header,
    write_run_archive,
)

__all__ = [
    "CODECS",
    "ArchiveError",
    "ArchiveMismatch",
    "ArchiveResult",
    "FileChanged",
    "Member",
    "ReadFailed",
    "ReadResult",
    "UnsafeEntry",
    "codec_version",
    "extract_members",
    "link_escapes",
    "load_manifest",
    "read_archive",
    "restore_archive",
    "total_bytes",
    "ustar_header",
    "verify_archive",
    "walk_run",
    "write_run_archive",
]
