"""Stage 4, integrate: staged records plus person keys become pseudonymised tables.

The restricted `linked_*` tables keep the source record id (indicators break
ties on it); the analytic tables are their projections without it, so no name,
SSN, birth date, zip or source id reaches the analytic zone.
"""

from __future__ import annotations

import polars as pl

from outcomes.schema import (
    CLIENT_OUTCOMES,
    LINKED_SPELLS,
    LINKED_SURVEYS,
    QUARTERLY_WAGES,
    SERVICE_SPELLS,
)
from outcomes.warehouse import conform

SECTOR = {"spells": "PUBLIC", "services": "NONPROFIT"}


def identities(spells: pl.LazyFrame, wages: pl.LazyFrame, services: pl.LazyFrame) -> pl.LazyFrame:
    """The identity columns linkage compares, from every source that names a person."""
    names = ["first_name", "last_name"]
    place = ["sex", "zip", "county_fips"]
    none_s, none_d = pl.lit(None, pl.String), pl.lit(None, pl.Date)
    return pl.concat(
        [
            spells.select(
                pl.lit("spells").alias("source"), "org_id", "year", "record_id",
                pl.col("person_id").alias("local_id"), *names, "birth_date", "ssn", *place,
            ),
            wages.select(
                pl.lit("wages").alias("source"), "org_id", "year", "record_id",
                none_s.alias("local_id"), *names, none_d.alias("birth_date"), "ssn",
                *(none_s.alias(c) for c in place),
            ),
            services.select(
                pl.lit("services").alias("source"), "org_id", "year", "record_id",
                pl.col("client_id").alias("local_id"), *names, "birth_date", "ssn", *place,
            ),
        ]
    )  # fmt: skip


def _keys(links: pl.DataFrame, source: str) -> pl.DataFrame:
    return links.filter(pl.col("source") == source).select("org_id", "record_id", "person_key")


def linked_spells(
    spells: pl.DataFrame, services: pl.DataFrame, links: pl.DataFrame
) -> pl.DataFrame:
    """Public spells and nonprofit enrollments of one start year, with resolved person keys."""
    common = ["org_id", "record_id", "program", "county_fips", "sex", "year"]
    parts = [
        frame.join(_keys(links, source), on=["org_id", "record_id"], maintain_order="left").select(
            "person_key",
            pl.lit(SECTOR[source]).alias("sector"),
            pl.lit(source).alias("source"),
            pl.col(start).alias("start_date"),
            pl.col(end).alias("end_date"),
            pl.col("birth_date").dt.year().cast(pl.Int64).alias("birth_year"),
            *common,
        )
        for frame, source, start, end in (
            (spells, "spells", "start_date", "end_date"),
            (services, "services", "enroll_date", "exit_date"),
        )
    ]
    return conform(pl.concat(parts, how="vertical_relaxed"), LINKED_SPELLS)


def quarterly_wages(wages: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    joined = wages.join(_keys(links, "wages"), on=["org_id", "record_id"], maintain_order="left")
    return conform(joined, QUARTERLY_WAGES)


def survey_county(surveys: pl.DataFrame, services: pl.DataFrame) -> pl.DataFrame:
    """The county of the client's latest enrollment with that partner starting on or before
    the survey date, else of their earliest (contract, housing_stability_12m); ties go to
    the smallest record_id."""
    cand = surveys.select("org_id", "client_id", "response_id", "survey_date").join(
        services.select("org_id", "client_id", "record_id", "enroll_date", "county_fips"),
        on=["org_id", "client_id"],
        how="inner",
    )
    before = pl.col("enroll_date") <= pl.col("survey_date")
    # rank: enrollments on or before the survey first, latest date first; then earliest after
    ranked = cand.with_columns(
        pl.when(before).then(0).otherwise(1).alias("_after"),
        pl.when(before)
        .then(-pl.col("enroll_date").cast(pl.Int64))
        .otherwise(pl.col("enroll_date").cast(pl.Int64))
        .alias("_order"),
    ).sort("_after", "_order", "record_id")
    # earliest-with-the-partner fallback: when no enrollment precedes, the smallest date wins
    return ranked.group_by("org_id", "response_id", maintain_order=True).agg(
        pl.col("county_fips").first()
    )


def linked_surveys(
    surveys: pl.DataFrame, services: pl.DataFrame, links: pl.DataFrame
) -> pl.DataFrame:
    """Client outcome responses with the client's person key and county.

    `services` are the partner's staged enrollments of every year up to the survey's.
    """
    client_keys = (
        services.select("org_id", "record_id", "client_id")
        .join(_keys(links, "services"), on=["org_id", "record_id"])
        .group_by("org_id", "client_id")
        .agg(pl.col("person_key").min())
    )
    out = surveys.join(client_keys, on=["org_id", "client_id"], how="inner").join(
        survey_county(surveys, services), on=["org_id", "response_id"], how="left"
    )
    return conform(out, LINKED_SURVEYS).sort("org_id", "response_id")  # one order, every run


# the analytic projection of each restricted linked table
ANALYTIC_OF = {LINKED_SPELLS.name: SERVICE_SPELLS, LINKED_SURVEYS.name: CLIENT_OUTCOMES}
