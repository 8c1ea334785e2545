"""What a delivery changed in the landing zone, for the landing-zone sensor.

A file counts once it has settled: unchanged for `settle_seconds`, or with a `.done`
marker beside it (`spells_2023.csv.done`) written after it. A settled file whose bytes
or modification time differ from what was last seen is an arrival; its key (path,
content hash, modification time) is different for every delivery, so a file delivered
as A, then B, then A again arrives three times, and one left alone never again.

Each arrival touches partitions: a contract file its year; a `mapping.yaml` every year
its organisation's files have; a reference CSV the reference tables (`None`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from outcomes.ingest import discover
from outcomes.schema import REFERENCE

DONE = ".done"  # a marker beside a file: the partner says it is complete
MAPPING = "mapping.yaml"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Seen:
    """A file as last seen: what tells a new delivery from the same one."""

    size: int
    mtime_ns: int
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.sha256[:16]}@{self.mtime_ns}"


@dataclass(frozen=True)
class Arrival:
    relative: str
    seen: Seen
    years: frozenset[int] | None  # None: the reference tables

    @property
    def run_key(self) -> str:
        return f"{self.relative}:{self.seen.key}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def watched(landing_dir: Path) -> dict[str, tuple[Path, frozenset[int] | None]]:
    """Every file a run reads, by path in the zone, with the partitions it touches."""
    files = discover(landing_dir)
    out: dict[str, tuple[Path, frozenset[int] | None]] = {
        f.relative: (f.path, frozenset([f.year])) for f in files
    }
    by_folder: dict[str, set[int]] = {}
    for f in files:
        by_folder.setdefault(Path(f.relative).parent.as_posix(), set()).add(f.year)
    for folder, years in by_folder.items():
        mapping = landing_dir / folder / MAPPING
        if mapping.is_file():
            out[f"{folder}/{MAPPING}"] = (mapping, frozenset(years))
    for name in REFERENCE:
        path = landing_dir / "reference" / f"{name}.csv"
        if path.is_file():
            out[f"reference/{name}.csv"] = (path, None)
    return out


def settled(path: Path, now: float, settle_seconds: float) -> bool:
    stat = path.stat()
    done = path.with_name(path.name + DONE)
    if done.is_file() and done.stat().st_mtime_ns >= stat.st_mtime_ns:
        return True
    return now - stat.st_mtime >= settle_seconds


def arrivals(
    landing_dir: Path, last: Mapping[str, Seen], now: float, settle_seconds: float
) -> tuple[list[Arrival], dict[str, Seen]]:
    """The settled files that changed since `last` (the sensor's cursor), and the cursor
    to keep: a file still changing keeps its old entry, so it arrives once it settles.
    A file's bytes are hashed only when its size or modification time moved."""
    found, cursor = [], {}
    for rel, (path, years) in watched(landing_dir).items():
        stat = os.stat(path)
        before = last.get(rel)
        if before is not None and (before.size, before.mtime_ns) == (stat.st_size,
                                                                     stat.st_mtime_ns):  # fmt: skip
            cursor[rel] = before
            continue
        if not settled(path, now, settle_seconds):
            if before is not None:
                cursor[rel] = before
            continue
        seen = Seen(stat.st_size, stat.st_mtime_ns, _sha256(path))
        cursor[rel] = seen
        if before is None or before != seen:
            found.append(Arrival(rel, seen, years))
    return found, cursor


def touched_years(found: list[Arrival]) -> list[int]:
    return sorted({y for a in found if a.years for y in a.years})
