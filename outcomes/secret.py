"""The linkage secret: what a key must be, and the fingerprint that ties a warehouse to it.

Person keys are HMAC-SHA256 under this secret, so the secret decides who can recompute
them and which warehouse they belong to. `validate_linkage_key` is the one rule for the
key (the command line, the runner and the Dagster resource all ask it);
`check_key_fingerprint` refuses a run whose key is not the one its warehouse was built
under. Neither ever prints a key or a whole fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from outcomes.zones import OWNER_ONLY_FILE, owner_only

ENV_LINKAGE_KEY = "OUTCOMES_LINKAGE_KEY"

# The demo's linkage key. Anyone with this code can recompute demo person keys, so only
# the demo (`outcomes demo`, and the Dagster UI over the demo warehouse) may use it.
DEMO_LINKAGE_KEY = "outcomes-demo-key-not-secret"

MIN_KEY_BYTES = 32
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'

FINGERPRINT_LABEL = b"outcomes-key-fingerprint-v1"
FINGERPRINT_FILE = Path("restricted", "linkage", "key_fingerprint.json")
SHOWN_PREFIX = 8  # hex digits of a fingerprint an error may show


class LinkageKeyError(ValueError):
    """The linkage key cannot be used: missing, weak, or not the one of the warehouse."""


class KeyMismatchError(LinkageKeyError):
    """The warehouse was built under another linkage key."""


def validate_linkage_key(key: str | None, demo: bool = False) -> str:
    """The key a run uses; raises LinkageKeyError saying what is wrong and how to make one.

    Outside the demo a key is required: set, not the built-in demo key, and at least
    32 bytes (UTF-8). The demo uses the demo key when none is set; a key given to the
    demo must still be a real one.
    """
    if demo and (not key or key == DEMO_LINKAGE_KEY):
        return DEMO_LINKAGE_KEY
    if key is None:
        problem = f"{ENV_LINKAGE_KEY} is not set"
    elif not key.strip():
        problem = f"{ENV_LINKAGE_KEY} is empty"
    elif key == DEMO_LINKAGE_KEY:
        problem = f"{ENV_LINKAGE_KEY} is the built-in demo key, which anyone with this code has"
    elif len(key.encode("utf-8")) < MIN_KEY_BYTES:
        problem = (
            f"{ENV_LINKAGE_KEY} is {len(key.encode('utf-8'))} bytes long; "
            f"it must be at least {MIN_KEY_BYTES}"
        )
    else:
        return key
    raise LinkageKeyError(
        f"{problem}. Person keys are HMACs under this secret: every run but "
        f"`outcomes demo` needs a random one of {MIN_KEY_BYTES} bytes or more. "
        f"Make one with\n    {MAKE_A_KEY}\n"
        f"keep it where your secrets live and export {ENV_LINKAGE_KEY} before the run; "
        "use the same key for every run over the same warehouse."
    )


def key_fingerprint(key: str) -> str:
    """HMAC-SHA256 of a fixed label under the key (hex): tells keys apart, reveals none."""
    return hmac.new(key.encode("utf-8"), FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def fingerprint_path(warehouse_dir: Path | str) -> Path:
    return Path(warehouse_dir) / FINGERPRINT_FILE


def check_key_fingerprint(warehouse_dir: Path | str, key: str) -> None:
    """Refuse a key the warehouse was not built under; record the key of a new warehouse.

    With no fingerprint yet, writes `restricted/linkage/key_fingerprint.json` (the
    fingerprint and when it was made, never the key). With one that differs, raises
    KeyMismatchError before anything is written.
    """
    path = fingerprint_path(warehouse_dir)
    mine = key_fingerprint(key)
    if path.exists():
        try:
            theirs = str(json.loads(path.read_text(encoding="utf-8"))["fingerprint"])
        except (ValueError, KeyError, TypeError) as e:
            raise LinkageKeyError(
                f"{path} cannot be read ({type(e).__name__}); restore it from a backup: "
                "it ties the warehouse to the key its person keys were made with"
            ) from None
        if not hmac.compare_digest(theirs, mine):
            raise KeyMismatchError(
                f"the warehouse {Path(warehouse_dir)} was built under another linkage key "
                f"(its key's fingerprint starts {theirs[:SHOWN_PREFIX]}, this key's "
                f"{mine[:SHOWN_PREFIX]}): person keys made now would not match the ones it "
                f"holds. Run with the key it was built with ({ENV_LINKAGE_KEY}), or give a "
                "new warehouse folder. Nothing was written."
            )
        return
    record = {
        "fingerprint": mine,
        "algorithm": "HMAC-SHA256",
        "label": FINGERPRINT_LABEL.decode(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=".key_fingerprint-", suffix=".tmp", delete=False
    ) as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.chmod(f.name, OWNER_ONLY_FILE)
    os.replace(f.name, path)  # whole or not at all
    owner_only(path)
