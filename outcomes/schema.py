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


# code lists: the values a coded column may hold (suites and contract are checked against them)
PROGRAMS = {
    "spells": ("SNAP", "TANF", "MEDICAID", "FOSTER_CARE"),
    "services": ("HOUSING", "WORKFORCE", "FAMILY_SUPPORT", "BEHAVIORAL_HEALTH", "FOOD"),
}
SEXES = ("F", "M", "X", "U")
EXIT_REASONS = ("COMPLETED", "DROPPED", "REFERRED", "OTHER")
WAVES = ("BASELINE", "FOLLOWUP_6M", "FOLLOWUP_12M")
ROLES = ("AGENCY", "NONPROFIT")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool = False
    identifier: bool = False  # never leaves the restricted zone
    digits: int | None = None  # a code of this many digits: a number cell gets its zeros back
    codes: tuple[str, ...] = ()  # the values it may hold, when it is a code


@dataclass(frozen=True)
class Source:
    """One kind of landing file, e.g. public/<agency_id>/spells_YYYY.<ext>."""

    name: str  # spells, wages, services, client_surveys, partnership_surveys
    folder: str  # public, nonprofit, partnership_surveys
    stem: str  # file name before _YYYY
    id_column: str  # unique within a file
    columns: tuple[Column, ...]
    per_org: bool = True  # files live under <folder>/<org_id>/

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def landing_path(self) -> str:
        """Where its files are, as contract section 1 writes it (without the extension)."""
        org = {"public": "<agency_id>/", "nonprofit": "<partner_id>/"}.get(self.folder, "")
        return f"{self.folder}/{org}{self.stem}_YYYY"

    @property
    def codes(self) -> dict[str, tuple[str, ...]]:
        return {c.name: c.codes for c in self.columns if c.codes}

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
    columns=(
        Column("record_id", S, required=True, identifier=True),
        Column("person_id", S, required=True, identifier=True),
        Column("first_name", S, required=True, identifier=True),
        Column("last_name", S, required=True, identifier=True),
        Column("birth_date", D, required=True, identifier=True),
        Column("sex", S, required=True, codes=SEXES),
        Column("ssn", S, identifier=True, digits=9),
        Column("zip", S, identifier=True, digits=5),
        Column("county_fips", S, required=True, digits=5),
        Column("program", S, required=True, codes=PROGRAMS["spells"]),
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
    columns=(
        Column("record_id", S, required=True, identifier=True),
        Column("client_id", S, required=True, identifier=True),
        Column("first_name", S, required=True, identifier=True),
        Column("last_name", S, required=True, identifier=True),
        Column("birth_date", D, identifier=True),
        Column("sex", S, codes=SEXES),
        Column("ssn", S, identifier=True, digits=9),
        Column("zip", S, identifier=True, digits=5),
        Column("county_fips", S, required=True, digits=5),
        Column("program", S, required=True, codes=PROGRAMS["services"]),
        Column("enroll_date", D, required=True),
        Column("exit_date", D),
        Column("exit_reason", S, codes=EXIT_REASONS),
        Column("household_size", INT),
    ),
)

CLIENT_SURVEYS = Source(
    name="client_surveys",
    folder="nonprofit",
    stem="surveys",
    id_column="response_id",
    columns=(
        Column("response_id", S, required=True, identifier=True),
        Column("client_id", S, required=True, identifier=True),
        Column("survey_date", D, required=True),
        Column("wave", S, required=True, codes=WAVES),
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
        Column("respondent_role", S, required=True, codes=ROLES),
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
    # what a column means where it differs from MEANINGS (the data dictionary reads both)
    meanings: dict[str, str] = field(default_factory=dict)

    def meaning(self, column: str) -> str:
        return self.meanings.get(column) or MEANINGS.get(column, "")


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
    meanings={"year": "year of the file (its _YYYY)"},
)
QUARANTINE = Table(
    "quarantine",
    Zone.RESTRICTED,
    {"source": S, "org_id": S, "year": INT, "file": S, "line": INT, "reasons": LIST_S, "raw": S},
    description="One row per rejected input row, with every rule it breaks and its raw values.",
)
KNOWN_CLIENTS = Table(
    "known_clients",
    Zone.RESTRICTED,
    {"org_id": S, "client_id": S, "year": INT},
    description="Per partner, every client id its services files made known up to the year "
    "(staged or quarantined): the clients its client surveys may name.",
    meanings={"year": "the year up to which the partner's services files made them known"},
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
    meanings={"year": "the year whose loading joined them"},
)
PERSON_KEY_SPLITS = Table(
    "person_key_splits",
    Zone.ANALYTIC,
    {"old_key": S, "new_key": S, "year": INT, "reason": S},
    description="Records separated from old_key (a reviewer's decision or a re-delivered file).",
    meanings={"year": "the year whose loading separated them"},
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
    meanings={
        "year": "year of the start date",
        "county_fips": "county of the spell or enrollment, as delivered",
    },
)
QUARTERLY_WAGES = Table(
    "quarterly_wages",
    Zone.ANALYTIC,
    {"person_key": S, "year": INT, "quarter": INT, "employer_id": S, "wages": F},
    description="Quarterly wage records of linked persons.",
    meanings={"year": "year of the wage quarter"},
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
    meanings={
        "year": "year of the survey date",
        "county_fips": "the client's county: that of their latest enrollment with the partner "
        "starting on or before the survey date, else their earliest",
    },
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
_INDICATOR_MEANINGS = {
    "year": "the indicator's year y",
    "county_fips": "5-digit county FIPS code, or ALL: the whole state, the sum of the counties",
}
OUTCOME_INDICATORS = Table(
    "outcome_indicators",
    Zone.PUBLISHED,
    INDICATOR_COLUMNS,
    description="Outcome indicators per county and year, with 95% intervals, after suppression.",
    meanings=_INDICATOR_MEANINGS,
)
OUTCOME_INDICATORS_BY_GROUP = Table(
    "outcome_indicators_by_group",
    Zone.PUBLISHED,
    {**INDICATOR_COLUMNS, "group_by": S, "group_value": S},
    description="Proportion indicators by sex and age band, protected together with "
    "outcome_indicators as one linked table.",
    meanings=_INDICATOR_MEANINGS,
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
    meanings={
        "year": "year of the survey responses",
        "suppression": "primary when fewer than 5 responses: only n_responses is published",
    },
)
_IMPACT_MEANINGS = {
    "suppression": "why the estimate is not published: fewer than 3 treated or 3 control "
    "counties behind it"
}
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
    meanings=_IMPACT_MEANINGS,
)
PARTNERSHIP_IMPACT_BY_STAGE = Table(
    "partnership_impact_by_stage",
    Zone.PUBLISHED,
    {"indicator_id": S, "value_curve_stage": S, "event_time": INT, **ESTIMATE_COLUMNS},
    by_year=False,
    description="Event-time effects split by the Value Curve stage the partnerships had "
    "reached (descriptive), over the published cells only.",
    meanings=_IMPACT_MEANINGS,
)
IMPACT_BEFORE_SUPPRESSION = Table(
    "partnership_impact_before_suppression",
    Zone.RESTRICTED,
    PARTNERSHIP_IMPACT.schema,
    by_year=False,
    description="The same estimates over the indicator panel before suppression, for "
    "approved evaluators: restricted, since with the published cells they can undo it.",
    meanings=_IMPACT_MEANINGS,
)

DATA_DICTIONARY = Table(
    "data_dictionary",
    Zone.PUBLISHED,
    {"table": S, "zone": S, "column": S, "dtype": S, "meaning": S},
    by_year=False,
    description="Every analytic and published column with its type and meaning, generated "
    "from the table declarations.",
)
INDICATOR_PROVENANCE = Table(
    "indicator_provenance",
    Zone.ANALYTIC,
    {
        "indicator_id": S,
        "year": INT,
        "run_id": S,
        "code_version": S,
        "computed_at": TS,
        "source": S,
        "org_id": S,
        "input_year": INT,
        "file": S,
        "file_sha256": S,
    },
    description="What each published indicator-year was computed from: one row per input "
    "file (its sha256 as in load_ledger), with the code version and the Dagster run.",
    meanings={"year": "the indicator-year whose published rows this provenance is for"},
)

# What a column means, declared once; a table's `meanings` override where it differs.
MEANINGS: dict[str, str] = {
    # keys and time
    "year": "calendar year",
    "person_key": "opaque, stable pseudonym of a person (HMAC-SHA256 under the linkage key)",
    "org_id": "the delivering agency or nonprofit (its landing folder)",
    "county_fips": "5-digit county FIPS code",
    "source": "kind of landing file: spells, wages, services, client_surveys, "
    "partnership_surveys, or a reference file",
    "file": "path of the input file, relative to the landing root",
    "file_sha256": "SHA-256 of the bytes parsed",
    "input_year": "year of the input file (its _YYYY)",
    # load ledger
    "rows_read": "data rows in the file",
    "rows_staged": "rows accepted into the warehouse",
    "rows_quarantined": "rows rejected, each with its reasons, in the restricted quarantine",
    "duplicates_collapsed": "exact repeats of an accepted row, kept once",
    "invalid_ssn": "accepted rows whose SSN is invalid or a placeholder (never a match key)",
    "loaded_at": "when the file was loaded (UTC)",
    # person keys
    "retired_key": "a person_key no longer used: new evidence joined it to surviving_key",
    "surviving_key": "the person_key that the retired key's records now carry",
    "old_key": "the person_key the separated records carried before",
    "new_key": "the person_key the separated records carry now",
    "reason": "why the records were separated: a reviewer's decision or a re-delivered file",
    # spells, wages, surveys
    "sector": "PUBLIC (an agency spell) or NONPROFIT (a nonprofit enrollment)",
    "program": "program code: SNAP, TANF, MEDICAID, FOSTER_CARE (public); HOUSING, WORKFORCE, "
    "FAMILY_SUPPORT, BEHAVIORAL_HEALTH, FOOD (nonprofit)",
    "start_date": "spell start or enrollment date",
    "end_date": "spell end or exit date; null while open",
    "birth_year": "year of birth (the full date stays in the restricted zone)",
    "sex": "F, M, X or U (unknown)",
    "quarter": "calendar quarter 1-4",
    "employer_id": "employer of the wage record",
    "wages": "wages paid in the quarter",
    "survey_date": "date of the client survey response",
    "wave": "survey wave: BASELINE, FOLLOWUP_6M, FOLLOWUP_12M",
    "housing_stable": "the client said they were stably housed",
    "food_secure": "the client said they were food secure",
    "employed": "the client said they were employed",
    "wellbeing": "self-rated wellbeing, 1-10",
    # reference
    "county_name": "county name",
    "state_abbr": "two-letter state abbreviation",
    "age_group": "population age group: 0-17, 18-64, 65+",
    "population": "residents of the county in the age group and year",
    "partnership_id": "a partnership between an agency and a nonprofit",
    "agency_id": "the public agency of the partnership",
    "partner_id": "the nonprofit of the partnership",
    "start_year": "first year of the partnership: its county is treated from then on",
    "end_year": "last year of the partnership, if it ended",
    # indicators
    "indicator_id": "indicator, as defined in docs/indicators.md",
    "numerator": "count of the numerator (null when suppressed)",
    "denominator": "count of the denominator, or the population for rates (null when "
    "suppressed)",
    "value": "numerator / denominator, x 1,000 for rates; null when suppressed or the "
    "denominator is 0",
    "ci_low": "lower end of the 95% interval",
    "ci_high": "upper end of the 95% interval",
    "suppression": "why the numbers are withheld (primary, complementary, or an estimate's "
    "reason); null when published",
    "provisional": "data the definition needs is not loaded yet: the value may change",
    "group_by": "breakdown: sex or age_band (age on 31 Dec of the year)",
    "group_value": "value of the breakdown: F, M, X, U, UNKNOWN, or an age band",
    # partnerships
    "n_responses": "partnership survey responses in the year",
    **{a: f"mean rating of {a.replace('_', ' ')} (1-5)" for a in ACCELERANTS},
    "maturity_index": "100 x (mean of the six accelerant means - 1) / 4",
    "value_curve_stage": "Human Services Value Curve stage: regulative, collaborative, "
    "integrative, generative",
    # impact
    "estimand": "overall (simple ATT), event_time, or pretrend_test",
    "event_time": "years since the county's first partnership (null for overall and the test)",
    "estimate": "estimated effect on the indicator's value (null for the pre-trend test)",
    "std_error": "analytic (influence-function) standard error",
    "p_value": "p-value of the pre-trend Wald test",
    "n_treated_counties": "treated counties behind the estimate",
    "n_control_counties": "never-treated counties behind the estimate",
    "method": "estimator and control group",
    # the dictionary itself
    "table": "warehouse table",
    "zone": "analytic (pseudonymised microdata) or published (safe to hand to anyone)",
    "column": "column name",
    "dtype": "column type",
    "meaning": "what the column holds",
    "run_id": "the Dagster run that computed it",
    "code_version": "version of this code (package version and git commit)",
    "computed_at": "when it was computed (UTC)",
}


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


# every warehouse table an asset is, by name (what the IO manager looks an asset up in)
TABLES: dict[str, Table] = {
    **{t.name: t for t in globals().copy().values() if isinstance(t, Table)},
    **{staged_table(s).name: staged_table(s) for s in SOURCES.values()},
    **{name: reference_table(name) for name in REFERENCE},
}
