"""Writing files the way every t2vbench output is written: atomically (a reader never sees half a file), readable by
the group as the umask says, never over an existing file unless the caller asks; and the one check of whether a
path can be written at all, made before any work starts."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def not_regular(path: Path) -> str | None:
    """Why path cannot be read as a file, in a few words (no such file, a link to nothing, a loop of links, a folder,
    a named pipe, a device, a socket), or None for a regular file (or a link to one)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a symbolic link to nothing" if path.is_symlink() else "no such file"
    except OSError as exc:
        return "a loop of symbolic links" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror or exc})"
    return next((what for test, what in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def writable_ancestor(path: Path) -> Path | None:
    """The nearest existing folder at or above path if it can be written in (so path can be created), else None."""
    folder = nearest_existing(path)
    return folder if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else None


def nearest_existing(path: Path) -> Path:
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def write_atomic(path: Path, text: str | bytes, replace: bool = False) -> Path:
    """Write text (or bytes, e.g. an image) to path through a temporary file. Without replace, never overwrites
    (raises FileExistsError): the file is hard-linked to its name, or on file systems without hard links the name is
    reserved with O_EXCL and the finished file renamed over that empty reservation. Any other failure is an OSError
    naming path itself (not the temporary file), nothing left behind: neither the temporary file nor a folder made
    for it."""
    made = _missing_folders(path.parent)
    try:
        return _write(path, text, replace)
    except FileExistsError:
        _remove_empty(made)
        raise
    except OSError as exc:
        _remove_empty(made)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _missing_folders(folder: Path) -> list[Path]:
    """The folders from `folder` up that do not exist yet, deepest first (what mkdir(parents=True) would make)."""
    out = []
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write made, deepest first, as long as they are empty (another writer's file keeps
    its folder)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _write(path: Path, text: str | bytes, replace: bool) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        # a file where a folder must be: said as ENOTDIR, for FileExistsError tells write_atomic's callers that the
        # output's own name is taken
        blocker = nearest_existing(path.parent)
        raise NotADirectoryError(errno.ENOTDIR, f"{os.strerror(errno.ENOTDIR)} ({blocker} is a file)") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8")) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _readable_by_group(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _link_new(tmp: str, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # EPERM, ENOTSUP, EXDEV...: no hard links here
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, path)


def _readable_by_group(path: str) -> None:
    """mkstemp makes files 0600; outputs are for colleagues too, so honour the umask as open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
