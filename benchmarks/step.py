"""One measured stage, in a process of its own, so its peak RSS is that stage's alone.

    python -m benchmarks.step JOB PARTITION       # a year, a range 2018-2023, or `all`
    python -m benchmarks.step baseline            # imports, Definitions and instance only
    python -m benchmarks.step generate OUT SCALE SEED

Settings come from OUTCOMES_LANDING_DIR, OUTCOMES_WAREHOUSE_DIR and
OUTCOMES_LINKAGE_KEY, the Dagster instance from DAGSTER_HOME. The last line on
stdout is a JSON object (`inner_s`: seconds spent in the work itself, without
interpreter start-up and imports); a failure goes to stderr with exit status 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _pipeline(job: str | None, partition: str | None) -> dict[str, object]:
    from assets.resources import OutcomesConfig
    from outcomes.config import Settings
    from pipelines.definitions import build_definitions
    from pipelines.runner import dagster_instance, run_step

    defs = build_definitions(OutcomesConfig.from_settings(Settings.from_env()))
    with dagster_instance() as instance:
        t0 = time.perf_counter()
        if job is not None:  # the baseline stops here: what every step pays before working
            run_step(defs, instance, job, partition)
        return {"inner_s": time.perf_counter() - t0}


def _generate(out: Path, scale: int, seed: int) -> dict[str, object]:
    from outcomes.sample import generate

    t0 = time.perf_counter()
    summary = generate(out, scale=scale, seed=seed)
    return {"inner_s": time.perf_counter() - t0, "rows": summary.get("rows", {})}


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["generate", out, scale, seed]:
                result = _generate(Path(out), int(scale), int(seed))
            case ["baseline"]:
                result = _pipeline(None, None)
            case [job, partition]:
                result = _pipeline(job, None if partition == "all" else partition)
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except Exception as e:  # the parent reports the message against the step
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
