"""Which inputs a predict run reads, and where each one's outputs go.

An argument is a path or a glob (`*`, `?`, `[...]`; `**` crosses folders) that stands for
the image files and folders it matches. A file is one input: an image, or a multi-page
TIFF stack. A folder is walked, its subfolders too: each folder that holds image files is
one input, a volume of slices, unless one of those files is a multi-page TIFF; then each
of its files is an input of its own. Hidden files and folders (a name starting with '.')
are skipped in a walk, and so is the output folder.

Outputs mirror each input's path relative to the folder that holds all the arguments
(their common parent): `a/sample.tif` and `b/sample.tif` come out as `a/sample.tif` and
`b/sample.tif` under each method's folder, never as one `sample`. Such a path has no empty,
`.` or `..` part: it cannot leave its method's folder or stand for it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rocksr.imaging.images import SUFFIXES, image_files_in, natural, page_count

GLOB = set("*?[")


@dataclass(frozen=True)
class Unit:
    """One input: its absolute path, and the relative path its outputs take."""
    path: Path
    rel: Path


def expand(args: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The absolute paths the arguments stand for (globs expanded, duplicates dropped), and
    (argument, what is wrong) for each one that stands for nothing."""
    paths, missing, seen = [], [], set()
    for arg in map(str, args):
        if GLOB & set(arg) and not os.path.lexists(arg):
            found = [p for p in sorted(glob.glob(arg, recursive=True), key=natural)
                     if os.path.isdir(p) or Path(p).suffix.lower() in SUFFIXES]
            if not found:
                missing.append((arg, "no PNG or TIFF file or folder matches this pattern"))
        elif os.path.exists(arg):
            found = [arg]
        else:
            found = []
            missing.append((arg, "no such file or folder"))
        for p in found:
            path = Path(os.path.abspath(p))
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths, missing


def image_files(args: Iterable[str | Path], exclude: Path | None = None) -> list[Path]:
    """Every image file the arguments read (what the workflow tracks: editing any of them
    reruns predict); a missing literal path as it is (Snakemake then names it)."""
    args = list(map(str, args))
    paths, missing = expand(args)
    files = [Path(arg) for arg, _ in missing if not GLOB & set(arg)]
    for path in paths:
        if path.is_dir():
            files += [f for folder in _folders(path, exclude) for f in image_files_in(folder)]
        else:
            files.append(path)
    return files


def units(args: Iterable[str | Path], exclude: Path | None = None
          ) -> tuple[list[Unit], list[tuple[str, str]]]:
    """The inputs (in argument order, folders walked in natural order) and, as in `expand`,
    the arguments that stand for nothing or for a folder without images."""
    paths, failed = expand(args)
    if not paths:
        return [], failed
    root = Path(os.path.commonpath([p.parent for p in paths]))
    found: list[Unit] = []
    for path in paths:
        if path.parent == path:
            failed.append((str(path), "the file system's root cannot be mirrored: name the "
                                      "folders in it"))
            continue
        if not path.is_dir():
            found.append(Unit(path, path.relative_to(root)))
            continue
        before = len(found)
        for folder in _folders(path, exclude):
            files = image_files_in(folder)
            stacks = any(page_count(f) > 1 for f in files)
            members = files if stacks else [folder] if files else []
            found += [Unit(p, p.relative_to(root)) for p in members]
        if len(found) == before:
            failed.append((str(path), "no PNG or TIFF images in this folder or below"))
    return found, failed


def _folders(top: Path, exclude: Path | None) -> list[Path]:
    """`top` and the folders below it, in natural order; hidden ones and `exclude` left out."""
    out = []
    for folder, subfolders, _ in os.walk(top):
        subfolders[:] = sorted((d for d in subfolders if not d.startswith(".")
                                and Path(folder, d) != exclude), key=natural)
        out.append(Path(folder))
    return out

