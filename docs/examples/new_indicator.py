"""Worked example: a seventh indicator, Medicaid participants per 1,000 residents.

Adding an indicator is one units function and one `Indicator` declaration. Put both in
`outcomes/indicators.py` (the function beside the others, the declaration in
`REGISTRY`), run `outcomes docs` to regenerate docs/indicators.md and
docs/data_dictionary.md, and add its row to the contract's section 4. The county grid,
zero rows, ALL, breakdowns, intervals, the provisional flag, disclosure control, the
impact estimates, the charts and the report follow from the declaration.
tests/test_docs.py registers this example and checks its published cells by hand.
"""

import polars as pl

from outcomes import schema
from outcomes.indicators import Indicator, Inputs, active_in, as_units, latest_per_person


def medicaid_participants(inp: Inputs, year: int) -> pl.LazyFrame:
    """Persons with a MEDICAID spell active in y, in the county of their latest start."""
    medicaid = inp.spells.filter(pl.col("program") == "MEDICAID", active_in(year))
    return as_units(latest_per_person(medicaid, "start_date"))


MEDICAID_PARTICIPATION = Indicator(
    "medicaid_participation_per_1000",
    "Medicaid participants per 1,000 residents",
    "rate",
    "People covered by Medicaid per 1,000 residents.",
    universe="residents of all ages in the county's population",
    numerator="persons with a MEDICAID spell active in y",
    denominator="population, all ages, in y",
    county_rule="county of the MEDICAID spell: the latest start in y, ties to the smallest "
    "record_id",
    sources=("spells", "population"),
    units=medicaid_participants,
    multiplier=1000.0,
    population_ages=schema.AGE_GROUPS,
)
