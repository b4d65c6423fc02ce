"""The HTML pages: Apache-style folder listings, error pages and the root page."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from demo.ensembl_server.server import EnsemblServer


def _human_size(size: int) -> str:
    if size < 1024:
        return str(size)
    value = float(size)
    for unit in ("K", "M", "G", "T"):
        value /= 1024
        if value < 1024 or unit == "T":
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    raise AssertionError("unreachable")


def error_page(status: int, reason: str, path: str) -> str:
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        f"<html><head>\n<title>{status} {html.escape(reason)}</title>\n</head><body>\n"
        f"<h1>{html.escape(reason)}</h1>\n"
        f"<p>The requested URL {html.escape(path)} was not found on this server.</p>\n"
        "</body></html>\n"
    )


def listing_page(url_path: str, directory: Path) -> str:
    title = html.escape(url_path.rstrip("/") or "/")
    rows = []
    parent = url_path.rstrip("/").rsplit("/", 1)[0] + "/"
    rows.append(
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        f'<td><a href="{quote(parent)}">Parent Directory</a></td><td>&nbsp;</td>'
        '<td align="right">  - </td><td>&nbsp;</td></tr>'
    )
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        is_dir = entry.is_dir()
        stat = entry.stat()
        modified = time.strftime("%Y-%m-%d %H:%M", time.gmtime(stat.st_mtime))
        name = entry.name + ("/" if is_dir else "")
        icon, alt = ("/icons/folder.gif", "[DIR]") if is_dir else ("/icons/unknown.gif", "[   ]")
        size = "  - " if is_dir else _human_size(stat.st_size)
        rows.append(
            f'<tr><td valign="top"><img src="{icon}" alt="{alt}"></td>'
            f'<td><a href="{quote(name)}">{html.escape(name)}</a></td>'
            f'<td align="right">{modified}  </td><td align="right">{size}</td>'
            "<td>&nbsp;</td></tr>"
        )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {title}</title>\n </head>\n <body>\n<h1>Index of {title}</h1>\n"
        "  <table>\n"
        '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        '   <tr><th colspan="5"><hr></th></tr>\n'
        + "\n".join(rows)
        + '\n   <tr><th colspan="5"><hr></th></tr>\n</table>\n</body></html>\n'
    )


def root_page(owner: EnsemblServer) -> str:
    links = [
        (owner.rest_url + "/info/software?content-type=application/json", "REST API"),
        (owner.ftp_url + "/", "FTP tree of ftp.ensembl.org/pub (vertebrates)"),
        (owner.divisions_ftp_url + "/", "FTP tree of ftp.ensemblgenomes.ebi.ac.uk/pub"),
    ]
    items = "".join(f'<li><a href="{href}">{html.escape(text)}</a></li>' for href, text in links)
    return (
        "<html><head><title>Ensembl demo server</title></head><body>"
        "<h1>Ensembl demo server (offline, generated data)</h1>"
        f"<ul>{items}</ul></body></html>\n"
    )
