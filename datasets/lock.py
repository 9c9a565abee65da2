"""The writer lock: one writer per dataset, and a crashed writer never blocks the next one.

Local datasets use ``fcntl.flock`` on a lock file inside the dataset directory: the kernel drops
the lock when the holder dies. Other fsspec stores get a lock object holding host, pid and a
heartbeat time; it is taken over when its holder is a dead process on this host or its heartbeat
is older than ``STALE_AFTER_S`` (best effort: object stores have no atomic create-if-absent).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from protege.datasets.errors import DatasetLockedError
from protege.datasets.storage import is_local

LOCK_NAME = ".protege.lock"
STALE_AFTER_S = 600.0


def _holder_info(token: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time(), "token": token}


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(path: str, info: dict[str, Any] | None) -> str:
    if not info:
        return f"dataset {path} is locked by another writer; close it first"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
    return (
        f"dataset {path} is locked by another writer (pid {info.get('pid')} on {info.get('host')}, "
        f"since {since}); close that writer first"
    )


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        info = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) else None


def _remote_fs(path: str) -> tuple[Any, str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    return fs, f"{root.rstrip('/')}/{LOCK_NAME}"


def _dead_here(info: dict[str, Any]) -> bool:
    """The holder was a process on this host that no longer exists."""
    return info.get("host") == socket.gethostname() and not _pid_alive(info.get("pid"))


def _is_stale(info: dict[str, Any] | None) -> bool:
    if info is None or _dead_here(info):
        return True
    try:
        return time.time() - float(info.get("time", 0.0)) > STALE_AFTER_S
    except (TypeError, ValueError):
        return True


def lock_holder(path: str) -> dict[str, Any] | None:
    """Host/pid/time of the live writer of ``path``, or None when nobody holds the lock."""
    if is_local(path):
        lock_file = Path(path) / LOCK_NAME
        info = _parse(lock_file.read_bytes()) if lock_file.is_file() else None
        return None if info is None or _dead_here(info) else info
    fs, lock_path = _remote_fs(path)
    info = _parse(fs.cat_file(lock_path)) if fs.exists(lock_path) else None
    return None if _is_stale(info) else info


class WriterLock:
    """The exclusive right to append to the dataset at ``path``; release() or process death frees it."""

    def __init__(self, path: str, fd: int | None, token: str) -> None:
        self.path = path
        self._local = fd is not None
        self._fd = fd
        self._token = token
        self._last_refresh = time.time()

    @classmethod
    def acquire(cls, path: str) -> WriterLock:
        """Take the lock or raise DatasetLockedError naming the dataset and the holder's pid."""
        token = uuid.uuid4().hex
        if is_local(path):
            return cls._acquire_local(path, token)
        return cls._acquire_remote(path, token)

    @classmethod
    def _acquire_local(cls, path: str, token: str) -> WriterLock:
        Path(path).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(path) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _parse(os.pread(fd, 4096, 0))
            os.close(fd)
            raise DatasetLockedError(_describe(path, info)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder_info(token)).encode(), 0)
        return cls(path, fd, token)

    @classmethod
    def _acquire_remote(cls, path: str, token: str) -> WriterLock:
        fs, lock_path = _remote_fs(path)
        if fs.exists(lock_path):
            info = _parse(fs.cat_file(lock_path))
            if not _is_stale(info):
                raise DatasetLockedError(_describe(path, info))
        fs.pipe_file(lock_path, json.dumps(_holder_info(token)).encode())
        if (_parse(fs.cat_file(lock_path)) or {}).get("token") != token:
            raise DatasetLockedError(_describe(path, _parse(fs.cat_file(lock_path))))
        return cls(path, None, token)

    def refresh(self) -> None:
        """Renew the heartbeat of a non-local lock (local locks need none)."""
        if self._local or not self._token or time.time() - self._last_refresh < STALE_AFTER_S / 10:
            return
        fs, lock_path = _remote_fs(self.path)
        fs.pipe_file(lock_path, json.dumps(_holder_info(self._token)).encode())
        self._last_refresh = time.time()

    def release(self) -> None:
        """Give the lock up; safe to call twice."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif not self._local and self._token:
            fs, lock_path = _remote_fs(self.path)
            if fs.exists(lock_path) and (_parse(fs.cat_file(lock_path)) or {}).get("token") == self._token:
                fs.rm(lock_path)
        self._token = ""
