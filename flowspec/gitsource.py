"""Config files as of a git revision, read from git objects without touching the working tree.

`flowspec diff --base REF [PATHS]` compares the config at REF with the files on disk. Checking
REF out (or a worktree) would be slow and would disturb the user's checkout; instead two git
processes do it all: `git ls-tree -r -z` lists the blobs under the paths, and one
`git cat-file --batch` streams their contents. Paths are the ones given on the command line,
relative to the current directory, and files are named as the loader names files on disk, so
both sides of a diff speak of `automations/promo.yaml`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from flowspec.diagnostics import UserError

YAML_SUFFIXES = (".yaml", ".yml")
_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}


@dataclass
class TreeSource:
    revision: str  # the commit REF resolved to
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (display path, content)
    missing: list[str] = field(default_factory=list)  # given paths with no YAML at the revision


def _git(args: Sequence[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env={**os.environ, **_ENV},
            check=False,
        )
    except FileNotFoundError as exc:
        raise UserError("--base needs git, which is not installed (or not on PATH)") from exc


def repository_top(cwd: Path) -> Path:
    proc = _git(["rev-parse", "--show-toplevel"], cwd)
    if proc.returncode != 0:
        raise UserError(
            f"--base needs a git repository, and {cwd} is not inside one; "
            "compare two folders with `flowspec diff OLD NEW` instead"
        )
    return Path(proc.stdout.decode().strip())


def resolve_revision(ref: str, top: Path) -> str:
    # --end-of-options: a ref that starts with "-" is a name, never an option.
    proc = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top)
    if proc.returncode != 0 or not ref:
        raise UserError(
            f"unknown git revision '{ref}'; give a branch, tag or commit "
            "(in CI, fetch the base branch first: actions/checkout with fetch-depth: 0)"
        )
    return proc.stdout.decode().strip()


def read_tree(ref: str, paths: Sequence[str | os.PathLike[str]], *, cwd: Path | None = None) -> TreeSource:
    """The YAML files under `paths` (files or folders, relative to `cwd`) as of `ref`."""
    cwd = Path(cwd or Path.cwd())
    top = repository_top(cwd)
    real_top = Path(os.path.realpath(top))
    source = TreeSource(resolve_revision(ref, top))
    wanted: list[tuple[str, str]] = []  # (path in the repository, path as given)
    for given in paths:
        absolute = Path(os.path.realpath(cwd / given))
        try:
            rel = absolute.relative_to(real_top).as_posix()
        except ValueError:
            raise UserError(f"'{given}' is outside the git repository at {top}") from None
        wanted.append((rel, os.fspath(given)))

    seen: set[str] = set()
    blobs: list[tuple[str, str]] = []  # (object id, display path)
    for rel, given in wanted:
        found = _list_blobs(source.revision, rel, top)
        if not found:
            source.missing.append(given)
        for repo_path, oid in sorted(found, key=lambda x: PurePosixPath(x[0]).parts):
            if repo_path in seen:
                continue  # named twice (a file and its folder): read once, as the loader does
            seen.add(repo_path)
            blobs.append((oid, _display(real_top / repo_path, Path(os.path.realpath(cwd)))))
    source.files = list(zip((d for _, d in blobs), _cat_blobs([oid for oid, _ in blobs], top), strict=True))
    return source


def _list_blobs(revision: str, rel: str, top: Path) -> list[tuple[str, str]]:
    args = ["ls-tree", "-r", "-z", "--full-tree", revision]
    if rel != ".":
        args += ["--", rel]
    proc = _git(args, top)
    if proc.returncode != 0:
        raise UserError(f"git ls-tree failed for '{rel}' at {revision[:12]}: {proc.stderr.decode().strip()}")
    found: list[tuple[str, str]] = []
    base = PurePosixPath(rel) if rel != "." else PurePosixPath()
    for record in proc.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split(" ")
        path = raw_path.decode("utf-8", errors="surrogateescape")
        # Regular files only: symlinks (120000) and submodules (commit) are not config.
        if kind != "blob" or mode not in ("100644", "100755"):
            continue
        pure = PurePosixPath(path)
        below = pure.relative_to(base).parts if pure != base else ()
        # As on disk: a folder is walked for *.yaml/*.yml, skipping dot entries (.github).
        if pure != base and (
            any(part.startswith(".") for part in below) or not pure.name.lower().endswith(YAML_SUFFIXES)
        ):
            continue
        found.append((path, oid))
    return found


def _cat_blobs(oids: list[str], top: Path) -> list[bytes]:
    if not oids:
        return []
    proc = _git(["cat-file", "--batch"], top, stdin=("\n".join(oids) + "\n").encode())
    if proc.returncode != 0:
        raise UserError(f"git cat-file failed: {proc.stderr.decode().strip()}")
    out, pos, contents = proc.stdout, 0, []
    for oid in oids:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split(" ")
        if len(header) != 3 or header[1] != "blob":
            raise UserError(f"git object {oid} is not readable: {' '.join(header)}")
        size = int(header[2])
        start = end + 1
        contents.append(out[start : start + size])
        pos = start + size + 1  # content is followed by a newline
    return contents


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return os.path.relpath(path, cwd).replace(os.sep, "/")
