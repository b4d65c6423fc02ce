"""The FTP side: an anonymous, read-only pyftpdlib server with request recording and faults."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from demo.ensembl_server.server import EnsemblServer


def make_ftp_server(owner: EnsemblServer, home: Path, host: str, port: int) -> Any:
    """An anonymous read-only FTP server of ``home`` that records requests and obeys faults."""
    with warnings.catch_warnings():
        # pyftpdlib still imports asyncore/asynchat, deprecated since Python 3.12's notice.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

    ftp_logger = logging.getLogger("pyftpdlib")
    if not ftp_logger.handlers:
        # Otherwise pyftpdlib configures INFO logging to stderr by itself. Warnings still
        # propagate to the root logger.
        ftp_logger.addHandler(logging.NullHandler())
        ftp_logger.setLevel(logging.WARNING)

    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(home), perm="elr")

    class Handler(FTPHandler):
        banner = "Ensembl demo FTP server (offline, anonymous, read-only)"
        _last_code = 0

        def respond(self, resp: str, logfun: Any = None) -> None:
            with contextlib.suppress(ValueError):
                self._last_code = int(resp[:3])
            if logfun is None:
                super().respond(resp)
            else:
                super().respond(resp, logfun)

        def _gated(self, command: str, fs_path: str, call: Any, *args: Any) -> Any:
            ftp_path = self.fs.fs2ftp(fs_path)
            delay = owner._take_rule("delay", ftp_path, "ftp")
            if delay is not None:
                owner._sleep(delay.params["seconds"])
            fail = owner._take_rule("fail", ftp_path, "ftp")
            if fail is not None:
                code = 421 if fail.params["status"] in (429, 503) else 550
                self.respond(f"{code} Injected failure for {ftp_path}.")
                owner._record_ftp(command, ftp_path, code)
                return None
            self._last_code = 0
            result = call(*args)
            owner._record_ftp(command, ftp_path, self._last_code)
            return result

        def ftp_RETR(self, file: str) -> Any:
            return self._gated("RETR", file, super().ftp_RETR, file)

        def ftp_SIZE(self, path: str) -> Any:
            return self._gated("SIZE", path, super().ftp_SIZE, path)

        def ftp_MDTM(self, path: str) -> Any:
            return self._gated("MDTM", path, super().ftp_MDTM, path)

        def ftp_LIST(self, path: str) -> Any:
            return self._gated("LIST", path, super().ftp_LIST, path)

        def ftp_NLST(self, path: str) -> Any:
            return self._gated("NLST", path, super().ftp_NLST, path)

        def ftp_MLSD(self, path: str) -> Any:
            return self._gated("MLSD", path, super().ftp_MLSD, path)

    Handler.authorizer = authorizer
    Handler.permit_foreign_addresses = False
    return FTPServer((host, port), Handler, ioloop=IOLoop())
