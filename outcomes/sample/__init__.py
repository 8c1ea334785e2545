"""Sample data: a realistic, noisy landing zone with its ground truth beside it.

    from outcomes.sample import generate
    summary = generate(Path("demo"), scale=5000, seed=7)

writes demo/landing (contract section 1) and demo/truth (persons, records,
ids, the planted effect, the summary); `generate(out, seed=7, **state_year(2023))`
writes one state-sized year.
"""

from outcomes.sample.config import SampleConfig
from outcomes.sample.generate import generate, state_year
from outcomes.sample.plant import KINDS

__all__ = ["KINDS", "SampleConfig", "generate", "state_year"]
