"""Zones on disk: the restricted zone is readable by its owner alone."""

from __future__ import annotations

import os
from pathlib import Path

from outcomes.schema import Zone

OWNER_ONLY_DIR, OWNER_ONLY_FILE = 0o700, 0o600  # restricted/: its owner alone reads it


def owner_only(path: Path) -> None:
    """Owner-only modes on the restricted zone that holds `path` (or on `path` itself
    when no parent is the zone): every directory 0700 and file 0600, whoever wrote it
    (tables, GX Data Docs, the linkage model, the key fingerprint)."""
    path = Path(path)
    zone = next((p for p in (path, *path.parents) if p.name == Zone.RESTRICTED.value), path)
    if not zone.exists():
        return
    os.chmod(zone, OWNER_ONLY_DIR if zone.is_dir() else OWNER_ONLY_FILE)
    for folder, dirs, files in os.walk(zone):
        for d in dirs:
            os.chmod(os.path.join(folder, d), OWNER_ONLY_DIR)
        for f in files:
            os.chmod(os.path.join(folder, f), OWNER_ONLY_FILE)
