"""Every share, rate and organisation of the sample landing zone, in one place.

The generator reads its numbers only from here, so a reviewer can see at a
glance how much noise and how many bad rows a sample holds, and a test can
turn one knob without hunting through the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

STATE_FIPS = "99"  # not a real state: the sample cannot be mistaken for real data
STATE_ABBR = "LK"
STATE_NAME = "Lakeland"
COUNTY_NAMES = (
    "Alder", "Birch", "Cedar", "Driftwood", "Elm", "Fox River", "Granite", "Heron",
    "Iron", "Juniper", "Kettle", "Lakeshore", "Maple", "North Fork", "Oak", "Pine",
    "Quarry", "Red Cliff", "Sandhill", "Timber", "Upland", "Valley", "Willow", "Yarrow",
)
ZIP_BASE = 58000  # zip = ZIP_BASE + county index * ZIP_STRIDE + k
ZIP_STRIDE = 40

FORMATS = ("csv", "parquet", "xlsx")
NAICS = ("111000", "236220", "311000", "445110", "484110", "561320", "611110", "621111",
         "622110", "722511", "812111", "921190")  # industries of the wage file's employers


@dataclass(frozen=True)
class NoiseProfile:
    """How carelessly one system records identity; applied once per person and system."""

    typo: float = 0.0  # one character deleted, replaced, doubled or transposed
    nickname: float = 0.0  # Robert -> Bob where a nickname exists
    swap_names: float = 0.0  # first and last name in each other's field
    birth_missing: float = 0.0
    birth_day_month_swap: float = 0.0  # only where both are <= 12, so the date still parses
    sex_unknown: float = 0.0  # recorded as U
    ssn_missing: float = 0.0
    ssn_partial: float = 0.0  # masked, last four only, or a digit dropped
    ssn_placeholder: float = 0.0  # 123456789, 111111111, 999999999, ...
    ssn_never_issued: float = 0.0  # area 000/666/9xx, group 00 or serial 0000
    ssn_digit_typo: float = 0.0  # one digit wrong: still valid, but someone else's
    ssn_dashes: float = 0.0  # written 123-45-6789 (valid after removing dashes)
    zip_missing: float = 0.0
    names_missing: float = 0.0  # both names left empty (wages only: names are optional)
    upper_case: bool = False  # legacy systems store names in capitals
    # compound surnames (Garcia-Lopez, Garcia Lopez, De La Cruz): shares of the
    # registrations of persons whose surname has a hyphen or a space
    compound_part: float = 0.0  # one part only: Garcia, Lopez, Cruz
    compound_format: float = 0.0  # joined or spaced otherwise: Garcia Lopez, GarciaLopez, DeLaCruz
    # a woman who changes her surname at marriage (SampleConfig.married_name_change)
    maiden_name_kept: float = 0.0  # registered in or after the marriage year, still the old name
    married_name_update: float = 0.0  # registered before it, updated from the marriage year on


# Benefit agencies verify identity at application and recertify every 6-12
# months (a name change reaches the case file); legacy fields often drop a hyphen.
PUBLIC_NOISE = NoiseProfile(
    typo=0.01, nickname=0.02, swap_names=0.003, birth_day_month_swap=0.004,
    sex_unknown=0.002, ssn_missing=0.06, ssn_partial=0.004, ssn_placeholder=0.003,
    ssn_never_issued=0.002, ssn_digit_typo=0.002, ssn_dashes=0.3, zip_missing=0.03,
    compound_part=0.15, compound_format=0.25, maiden_name_kept=0.1, married_name_update=0.6,
)
CHILD_WELFARE_NOISE = NoiseProfile(
    typo=0.015, nickname=0.01, swap_names=0.004, birth_day_month_swap=0.005,
    sex_unknown=0.004, ssn_missing=0.3, ssn_partial=0.01, ssn_placeholder=0.005,
    ssn_never_issued=0.003, ssn_digit_typo=0.003, ssn_dashes=0.0, zip_missing=0.05,
    compound_part=0.2, compound_format=0.2, maiden_name_kept=0.15, married_name_update=0.3,
)
# Employers report the name on the payroll: it follows a marriage only when the
# worker tells them, and the SSN, not the name, is the key. The wage agency
# registers every worker in the first year, before any marriage.
WAGES_NOISE = NoiseProfile(
    typo=0.005, nickname=0.01, names_missing=0.1, upper_case=True,
    compound_part=0.25, compound_format=0.35, married_name_update=0.4,
)
# Intake forms: self-reported, rarely updated; many clients give no SSN (or a
# partial one) and some no birth date.
NONPROFIT_NOISE = NoiseProfile(
    typo=0.04, nickname=0.08, swap_names=0.015, birth_missing=0.2,
    birth_day_month_swap=0.02, sex_unknown=0.03, ssn_missing=0.55, ssn_partial=0.05,
    ssn_placeholder=0.03, ssn_never_issued=0.01, ssn_digit_typo=0.01, ssn_dashes=0.5,
    zip_missing=0.15, compound_part=0.25, compound_format=0.3, maiden_name_kept=0.2,
    married_name_update=0.1,
)
# An HMIS (HUD's homeless management information system) asks for birth date
# and SSN with data-quality flags: fewer gaps, more partial SSNs.
HMIS_NOISE = replace(NONPROFIT_NOISE, birth_missing=0.05, ssn_missing=0.35, ssn_partial=0.1)


@dataclass(frozen=True)
class OrgSpec:
    """One organisation's export habits: format by year, ids, noise, quirks."""

    org_id: str
    folder: str  # public or nonprofit
    formats: tuple[str, ...]  # year i of the range uses formats[min(i, len - 1)]
    id_prefix: str  # of the organisation's own person / client ids
    noise: NoiseProfile
    programs: tuple[str, ...] = ()
    bool_style: tuple[str, str] = ("true", "false")  # how csv writes booleans
    bom: bool = False  # csv written with a UTF-8 byte order mark
    second_id_share: float = 0.0  # persons registered twice under two person ids
    extra_columns: tuple[str, ...] = ()  # exported but not in the contract
    shuffle_columns: bool = False  # column order differs between years
    mapping: dict | None = None  # mapping.yaml content: the partner's own format
    parquet_text: bool = False  # its Parquet export writes every column as text

    def allows_unparseable(self, fmt: str) -> bool:
        """A typed Parquet column cannot hold an unparseable value; text, csv and xlsx can."""
        return fmt != "parquet" or self.parquet_text

    def format_for(self, year_index: int) -> str:
        return self.formats[min(year_index, len(self.formats) - 1)]


COMMUNITY_ACTION_MAPPING: dict = {
    "columns": {
        "record_id": "Enrollment #",
        "client_id": "Case #",
        "first_name": "First Name",
        "last_name": "Last Name",
        "birth_date": "DOB",
        "sex": "Gender",
        "ssn": "SSN",
        "zip": "Zip Code",
        "county_fips": "County Code",
        "program": "Service",
        "enroll_date": "Start",
        "exit_date": "End",
        "exit_reason": "Exit Reason",
        "household_size": "Household Size",
        "response_id": "Response #",
        "survey_date": "Survey Date",
        "wave": "Survey Type",
        "housing_stable": "Stably Housed",
        "food_secure": "Food Secure",
        "employed": "Employed",
        "wellbeing": "Wellbeing (0-10)",
    },
    "values": {
        "program": {"Housing Assistance": "HOUSING", "Job Training": "WORKFORCE",
                    "Food Pantry": "FOOD"},
        "sex": {"Female": "F", "Male": "M", "Nonbinary": "X", "Unknown": "U"},
        "exit_reason": {"Completed": "COMPLETED", "Dropped Out": "DROPPED",
                        "Referred Elsewhere": "REFERRED", "Other": "OTHER"},
        "wave": {"Intake": "BASELINE", "6 Month": "FOLLOWUP_6M", "12 Month": "FOLLOWUP_12M"},
    },
    "date_format": "%m/%d/%Y",
}

DHS = OrgSpec(
    "dhs", "public", ("csv", "csv", "csv", "parquet"), "DHS",
    replace(PUBLIC_NOISE, upper_case=True),
    programs=("SNAP", "TANF", "MEDICAID"), bom=True, second_id_share=0.015,
    extra_columns=("caseworker_id",),
)
DCF = OrgSpec("dcf", "public", ("xlsx",), "CW", CHILD_WELFARE_NOISE, programs=("FOSTER_CARE",))
DWD = OrgSpec("dwd", "public", ("csv", "parquet"), "UI", WAGES_NOISE,
              extra_columns=("naics_code",))
PARTNERS = (
    OrgSpec("hearth_housing", "nonprofit", ("csv",), "HH", HMIS_NOISE,
            programs=("HOUSING", "FAMILY_SUPPORT"), bool_style=("Y", "N"),
            extra_columns=("entered_by",), shuffle_columns=True),
    OrgSpec("pathways_work", "nonprofit", ("parquet",), "PW", NONPROFIT_NOISE,
            programs=("WORKFORCE",)),
    OrgSpec("kinship_family", "nonprofit", ("xlsx",), "KF", NONPROFIT_NOISE,
            programs=("FAMILY_SUPPORT",)),
    OrgSpec("riverbend_bh", "nonprofit", ("parquet", "parquet", "csv"), "RB", NONPROFIT_NOISE,
            programs=("BEHAVIORAL_HEALTH",), bool_style=("1", "0"), parquet_text=True),
    OrgSpec("community_action", "nonprofit", ("csv",), "CA", NONPROFIT_NOISE,
            programs=("HOUSING", "WORKFORCE", "FOOD"), bool_style=("Yes", "No"),
            extra_columns=("Intake Worker", "Notes"), mapping=COMMUNITY_ACTION_MAPPING),
)
PARTNERSHIP_SURVEY_FORMATS = ("xlsx",)
AGENCIES_IN_PARTNERSHIPS = ("dhs", "dcf")


@dataclass(frozen=True)
class SampleConfig:
    """Shares, rates and sizes of the sample; defaults give a realistic small state."""

    # ---- geography and people
    county_weight_sigma: float = 0.8  # lognormal spread of county sizes
    county_weight_floor: float = 0.012  # no county under 1.2% of persons
    zips_per_county: tuple[int, int] = (2, 7)
    population_factor: tuple[float, float] = (6.5, 9.5)  # residents per served person
    population_growth: tuple[float, float] = (0.004, 0.006)  # mean, sd a year
    age_shares: tuple[float, float, float] = (0.27, 0.58, 0.15)  # 0-17, 18-64, 65+
    max_age: int = 95
    sex_shares: tuple[float, float, float] = (0.51, 0.48, 0.01)  # F, M, X
    # compound surnames: hyphenated (Garcia-Lopez), two surnames (Garcia Lopez),
    # with a particle (De La Cruz, Van Dyke)
    compound_last_name: float = 0.05
    compound_kinds: tuple[float, float, float] = (0.4, 0.3, 0.3)
    # households: shares of households of 1, 2, ... persons (mean about 2.5)
    household_sizes: tuple[float, ...] = (0.3, 0.25, 0.18, 0.14, 0.08, 0.05)
    household_shared_surname: float = 0.85  # a member other than the first has its surname
    household_shared_need: float = 0.7  # weight of the household's poverty in a member's
    twin_share: float = 0.03  # persons born a twin (in the same household as the twin)
    twin_same_sex: float = 0.65
    twin_adjacent_ssn: float = 0.5  # twins' SSNs one serial apart (issued together at birth)
    # women aged 18-60 in the year who marry in one of years 2.. of the range and
    # take a new surname: the household's, sometimes hyphenated with their own
    married_name_change: float = 0.04
    married_hyphenated: float = 0.15
    employability: tuple[float, float, float] = (0.9, 0.8, 0.12)  # intercept, x need, sd
    need_beta: tuple[float, float] = (1.3, 4.0)  # poverty propensity
    # ---- staggered partnerships: counties whose first partnership starts in
    # year 2, 3 and 4 of the range; the rest are never treated
    cohort_sizes: tuple[int, ...] = (4, 4, 4)
    second_partnership_share: float = 0.4
    child_welfare_partnership_share: float = 0.3  # agency is dcf, else dhs
    partnership_end_share: float = 0.3
    # ---- public spells: yearly start rate among eligible persons (scaled by need)
    spell_rate: dict[str, float] = field(default_factory=lambda: {
        "SNAP": 0.07, "MEDICAID": 0.08, "TANF": 0.02, "FOSTER_CARE": 0.015})
    spell_median_days: dict[str, int] = field(default_factory=lambda: {
        "SNAP": 270, "MEDICAID": 420, "TANF": 170, "FOSTER_CARE": 330})
    duration_sigma: float = 0.6
    min_gap_days: int = 30  # between two spells of one program
    tanf_return_share: float = 0.3
    tanf_return_gap_days: tuple[int, int] = (7, 540)  # about two thirds within a year
    benefit_range: dict[str, tuple[float, float]] = field(default_factory=lambda: {
        "SNAP": (40.0, 900.0), "TANF": (150.0, 950.0), "FOSTER_CARE": (450.0, 1100.0)})
    benefit_missing: float = 0.03
    # ---- nonprofit enrollments and the planted partnership effect on
    # cross_sector_reach (share of SNAP/TANF/MEDICAID persons with an enrollment)
    reach_base: float = 0.20
    reach_trend: float = 0.015  # common to treated and control counties
    reach_effect: float = 0.10  # treated counties, from the first partnership on
    reach_county_sd: float = 0.03
    background_enroll: float = 0.035  # persons without a public spell
    co_enroll: float = 0.08  # a second, concurrent enrollment with another partner
    co_enroll_within_days: int = 60
    program_weights: dict[str, float] = field(default_factory=lambda: {
        "HOUSING": 0.25, "WORKFORCE": 0.2, "FAMILY_SUPPORT": 0.2,
        "BEHAVIORAL_HEALTH": 0.15, "FOOD": 0.2})
    partner_weights: dict[str, float] = field(default_factory=lambda: {
        "hearth_housing": 1.0, "pathways_work": 1.2, "kinship_family": 0.6,
        "riverbend_bh": 1.0, "community_action": 1.0})
    enroll_median_days: dict[str, int] = field(default_factory=lambda: {
        "HOUSING": 240, "WORKFORCE": 120, "FAMILY_SUPPORT": 180,
        "BEHAVIORAL_HEALTH": 150, "FOOD": 90})
    exit_reason_shares: tuple[float, float, float, float] = (0.5, 0.3, 0.12, 0.08)
    household_mean_extra: float = 1.6  # household size = 1 + Poisson
    household_max: int = 12
    household_missing: float = 0.08
    # ---- client outcome surveys: (share answered, days after enrollment, jitter)
    wave_plan: tuple[tuple[str, float, int, int], ...] = (
        ("BASELINE", 0.85, 0, 14), ("FOLLOWUP_6M", 0.55, 182, 30),
        ("FOLLOWUP_12M", 0.4, 365, 45))
    outcome_base: dict[str, float] = field(default_factory=lambda: {
        "housing_stable": 0.45, "food_secure": 0.5, "employed": 0.35})
    outcome_gain_per_wave: float = 0.1
    outcome_program_bonus: float = 0.1  # follow-ups: housing program, or completed
    outcome_missing: float = 0.07
    # ---- quarterly wages
    employer_per_persons: int = 40
    employer_switch: float = 0.15  # a year
    second_job: float = 0.08
    wage_median: float = 7500.0  # a quarter
    wage_sigma: float = 0.5
    senior_employment: float = 0.25  # relative to working age
    workforce_boost_completed: float = 0.35  # added employment probability after exit
    workforce_boost_other: float = 0.08
    # ---- partnership health surveys
    respondents: tuple[int, int] = (8, 16)
    maturity_base: tuple[float, float] = (2.2, 0.3)  # mean, sd of a partnership's start
    maturity_growth: float = 0.3  # rating points a year since the start
    respondent_sd: float = 0.4  # a respondent's own view of the partnership
    rating_noise: float = 0.7  # item by item
    rating_missing: float = 0.04
    # ---- bad rows: rule breaks, duplicates; never above max_bad_share of a file
    rule_rate: float = 0.008
    # partnership surveys are small whatever the scale: a higher rate still covers every kind
    rule_rate_by_source: dict[str, float] = field(default_factory=lambda: {
        "partnership_surveys": 0.015})
    duplicate_identical_rate: float = 0.002
    duplicate_record_id_rate: float = 0.001
    max_bad_share: float = 0.03  # quarantined rows per file, well under the 5% limit
    min_rows_for_duplicate: int = 20


# ---- one state-sized year (benchmarks): about 2 million spells, 8 million wage
# rows and 200 thousand enrollments. Wages set the persons (about 2 wage rows a
# person a year); public spells start about 3 times as often as in the default
# sample and nonprofits reach a smaller share, as in a whole state.
STATE_YEAR_ROWS = {"spells": 2_000_000, "wages": 8_000_000, "services": 200_000}
STATE_PERSONS = 3_970_000
STATE_SPELL_FACTOR = 3.2
STATE_REACH_FACTOR = 0.3
STATE_BACKGROUND_FACTOR = 0.3


def state_config(base: SampleConfig | None = None) -> SampleConfig:
    """The shares of a state-sized year: more public spells, a smaller nonprofit reach."""
    base = base or SampleConfig()
    return replace(
        base,
        spell_rate={p: r * STATE_SPELL_FACTOR for p, r in base.spell_rate.items()},
        reach_base=base.reach_base * STATE_REACH_FACTOR,
        reach_trend=base.reach_trend * STATE_REACH_FACTOR,
        reach_effect=base.reach_effect * STATE_REACH_FACTOR,
        reach_county_sd=base.reach_county_sd * STATE_REACH_FACTOR,
        background_enroll=base.background_enroll * STATE_BACKGROUND_FACTOR,
    )
