"""The data contract as code: canonical landing columns and warehouse tables.

Everything that names a column, a source or a table reads it from here, so the
contract (docs/CONTRACT.md) has one twin in the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl


class Zone(StrEnum):
    """Warehouse zones, following the separation principle of integrated data systems."""

    RESTRICTED = "restricted"  # identifiers allowed; linkage runs here
    ANALYTIC = "analytic"  # pseudonymised microdata: persons only as person_key
    PUBLISHED = "published"  # aggregates that passed disclosure control


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool = False
    identifier: bool = False  # never leaves the restricted zone
    digits: int | None = None  # a code of this many digits: a number cell gets its zeros back


@dataclass(frozen=True)
class Source:
    """One kind of landing file, e.g. public/<agency_id>/spells_YYYY.<ext>."""

    name: str  # spells, wages, services, client_surveys, partnership_surveys
    folder: str  # public, nonprofit, partnership_surveys
    stem: str  # file name before _YYYY
    id_column: str  # unique within a file
    columns: tuple[Column, ...]
    per_org: bool = True  # files live under <folder>/<org_id>/
    # columns whose values a partner's mapping.yaml may recode
    coded: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def digits(self) -> dict[str, int]:
        return {c.name: c.digits for c in self.columns if c.digits}

    @property
    def dtypes(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}


S, D, INT, F, B = pl.String(), pl.Date(), pl.Int64(), pl.Float64(), pl.Boolean()

SPELLS = Source(
    name="spells",
    folder="public",
    stem="spells",
    id_column="record_id",
    coded=("program", "sex"),
    columns=(
        Column("record_id", S, required=True, identifier=True),
        Column("person_id", S, required=True, identifier=True),
        Column("first_name", S, required=True, identifier=True),
        Column("last_name", S, required=True, identifier=True),
        Column("birth_date", D, required=True, identifier=True),
        Column("sex", S, required=True),
        Column("ssn", S, identifier=True, digits=9),
        Column("zip", S, identifier=True, digits=5),
        Column("county_fips", S, required=True, digits=5),
        Column("program", S, required=True),
        Column("start_date", D, required=True),
        Column("end_date", D),
        Column("monthly_benefit", F),
    ),
)

WAGES = Source(
    name="wages",
    folder="public",
    stem="wages",
    id_column="record_id",
    columns=(
        Column("record_id", S, required=True, identifier=True),
        Column("ssn", S, required=True, identifier=True, digits=9),
        Column("first_name", S, identifier=True),
        Column("last_name", S, identifier=True),
        Column("employer_id", S, required=True),
        Column("year", INT, required=True),
        Column("quarter", INT, required=True),
        Column("wages", F, required=True),
    ),
)

SERVICES = Source(
    name="services",
    folder="nonprofit",
    stem="services",
    id_column="record_id",
    coded=("program", "sex", "exit_reason"),
    columns=(
        Column("record_id", S, required=True, identifier=True),
        Column("client_id", S, required=True, identifier=True),
        Column("first_name", S, required=True, identifier=True),
        Column("last_name", S, required=True, identifier=True),
        Column("birth_date", D, identifier=True),
        Column("sex", S),
        Column("ssn", S, identifier=True, digits=9),
        Column("zip", S, identifier=True, digits=5),
        Column("county_fips", S, required=True, digits=5),
        Column("program", S, required=True),
        Column("enroll_date", D, required=True),
        Column("exit_date", D),
        Column("exit_reason", S),
        Column("household_size", INT),
    ),
)

CLIENT_SURVEYS = Source(
    name="client_surveys",
    folder="nonprofit",
    stem="surveys",
    id_column="response_id",
    coded=("wave",),
    columns=(
        Column("response_id", S, required=True, identifier=True),
        Column("client_id", S, required=True, identifier=True),
        Column("survey_date", D, required=True),
        Column("wave", S, required=True),
        Column("housing_stable", B),
        Column("food_secure", B),
        Column("employed", B),
        Column("wellbeing", INT),
    ),
)

ACCELERANTS = (
    "roles_clarity",
    "leadership_relationships",
    "sustained_commitment",
    "openness_to_disruption",
    "shared_vision",
    "trust_transparency",
)

PARTNERSHIP_SURVEYS = Source(
    name="partnership_surveys",
    folder="partnership_surveys",
    stem="surveys",
    id_column="response_id",
    per_org=False,
    columns=(
        Column("response_id", S, required=True),
        Column("partnership_id", S, required=True),
        Column("respondent_role", S, required=True),
        *(Column(a, INT) for a in ACCELERANTS),
    ),
)

SOURCES: dict[str, Source] = {
    s.name: s for s in (SPELLS, WAGES, SERVICES, CLIENT_SURVEYS, PARTNERSHIP_SURVEYS)
}

# reference/*.csv: small, public, read whole
COUNTIES = {"county_fips": S, "county_name": S, "state_abbr": S}
POPULATION = {"county_fips": S, "year": INT, "age_group": S, "population": INT}
PARTNERSHIPS = {
    "partnership_id": S,
    "agency_id": S,
    "partner_id": S,
    "county_fips": S,
    "start_year": INT,
    "end_year": INT,
}
REFERENCE: dict[str, dict[str, pl.DataType]] = {
    "counties": COUNTIES,
    "population": POPULATION,
    "partnerships": PARTNERSHIPS,
}

PROGRAMS = {
    "spells": ("SNAP", "TANF", "MEDICAID", "FOSTER_CARE"),
    "services": ("HOUSING", "WORKFORCE", "FAMILY_SUPPORT", "BEHAVIORAL_HEALTH", "FOOD"),
}
SEXES = ("F", "M", "X", "U")
EXIT_REASONS = ("COMPLETED", "DROPPED", "REFERRED", "OTHER")
WAVES = ("BASELINE", "FOLLOWUP_6M", "FOLLOWUP_12M")
ROLES = ("AGENCY", "NONPROFIT")
AGE_GROUPS = ("0-17", "18-64", "65+")
AGE_BANDS = ("0-17", "18-24", "25-44", "45-64", "65+")
ALL_COUNTIES = "ALL"

# ---------------------------------------------------------------- warehouse tables


@dataclass(frozen=True)
class Table:
    name: str
    zone: Zone
    schema: dict[str, pl.DataType]
    by_year: bool = True  # Hive-partitioned as year=YYYY/
    description: str = ""


LIST_S = pl.List(pl.String())
TS = pl.Datetime("us", "UTC")

LOAD_LEDGER = Table(
    "load_ledger",
    Zone.ANALYTIC,
    {
        "source": S,
        "org_id": S,
        "year": INT,
        "file": S,
        "file_sha256": S,
        "rows_read": INT,
        "rows_staged": INT,
        "rows_quarantined": INT,
        "duplicates_collapsed": INT,
        "invalid_ssn": INT,
        "loaded_at": TS,
    },
    description="One row per input file loaded: rows read = staged + quarantined + collapsed.",
)
QUARANTINE = Table(
    "quarantine",
    Zone.RESTRICTED,
    {"source": S, "org_id": S, "year": INT, "file": S, "line": INT, "reasons": LIST_S, "raw": S},
    description="One row per rejected input row, with every rule it breaks and its raw values.",
)
RECORD_LINKS = Table(
    "record_links",
    Zone.RESTRICTED,
    {
        "source": S,
        "org_id": S,
        "year": INT,
        "record_id": S,
        "person_key": S,
        "match_probability": F,
        "match_method": S,
    },
    description="One row per accepted spell, wage and service record: which person it is.",
)
PERSON_KEY_MERGES = Table(
    "person_key_merges",
    Zone.ANALYTIC,
    {"retired_key": S, "surviving_key": S, "year": INT},
    description="Person keys joined by new evidence in the year whose loading joined them.",
)
PERSON_KEY_SPLITS = Table(
    "person_key_splits",
    Zone.ANALYTIC,
    {"old_key": S, "new_key": S, "year": INT, "reason": S},
    description="Records separated from old_key (a reviewer's decision or a re-delivered file).",
)
LINKAGE_REVIEW = Table(
    "linkage_review",
    Zone.RESTRICTED,
    {
        "record_a": S, "record_b": S, "match_weight": F,
        "mw_first_name": F, "mw_last_name": F, "mw_birth_date": F, "mw_sex": F, "mw_zip": F,
        "mw_ssn": F, "mw_county_fips": F, "decision": S, "year": INT,
    },
    description="Borderline pairs (match weight near the threshold) for clerical review.",
)  # fmt: skip
LINKAGE_MODEL_EVENTS = Table(
    "linkage_model_events",
    Zone.RESTRICTED,
    {"version": INT, "event": S, "at": TS, "trained_on": INT, "model_sha256": S, "reason": S},
    by_year=False,
    description="Every linkage model trained or retrained, and every re-link of history with"
    " one: a changed model is never silent.",
)

SERVICE_SPELLS = Table(
    "service_spells",
    Zone.ANALYTIC,
    {
        "person_key": S,
        "sector": S,
        "org_id": S,
        "program": S,
        "start_date": D,
        "end_date": D,
        "county_fips": S,
        "birth_year": INT,
        "sex": S,
        "year": INT,
    },
    description="Public spells and nonprofit enrollments of linked persons, by start year.",
)
QUARTERLY_WAGES = Table(
    "quarterly_wages",
    Zone.ANALYTIC,
    {"person_key": S, "year": INT, "quarter": INT, "employer_id": S, "wages": F},
    description="Quarterly wage records of linked persons.",
)
LINKED_SPELLS = Table(
    "linked_spells",
    Zone.RESTRICTED,
    {**SERVICE_SPELLS.schema, "source": S, "record_id": S},
    description="service_spells with the source record id: indicators break ties on it.",
)
CLIENT_OUTCOMES = Table(
    "client_outcomes",
    Zone.ANALYTIC,
    {
        "person_key": S,
        "org_id": S,
        "county_fips": S,
        "survey_date": D,
        "wave": S,
        "housing_stable": B,
        "food_secure": B,
        "employed": B,
        "wellbeing": INT,
        "year": INT,
    },
    description="Client outcome survey responses of linked persons, with the client's county.",
)
LINKED_SURVEYS = Table(
    "linked_client_surveys",
    Zone.RESTRICTED,
    {**CLIENT_OUTCOMES.schema, "response_id": S},
    description="client_outcomes with the response id: indicators break ties on it.",
)
INDICATOR_COLUMNS: dict[str, pl.DataType] = {
    "indicator_id": S,
    "year": INT,
    "county_fips": S,
    "numerator": INT,
    "denominator": INT,
    "value": F,
    "ci_low": F,
    "ci_high": F,
    "suppression": S,
    "provisional": B,
}
OUTCOME_INDICATORS = Table(
    "outcome_indicators",
    Zone.PUBLISHED,
    INDICATOR_COLUMNS,
    description="Outcome indicators per county and year, with 95% intervals, after suppression.",
)
OUTCOME_INDICATORS_BY_GROUP = Table(
    "outcome_indicators_by_group",
    Zone.PUBLISHED,
    {**INDICATOR_COLUMNS, "group_by": S, "group_value": S},
    description="Proportion indicators by sex and age band, suppressed within each group.",
)
INDICATOR_PANEL = Table(
    "indicator_panel",
    Zone.RESTRICTED,
    {
        "indicator_id": S,
        "year": INT,
        "county_fips": S,
        "numerator": INT,
        "denominator": INT,
        "value": F,
    },
    description="Indicator values before suppression: the impact estimator's input only.",
)
PARTNERSHIP_MATURITY = Table(
    "partnership_maturity",
    Zone.PUBLISHED,
    {
        "partnership_id": S,
        "year": INT,
        "n_responses": INT,
        **{a: F for a in ACCELERANTS},
        "maturity_index": F,
        "value_curve_stage": S,
        "suppression": S,
    },
    description="Partnership health: the six accelerants, a 0-100 index and the Value Curve stage.",
)
# an estimate with its interval, its support and why it is not published, if it is not
ESTIMATE_COLUMNS = {
    "estimate": F,
    "std_error": F,
    "ci_low": F,
    "ci_high": F,
    "p_value": F,
    "n_treated_counties": INT,
    "n_control_counties": INT,
    "method": S,
    "suppression": S,
}
PARTNERSHIP_IMPACT = Table(
    "partnership_impact",
    Zone.PUBLISHED,
    {"indicator_id": S, "estimand": S, "event_time": INT, **ESTIMATE_COLUMNS},
    by_year=False,
    description="Difference-in-differences impact of partnerships (Callaway and Sant'Anna), "
    "over the published cells only.",
)
PARTNERSHIP_IMPACT_BY_STAGE = Table(
    "partnership_impact_by_stage",
    Zone.PUBLISHED,
    {"indicator_id": S, "value_curve_stage": S, "event_time": INT, **ESTIMATE_COLUMNS},
    by_year=False,
    description="Event-time effects split by the Value Curve stage the partnerships had "
    "reached (descriptive), over the published cells only.",
)
IMPACT_BEFORE_SUPPRESSION = Table(
    "partnership_impact_before_suppression",
    Zone.RESTRICTED,
    PARTNERSHIP_IMPACT.schema,
    by_year=False,
    description="The same estimates over the indicator panel before suppression, for "
    "approved evaluators: restricted, since with the published cells they can undo it.",
)


def staged_table(source: Source) -> Table:
    """The restricted, typed table of a source's accepted rows."""
    return Table(
        f"staged_{source.name}",
        Zone.RESTRICTED,
        {"org_id": S, **source.dtypes, "year": INT, "line": INT, "file": S}
        if source.name != "wages"
        else {"org_id": S, **source.dtypes, "line": INT, "file": S},
        description=f"Accepted, typed {source.name} rows (identifiers kept: restricted).",
    )


def reference_table(name: str) -> Table:
    return Table(
        name,
        Zone.ANALYTIC,
        REFERENCE[name],
        by_year=False,
        description=f"Reference {name}, as delivered and validated.",
    )


def empty(table: Table) -> pl.DataFrame:
    return pl.DataFrame(schema=table.schema)


def quarantine_part(source: Source) -> Table:
    """One source's share of a year's quarantine, written by its staging step."""
    return Table(f"_staging/{source.name}_quarantine", Zone.RESTRICTED, QUARANTINE.schema)


def ledger_part(source: Source) -> Table:
    """One source's share of a year's load_ledger, written by its staging step."""
    return Table(f"_staging/{source.name}_ledger", Zone.RESTRICTED, LOAD_LEDGER.schema)
