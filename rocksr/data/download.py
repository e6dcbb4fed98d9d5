"""Download DeepRockSR-2D.zip (or DeepRockSR-3D.zip) from the Digital Porous Media Portal,
resumably.

The portal hands out one-time links: GET `<api><url-quoted path>/` returns JSON whose
`data` field is the link to the file. Every attempt asks for a fresh link, then continues
`<out>.part` with an HTTP Range request; a server that ignores Range restarts the file.
Only a complete, readable zip whose sha256 is the pinned one (dataset.sha256, when set) is
renamed to `<out>`, beside its `<out>.sha256`. Every URL, the API's, the link the portal
hands out and any redirect, must be https://.
"""

from __future__ import annotations

import errno
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from rocksr.fileio import (
    DiskFullError,
    disk_full,
    sha256_file,
    size_text,
    write_sha256,
)
from rocksr.progress import progress

log = logging.getLogger(__name__)

PROJECT_PAGE = "https://www.digitalrocksportal.org/projects/215"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
DOI = "10.17612/s3m9-e024"
CHUNK = 1 << 20


class DownloadError(Exception):
    """The archive could not be fetched or verified; the message says what to do instead."""


def download(out: str | Path, api: str, path: str | None, timeout: float = 60,
             attempts: int = 5, backoff: float = 5.0, chunk: int = CHUNK,
             sha256: str | None = None, key: str = "archive",
             allow_http_loopback: bool = False) -> str:
    """Fetch the archive to `out`, write `out.sha256`, and return the sha256 hex digest.

    Once the portal has answered, a failed attempt is retried (resuming) up to `attempts`
    times, `backoff` x attempt seconds apart; failing to reach it at all is reported at once.
    `sha256`: the digest the archive must have (dataset.sha256). `path` None: the archive's
    path in the project is not known (DeepRockSR-3D.zip's): stop at once, saying where to get
    the file. `key`: the dataset key that names a local copy. `allow_http_loopback`: tests
    only, plain http to a server on this machine.
    """
    out = Path(out)
    if path is None:
        raise DownloadError(
            f"the path of {out.name} in the portal's project is not known to this workflow "
            f"(dataset.portal.path_3d is null). Download it from the Digital Rocks Portal, "
            f"project 215 ({PROJECT_PAGE}, DOI {DOI}), and point the workflow at it: set "
            f"`dataset.{key}: /path/to/{out.name}` in your config, or run with "
            f"--config dataset='{{{key}: /path/to/{out.name}}}'; or set "
            "dataset.portal.path_3d to its path in the project")
    part = out.with_name(out.name + ".part")
    opener = https_opener(allow_http_loopback)
    check_url(api, allow_http_loopback)
    out.parent.mkdir(parents=True, exist_ok=True)
    reached = False
    for attempt in range(1, attempts + 1):
        try:
            link = resolve_link(api, path, timeout, opener)
            reached = True
            check_url(link, allow_http_loopback)
            if fetch(link, part, timeout, chunk, opener):
                break
            reason = "the transfer ended before the end of the file"
        except DiskFullError:
            raise  # not the network's fault: no retry
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason} from {exc.url}"
            if exc.code < 500:  # the request itself is wrong: retrying will not help
                raise DownloadError(_advice(api, path, part, reason, key)) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, resets, timeouts
            reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if not reached:  # no network or no portal: retrying only delays the advice
                raise DownloadError(_advice(api, path, part, reason, key)) from None
        log.warning("attempt %d/%d failed: %s", attempt, attempts, reason)
        if attempt == attempts:
            raise DownloadError(_advice(api, path, part, reason, key))
        time.sleep(backoff * attempt)
    digest = verify_zip(part)
    if sha256 and digest != sha256.lower():
        raise DownloadError(f"{part}: sha256 {digest} is not dataset.sha256 {sha256.lower()}: "
                            "not the pinned archive. If the portal's archive changed on "
                            f"purpose, set dataset.sha256: {digest} (or null) and rerun, "
                            "which uses this download; else delete it and rerun")
    write_sha256(out, digest)
    part.replace(out)
    log.info("downloaded %s (%d bytes, sha256 %s)", out, out.stat().st_size, digest)
    return digest


def check_url(url: str, allow_http_loopback: bool = False) -> None:
    """Raise unless `url` is https:// (or, with the tests' switch, http:// on loopback)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (allow_http_loopback and parts.scheme == "http"
                                   and parts.hostname in LOOPBACK):
        return
    raise DownloadError(f"{url}: not an https:// URL; the archive is downloaded over https only")


def https_opener(allow_http_loopback: bool = False) -> urllib.request.OpenerDirector:
    """An opener that follows redirects only to https:// URLs (check_url)."""
    return urllib.request.build_opener(_HttpsRedirects(allow_http_loopback))


class _HttpsRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an https:// URL."""

    def __init__(self, allow_http_loopback: bool):
        self.allow_http_loopback = allow_http_loopback

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_http_loopback)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_recorded(out: str | Path, sha256: str | None) -> None:
    """A download already made (its `<out>.sha256`) against the pin, when both exist: checked
    when the workflow starts, since setting the pin does not download again."""
    record = Path(out).with_name(Path(out).name + ".sha256")
    if not sha256 or not record.exists():
        return
    recorded = record.read_text().split(maxsplit=1)[0]
    if recorded != sha256.lower():
        raise DownloadError(f"{out}: its sha256 {recorded} (in {record}) is not dataset.sha256 "
                            f"{sha256.lower()}: not the pinned archive. Set dataset.sha256: "
                            f"{recorded} to use it, or delete it to download again")


def resolve_link(api: str, path: str, timeout: float,
                 opener: urllib.request.OpenerDirector) -> str:
    """Step one: ask the portal API for a one-time download link."""
    url = api.rstrip("/") + "/" + urllib.parse.quote(path) + "/"
    with opener.open(url, timeout=timeout) as resp:
        body = resp.read()
    try:
        link = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        link = None
    if not isinstance(link, str) or not link.startswith(("http://", "https://")):
        raise DownloadError(f"{url}: expected JSON with the download link in `data`, got "
                            f"{body[:200]!r}")
    return link


def fetch(link: str, part: Path, timeout: float, chunk: int,
          opener: urllib.request.OpenerDirector) -> bool:
    """Step two: append to `part` from where it stops; True once the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(link, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing to send from byte `have` on
            if exc.headers.get("Content-Range") == f"bytes */{have}":
                return True  # an earlier run got the whole file
            log.info("%s is longer than the file on the server: starting over", part.name)
            part.unlink()
            return False
        raise
    with resp:
        if resp.status == 206:
            m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if m is None or int(m[1]) != have:
                raise DownloadError(f"{link}: asked to resume at byte {have}, got Content-Range "
                                    f"{resp.headers.get('Content-Range')!r}")
            total = int(m[2]) if m[2] != "*" else None
        else:  # 200: the server ignored Range, so the file starts over
            if have:
                log.info("server ignored the Range request: restarting %s", part.name)
            have, length = 0, resp.headers.get("Content-Length")
            total = int(length) if length else None
        log.info("%s %s at byte %d of %s", "resuming" if have else "starting", part.name, have,
                 total or "unknown")
        try:
            with part.open("ab" if have else "wb") as f, \
                    progress(total=total, initial=have, unit="B", unit_scale=True,
                             unit_divisor=1024, desc=part.name) as bar:
                while data := resp.read(chunk):
                    f.write(data)
                    bar.update(len(data))
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            have = part.stat().st_size
            raise disk_full(part, f"about {size_text(total - have)} more" if total else
                            "more") from None
    return total is None or part.stat().st_size == total


def verify_zip(path: Path) -> str:
    """sha256 of a complete, readable zip (every member's CRC checked); else remove it."""
    log.info("verifying %s", path)
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"member {bad} fails its CRC check")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        path.unlink(missing_ok=True)  # a resume would only extend a broken file
        raise DownloadError(f"{path}: downloaded file is not a readable zip ({exc}); removed it, "
                            "run again to download afresh") from None
    return sha256_file(path)


def _advice(api: str, path: str, part: Path, reason: str, key: str = "archive") -> str:
    kept = (f" The partial download {part} is kept and resumes on the next run."
            if part.exists() else "")
    name = "DeepRockSR-3D.zip" if key == "archive_3d" else "DeepRockSR-2D.zip"
    return (f"could not download the DeepRock-SR archive from {api} ({reason}). "
            f"Without network access, get {name} ('{path}') from {PROJECT_PAGE} "
            f"(DOI {DOI}) on another machine, copy it here and point the workflow at it: "
            f"set `dataset.{key}: /path/to/{name}` in your config, or run with "
            f"--config dataset='{{{key}: /path/to/{name}}}'.{kept}")
