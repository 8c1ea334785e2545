"""Releases: everything one step writes for its partitions becomes visible at once.

A step writes each file beside its target as a hidden temporary file, fsynced. Its
commit then writes a journal of every (temporary file, target) pair, fsyncs it and
renames it into `.releases/`: that one rename decides. Then each temporary file is
renamed over its target, the folders are fsynced and the journal is removed.

- Killed before the commit, a step leaves only temporary files: the next writer of
  those partitions deletes them, and the previous release stays whole.
- Killed after it, the journal says what was meant: the next writer of those
  partitions finishes the renames first.

Either way every table of a step's partitions comes from one release.

A writer holds an exclusive lock on each partition it writes (a folder such as
`restricted/record_links/year=2023`, or an unpartitioned table's folder) for the
whole step: `.locks/`, `flock`, which the kernel frees when the process dies, even
by SIGKILL. A second writer of the same partitions waits up to
OUTCOMES_LOCK_WAIT_SECONDS, then refuses, naming the holder. Writers of different
partitions go on together. Locks are taken all at once or not at all, so two
writers never deadlock.

OUTCOMES_FAULT names a point where the process kills itself with SIGKILL (tests
only): `<label>@written:N` after the Nth file is written, `<label>@committed` after
the commit, `<label>@renamed:N` after the Nth rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from outcomes.config import fault_point, lock_wait_seconds

RELEASES = ".releases"  # committed journals of releases whose renames may be unfinished
LOCKS = ".locks"  # one lock file per partition ever written
TMP = ".tmp"  # suffix of a file (or journal) not yet released
LOCK_POLL_SECONDS = 0.2


class PartitionLocked(RuntimeError):
    """Another writer holds a partition this step writes; the message names it."""


def partition_of(root: Path, target: Path) -> str:
    """The partition a file belongs to: its folder, relative to the warehouse."""
    return target.parent.relative_to(root).as_posix()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kill_at(label: str, phase: str) -> None:
    if fault_point() == f"{label}@{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------- locks


def _lock_file(root: Path, partition: str) -> Path:
    return root / LOCKS / (partition.replace("/", "~") + ".lock")


def holder(root: Path, partition: str) -> str:
    """Who holds (or last held) a partition's lock, in words."""
    try:
        h = json.loads(_lock_file(root, partition).read_text() or "{}")
    except (OSError, ValueError):
        h = {}
    if not h:
        return "an unknown writer"
    return f"pid {h['pid']} on {h['host']} ({h['label']}, since {h['since']})"


@dataclass
class Locks:
    """Exclusive locks on a set of partitions, taken all or none."""

    root: Path
    partitions: list[str]
    label: str
    _held: dict[str, int] = field(default_factory=dict)

    def try_all(self) -> str | None:
        """Take every lock, or none: the partition that is busy, or None when all held."""
        (self.root / LOCKS).mkdir(parents=True, exist_ok=True)
        for p in sorted(self.partitions):
            fd = os.open(_lock_file(self.root, p), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self.release()
                return p
            self._held[p] = fd
        me = {"pid": os.getpid(), "host": socket.gethostname(), "label": self.label,
              "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        for fd in self._held.values():
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        return None

    def acquire(self, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        while (busy := self.try_all()) is not None:
            if time.monotonic() >= deadline:
                raise PartitionLocked(
                    f"{busy} is being written by {holder(self.root, busy)}: {self.label} "
                    f"waited {wait_seconds:g} s (OUTCOMES_LOCK_WAIT_SECONDS) and did not "
                    "start. Run again when that writer is done."
                )
            time.sleep(LOCK_POLL_SECONDS)

    def release(self) -> None:
        for fd in self._held.values():
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._held.clear()


# ---------------------------------------------------------------------------- releases


@dataclass
class Release:
    """The files one step writes, staged as temporary files until `commit`."""

    root: Path
    label: str
    partitions: frozenset[str]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    moves: list[tuple[Path, Path]] = field(default_factory=list)

    def stage(self, target: Path, write: Callable[[Path], None], mode: int | None = None) -> Path:
        """Write `target`'s content to its temporary file now; it appears at commit."""
        if partition_of(self.root, target) not in self.partitions:
            raise ValueError(f"{self.label}: {target} is outside the partitions it locked")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{self.id}{TMP}"
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync(tmp)
        self.moves.append((tmp, target))
        _kill_at(self.label, f"written:{len(self.moves)}")
        return target

    def commit(self) -> None:
        if not self.moves:
            return
        journals = self.root / RELEASES
        journals.mkdir(exist_ok=True)
        journal = journals / f"{self.id}.json"
        pending = journals / f".{self.id}.json{TMP}"
        moves = [[t.relative_to(self.root).as_posix(), d.relative_to(self.root).as_posix()]
                 for t, d in self.moves]  # fmt: skip
        pending.write_text(json.dumps({"label": self.label, "moves": moves}))
        _fsync(pending)
        for folder in {d.parent for _, d in self.moves} | {d.parent.parent for _, d in self.moves}:
            _fsync(folder)  # the temporary files, and any new partition folder, are on disk
        os.replace(pending, journal)
        _fsync(journals)
        _kill_at(self.label, "committed")
        for i, (tmp, target) in enumerate(self.moves, 1):
            os.replace(tmp, target)
            _kill_at(self.label, f"renamed:{i}")
        for folder in {d.parent for _, d in self.moves}:
            _fsync(folder)
        journal.unlink(missing_ok=True)  # a sweep may have closed it, every rename being done
        _fsync(journals)

    def abort(self) -> None:
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Journal:
    path: Path
    committed: bool
    moves: tuple[tuple[Path, Path], ...]

    def partitions(self, root: Path) -> set[str]:
        return {partition_of(root, d) for _, d in self.moves}


def _journals(root: Path) -> list[Journal]:
    found = []
    for path in sorted((root / RELEASES).glob("*.json*")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):  # a journal cut short was never committed
            doc = {"moves": []}
        moves = tuple((root / t, root / d) for t, d in doc["moves"])
        found.append(Journal(path, not path.name.endswith(TMP), moves))
    return found


def _pending_files(root: Path, partitions: Iterable[str] | None = None) -> list[Path]:
    """Temporary files of unfinished releases: in `partitions`, or in every table folder."""
    if partitions is not None:
        return [p for part in partitions for p in (root / part).glob(f".*{TMP}") if p.is_file()]
    zones = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [p for z in zones for p in z.rglob(f".*{TMP}") if p.is_file()]


@dataclass
class Recovered:
    finished: int = 0  # files renamed from the journal of a release killed after its commit
    deleted: int = 0  # temporary files of releases killed before theirs
    closed: int = 0  # journals removed, their releases settled

    def __bool__(self) -> bool:
        return bool(self.finished or self.deleted or self.closed)

    def add(self, other: Recovered) -> None:
        self.finished += other.finished
        self.deleted += other.deleted
        self.closed += other.closed


def recover(root: Path, partitions: Iterable[str]) -> Recovered:
    """Finish or undo what killed writers left in `partitions`, whose locks the caller
    holds: committed renames are done, uncommitted temporary files deleted."""
    mine, done = set(partitions), Recovered()
    for j in _journals(root):
        for tmp, target in j.moves:
            if partition_of(root, target) in mine and tmp.exists():
                if j.committed:
                    os.replace(tmp, target)
                    done.finished += 1
                else:
                    tmp.unlink()
                    done.deleted += 1
        if not any(tmp.exists() for tmp, _ in j.moves):  # settled, whoever wrote it
            j.path.unlink(missing_ok=True)
            done.closed += 1
    for tmp in _pending_files(root, mine):
        tmp.unlink()
        done.deleted += 1
    return done


def sweep(root: Path, label: str = "recovery") -> Recovered:
    """Recover every partition left unfinished whose lock is free now (the start of a
    run): a partition another writer holds is that writer's to finish."""
    root = Path(root)
    if not root.exists():
        return Recovered()
    left = {partition_of(root, t) for t in _pending_files(root)}
    left |= {p for j in _journals(root) for p in j.partitions(root)}
    total = Recovered()
    for partition in sorted(left):
        locks = Locks(root, [partition], label)
        if locks.try_all() is None:
            try:
                total.add(recover(root, [partition]))
            finally:
                locks.release()
    return total


@contextlib.contextmanager
def release(root: Path, label: str, partitions: Iterable[str],
            wait_seconds: float | None = None) -> Iterator[Release]:  # fmt: skip
    """Lock `partitions`, finish what a killed writer left there, and stage this step's
    files: committed together when the block ends, discarded when it raises."""
    root = Path(root)
    parts = frozenset(partitions)
    locks = Locks(root, sorted(parts), label)
    locks.acquire(lock_wait_seconds() if wait_seconds is None else wait_seconds)
    try:
        recover(root, parts)
        r = Release(root, label, parts)
        try:
            yield r
        except BaseException:
            r.abort()
            raise
        r.commit()
    finally:
        locks.release()
