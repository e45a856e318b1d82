"""SHA-256 of data files, read once per content: cached in memory and in CACHE_DIR/sha256.json by real path, size,
modification time and inode, so that every run of a sweep on a large .npz does not read it again.

A file modified within RACY_SECONDS of being hashed is not cached: a rewrite inside the same timestamp tick (with the
same size) would otherwise keep the old digest (git's "racy clean" problem). Losing an entry to two processes
writing the cache at once only costs a re-read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tfregimes.base import run_dir

CACHE_ENV = "TFREGIMES_CACHE_DIR"
CACHE_FILE = "sha256.json"
RACY_SECONDS = 2.0
_memory: dict[str, dict] = {}


def cache_dir() -> Path:
    """$TFREGIMES_CACHE_DIR, else $XDG_CACHE_HOME/tfregimes, else ~/.cache/tfregimes."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfregimes"


def _signature(stat: os.stat_result) -> dict:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _read_cache(path: Path) -> dict:
    try:
        cache = run_dir.read_json(path)
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def cached_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of the file at `path`, read only when no cached entry has its size, mtime and inode."""
    real = os.path.realpath(path)
    before = os.stat(real)
    signature = _signature(before)
    cache_path = cache_dir() / CACHE_FILE
    for entry in (_memory.get(real), _read_cache(cache_path).get(real)):
        if isinstance(entry, dict) and {k: entry.get(k) for k in signature} == signature:
            _memory[real] = entry
            return entry["sha256"]
    digest = run_dir.file_sha256(real)
    if _signature(os.stat(real)) != signature:  # Written while it was read: the digest is of neither version.
        return cached_sha256(real)
    if time.time_ns() - before.st_mtime_ns > RACY_SECONDS * 1e9:
        entry = {**signature, "sha256": digest}
        _memory[real] = entry
        try:
            run_dir.write_json(cache_path, {**_read_cache(cache_path), real: entry})
        except OSError:  # A read-only home: the digest is right, it is only not remembered between processes.
            pass
    return digest
