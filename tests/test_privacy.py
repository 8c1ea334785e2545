"""No name, SSN, birth date or zip from the inputs reaches the analytic or published
zones, asset metadata, or the Dagster event log."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from outcomes import schema
from outcomes.docs import catalog, definition_rows
from outcomes.indicators import REGISTRY
from outcomes.ingest import discover, read_text
from tests.conftest import Materialized

IDENTIFIER_COLUMNS = ("first_name", "last_name", "ssn", "zip", "birth_date")
FORBIDDEN_COLUMNS = {*IDENTIFIER_COLUMNS, "record_id", "person_id", "client_id", "response_id"}
# coded columns that may legitimately hold a 5-digit code or a place name
NOT_IDENTIFIERS = {"county_fips", "county_name"}
MIN_NAME_LENGTH = 4  # shorter names collide with ordinary tokens


def identifiers(landing: Path) -> dict[str, set[str]]:
    """Every identifier value the partners delivered, as text (SSNs also without dashes)."""
    found: dict[str, set[str]] = {c: set() for c in IDENTIFIER_COLUMNS}
    for f in discover(landing):
        text = read_text(f).rows
        for c in IDENTIFIER_COLUMNS:
            if c in text.columns:
                found[c] |= set(text.get_column(c).drop_nulls().to_list())
    found["ssn"] |= {re.sub(r"[-\s]", "", s) for s in found["ssn"]}
    found["first_name"] = {n for n in found["first_name"] if len(n) >= MIN_NAME_LENGTH}
    found["last_name"] = {n for n in found["last_name"] if len(n) >= MIN_NAME_LENGTH}
    return found


def leaks(values: set[str], ids: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: values & v for k, v in ids.items() if values & v}


# --- identifiers in free text (the event log) -------------------------------------------
#
# A log is full of numbers: durations, counts, pids, partition keys. A four-digit partial
# SSN or a five-digit zip is found among them only by chance, so those two count only
# where they stand as a value: next to the column name (`ssn: 3524`, `'zip': '58040'`,
# `ssn=XXX-XX-3524`) or quoted as a string of their own (`['3524']`) other than a value
# Dagster itself writes (pid, partition keys). Full SSNs, names and birth dates are rare
# enough as whole tokens to count anywhere.

# 9 digits, dashes or single spaces optional, as a whole token (not part of a longer
# number, an id, or the fraction of a float such as a timestamp)
# an embedded chart: its pixels are not text; what it draws is in the table beside it
DATA_URI = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")
FULL_SSN = re.compile(r"(?<![\w-])(?<!\d\.)\d{3}[- ]?\d{2}[- ]?\d{4}(?![\w-])(?!\.\d)")
ISO_DATE = re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?![\d-])")
US_DATE = re.compile(r"(?<![\d/])\d{1,2}/\d{1,2}/\d{4}(?![\d/])")
WORD = re.compile(r"[^\W\d_]+")  # letters only: FOSTER_CARE gives FOSTER and CARE
_VALUE = r"[0-9Xx*#-]{4,11}"  # a zip or a full, partial or masked SSN
# a value given for an identifier column: `ssn: 3524`, `'zip': '58040'`, `ssn=...`, and
# Dagster's own text metadata `'ssn': TextMetadataValue(text='3524')`; never an int value
KEYED = re.compile(
    r"(?<![\w/])(?P<key>ssn|zip)['\"]?\s*[:=]\s*(?:TextMetadataValue\(text=)?['\"]?"
    rf"(?P<value>{_VALUE})(?![\w-])",
    re.IGNORECASE,
)
QUOTED = re.compile(rf"(?<!\w)(?P<q>['\"])(?P<value>{_VALUE})(?P=q)")
# keys under which Dagster quotes numbers of its own
DAGSTER_KEY_BEFORE = re.compile(
    r"\b(?:pid|partition|partition_key|start|end)['\"]?\s*[:=]\s*(?:\w+\(\w+=)?$"
)
MASKED = re.compile(r"[Xx*#]")


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _iso(date: str) -> str | None:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(date.strip(), fmt).date().isoformat()
        except ValueError:
            pass
    return None


def find_leaks(text: str, ids: dict[str, set[str]]) -> dict[str, set[str]]:
    """Identifiers of `ids` (from `identifiers`) that `text` shows, by kind.

    Kinds: ssn (full), partial_ssn, zip, name, birth_date. Values are as found in the text.
    """
    ssns = {_digits(s) for s in ids["ssn"]}
    full = {s for s in ssns if len(s) == 9}
    partial_forms = {s for s in ids["ssn"] if 4 <= len(_digits(s)) < 9}
    partial = partial_forms | {_digits(s) for s in partial_forms}
    tails = {s[-4:] for s in ssns if len(s) >= 4} | {_digits(s) for s in partial_forms}
    zips = ids["zip"] | {_digits(z) for z in ids["zip"] if len(_digits(z)) >= 4}
    names = ids["first_name"] | ids["last_name"]
    births = {d for d in map(_iso, ids["birth_date"]) if d}

    text = DATA_URI.sub("data:image", text)
    found: dict[str, set[str]] = {}

    def add(kind: str, value: str) -> None:
        found.setdefault(kind, set()).add(value)

    for m in FULL_SSN.finditer(text):
        if _digits(m[0]) in full:
            add("ssn", m[0])
    words = set(WORD.findall(text))
    for name in names:
        if name in words or (
            not WORD.fullmatch(name)  # compound: MILLER-COLLINS, O'Brien, VAN DYKE
            and words.issuperset(WORD.findall(name))
            and re.search(rf"(?<![^\W_]){re.escape(name)}(?![^\W_])", text)
        ):
            add("name", name)
    for m in (*ISO_DATE.finditer(text), *US_DATE.finditer(text)):
        if _iso(m[0]) in births:
            add("birth_date", m[0])
    for m in KEYED.finditer(text):
        value, digits = m["value"], _digits(m["value"])
        if m["key"].lower() == "zip" and (value in zips or digits in zips):
            add("zip", value)
        elif m["key"].lower() == "ssn" and (value in partial or digits in tails):
            add("partial_ssn", value)
    for m in QUOTED.finditer(text):
        value = m["value"]
        if DAGSTER_KEY_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            continue
        if value in zips:
            add("zip", value)
        elif value in partial or (MASKED.search(value) and _digits(value) in tails):
            add("partial_ssn", value)
    return found


@pytest.fixture(params=["handmade", "sample"])
def run(request: pytest.FixtureRequest) -> Materialized:
    return request.getfixturevalue(request.param)


def test_no_identifier_in_analytic_or_published_tables(run: Materialized):
    ids = identifiers(run.landing)
    assert ids["ssn"] and ids["zip"] and (ids["first_name"] | ids["last_name"])
    files = [
        p
        for zone in ("analytic", "published")
        for p in (run.warehouse.root / zone).rglob("*.parquet")
    ]
    assert files
    for path in files:
        df = pl.read_parquet(path)
        assert not FORBIDDEN_COLUMNS & set(df.columns), path
        text = [c for c, t in df.schema.items() if t == pl.String and c not in NOT_IDENTIFIERS]
        values = set(df.select(pl.concat_list(text).explode().unique()).to_series().drop_nulls())
        assert not leaks(values, ids), (path, leaks(values, ids))


@pytest.fixture(scope="module")
def sample_ids(sample: Materialized) -> dict[str, set[str]]:
    return identifiers(sample.landing)


def product_text() -> list[str]:
    """What the code itself writes into metadata (titles, definitions, column meanings,
    program codes), longest first: "Foster care entries" is a title, not a Mr Foster."""
    texts = {*schema.MEANINGS.values(), *(c for ps in schema.PROGRAMS.values() for c in ps)}
    for table in catalog():
        texts |= {table.description, *table.meanings.values()}
    for ind in REGISTRY.values():
        texts |= {ind.title, ind.description, *(text for _, text in definition_rows(ind))}
    return sorted(texts, key=len, reverse=True)


@pytest.fixture(scope="module")
def event_log(sample: Materialized) -> str:
    """Every event of every run of the sample, messages and events as stored, less the
    product's own words (`product_text`): everything else is searched."""
    instance = dg.DagsterInstance.from_config(str(sample.root / "dagster_home"))
    text = "\n".join(
        f"{entry.user_message}\n{entry.dagster_event!r}"
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
    )
    assert "ASSET_MATERIALIZATION" in text and "dagster/column_schema" in text
    for words in product_text():
        text = text.replace(words, " ")
    return text


def test_no_identifier_in_asset_metadata_or_event_log(
    event_log: str, sample_ids: dict[str, set[str]]
):
    found = find_leaks(event_log, sample_ids)
    assert not found, found


@pytest.fixture(scope="module")
def examples(sample_ids: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Identifiers with one delivered value of each form the planted leaks need.

    Numbers that could pass for counts (no leading zero) are preferred; a form the
    sample lacks is added to a copy of its identifiers, so the tests do not depend on
    the generator's noise.
    """
    ids = {k: set(v) for k, v in sample_ids.items()}

    def pick(column: str, pattern: str, fallback: str) -> str:
        values = sorted(v for v in ids[column] if re.fullmatch(pattern, v) and len(set(v)) > 1)
        if not values:
            ids[column].add(fallback)
        return values[len(values) // 2] if values else fallback

    ssn = pick("ssn", r"[1-8]\d{8}", "219114821")
    ex = {
        "ssn": ssn, "ssn_dashed": f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}", "ssn_last4": ssn[-4:],
        "partial": pick("ssn", r"[1-9]\d{3}", "3524"),
        "masked": pick("ssn", r"X{3}-X{2}-\d{4}", "XXX-XX-7315"),
        "zip": pick("zip", r"[1-9]\d{4}", "35241"),
        "name": pick("last_name", r"[A-Za-z]{4,}", "Whitfield"),
        "compound": pick("last_name", r"[A-Za-z]{2,}-[A-Za-z]{2,}", "Whitfield-Oyelaran"),
        "birth": pick("birth_date", r"\d{4}-\d{2}-\d{2}", "1987-06-14"),
        "us_birth": pick("birth_date", r"\d{2}/\d{2}/\d{4}", "06/14/1987"),
    }  # fmt: skip
    return ids, ex


# (kind reported, what is planted: a line as a leaky message, metadata or event could be)
PLANTED = {
    "full SSN with dashes": ("ssn", "could not link row 12 (SSN {ssn_dashed})"),
    "full SSN without dashes": ("ssn", "'example': TextMetadataValue(text='{ssn}')"),
    "full SSN at the end of a sentence": ("ssn", "duplicate key {ssn}."),
    "name": ("name", "message='linked {name} to 3 records'"),
    "compound name": ("name", "first failing row: {compound}, F"),
    "ISO birth date": ("birth_date", "birth_date=({birth})"),
    "US birth date": ("birth_date", "row 3 born {us_birth}"),
    "zip as a key: value": ("zip", "'zip': '{zip}'"),
    "zip after =": ("zip", "zip={zip} county_fips=36001"),
    "zip in text metadata": ("zip", "{{'zip': TextMetadataValue(text='{zip}')}}"),
    "zip quoted in a list": ("zip", "'top_values': ['{zip}']"),
    "partial SSN as key: value": ("partial_ssn", "ssn: {partial}"),
    "partial SSN as 'key': 'value'": ("partial_ssn", "{{'ssn': '{partial}'}}"),
    "partial SSN in text metadata": ("partial_ssn", "'ssn': TextMetadataValue(text='{partial}')"),
    "partial SSN quoted": ("partial_ssn", "examples=['{partial}', 'other']"),
    "masked SSN quoted": ("partial_ssn", "examples=('{masked}',)"),
    "last four of a full SSN as a value": ("partial_ssn", "ssn=XXX-XX-{ssn_last4}"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_identifier_in_the_event_log_is_found(
    case: str, event_log: str, examples: tuple[dict[str, set[str]], dict[str, str]]
):
    ids, ex = examples
    kind, template = PLANTED[case]
    line = template.format(**ex)
    at = len(event_log) // 2
    planted = f"{event_log[:at]}\n{line}\n{event_log[at:]}"
    found = find_leaks(planted, ids)
    assert set(found) == {kind}, (line, found)


# numbers a log holds for other reasons, made of the very digits of delivered identifiers
ORDINARY = [
    "took {partial} ms",
    "rows: {partial}1",
    "rows: {zip}1",
    "rows: {zip}",
    "Executing steps in process (pid: {partial})",
    "{{'pid': TextMetadataValue(text='{partial}')}}",
    "partition='{partial}', PartitionKeyRange(start='{partial}', end='{partial}')",
    "'invalid_ssn': IntMetadataValue(value={partial})",
    "'zip_invalid': IntMetadataValue(value={zip})",
    "| ssn:invalid | expect_column_values_to_match_regex | ssn | {partial} | {zip} | 0 |",
    "| public/dwd/wages_2019.parquet | {partial} | ssn:invalid |",
    "timestamp=1733000000.{ssn} elapsed {ssn}1 s",
    "run 4f{ssn}e2 step {ssn_dashed}-b",
    "counts {partial} {zip} {partial}-{zip}",
    "![chart](data:image/png;base64,iVBORw0KGgo/{ssn}+{ssn_dashed}==)",  # an image's bytes
]


@pytest.mark.parametrize("template", ORDINARY)
def test_ordinary_numbers_in_the_event_log_are_not_leaks(
    template: str, examples: tuple[dict[str, set[str]], dict[str, str]]
):
    ids, ex = examples
    line = template.format(**ex)
    assert find_leaks(line, ids) == {}, line


def test_restricted_zone_is_readable_by_its_owner_only(handmade):
    """Mode bits, not a failed read: CI runs as root, who reads anything."""
    import os
    import stat

    zone = handmade.warehouse.root / "restricted"
    paths = [zone, *zone.rglob("*")]
    kinds = {p.suffix for p in paths if p.is_file()}
    assert {".parquet", ".json", ".html"} <= kinds  # tables, model and fingerprint, Data Docs
    wrong = [
        (str(p.relative_to(zone)), oct(stat.S_IMODE(os.stat(p).st_mode)))
        for p in paths
        if stat.S_IMODE(os.stat(p).st_mode) != (0o700 if p.is_dir() else 0o600)
    ]
    assert wrong == []
