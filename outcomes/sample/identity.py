"""How each organisation registers a person: its own id and a noisy copy of the identity.

Noise is drawn once per person and organisation (a registration), so one
client's records agree with each other but not with other systems, as in
real data. The `noise` column names what was done, for linkage evaluation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from outcomes.sample.config import NoiseProfile, OrgSpec
from outcomes.sample.names import NICKNAMES
from outcomes.sample.util import PLACEHOLDER_SSNS, digits, iso, keep_where, ssn_problem, typo

ID_WIDTH = 7
TYPO_IN_LAST_NAME = 0.5
SSN_OUTCOMES = ("missing", "partial", "placeholder", "never_issued", "digit_typo")
PLACEHOLDER_CHOICES = (*PLACEHOLDER_SSNS[:3], "999999999", "000000000", "123-45-6789")
NEVER_ISSUED_AREAS = ("000", "666", "900", "987", "999")


def _ssn_partial(rng: np.random.Generator, ssn: pl.Series) -> pl.Series:
    """Masked, last four only, or a digit dropped: what forms and call centres record."""
    kind = rng.integers(0, 3, len(ssn))
    frame = pl.DataFrame({"s": ssn, "kind": kind})
    return frame.select(
        pl.when(pl.col("kind") == 0).then("XXX-XX-" + pl.col("s").str.slice(5, 4))
        .when(pl.col("kind") == 1).then(pl.col("s").str.slice(5, 4))
        .otherwise(pl.col("s").str.slice(0, 4) + pl.col("s").str.slice(5, 4))
    ).to_series().alias(ssn.name)


def _ssn_never_issued(rng: np.random.Generator, ssn: pl.Series) -> pl.Series:
    """A number in a range the SSA never issues: bad area, group 00 or serial 0000."""
    kind = rng.integers(0, 3, len(ssn))
    area = np.asarray(NEVER_ISSUED_AREAS)[rng.integers(0, len(NEVER_ISSUED_AREAS), len(ssn))]
    frame = pl.DataFrame({"s": ssn, "kind": kind, "area": area})
    s = pl.col("s")
    return frame.select(
        pl.when(pl.col("kind") == 0).then(pl.col("area") + s.str.slice(3, 6))
        .when(pl.col("kind") == 1).then(s.str.slice(0, 3) + "00" + s.str.slice(5, 4))
        .otherwise(s.str.slice(0, 5) + "0000")
    ).to_series().alias(ssn.name)


def _ssn_digit_typo(rng: np.random.Generator, ssn: pl.Series) -> pl.Series:
    pos = rng.integers(0, 9, len(ssn))
    shift = rng.integers(1, 10, len(ssn))
    frame = pl.DataFrame({"s": ssn, "k": pos, "d": shift})
    s, k = pl.col("s"), pl.col("k")
    old = s.str.slice(k, 1).cast(pl.Int64)
    new = ((old + pl.col("d")) % 10).cast(pl.String)
    return frame.select(pl.concat_str([s.str.slice(0, k), new, s.str.slice(k + 1)])).to_series()


def noisy_ssn(
    rng: np.random.Generator, ssn: pl.Series, noise: NoiseProfile
) -> tuple[pl.Series, np.ndarray]:
    """A recorded SSN per true SSN, and a boolean array of 'missing' for the noise column."""
    n = len(ssn)
    shares = np.array([noise.ssn_missing, noise.ssn_partial, noise.ssn_placeholder,
                       noise.ssn_never_issued, noise.ssn_digit_typo])
    outcome = rng.choice(len(shares) + 1, n, p=[*shares, 1 - shares.sum()])
    out = ssn.clone()
    makers = {
        1: lambda s: _ssn_partial(rng, s),
        2: lambda s: pl.Series(np.asarray(PLACEHOLDER_CHOICES)[
            rng.integers(0, len(PLACEHOLDER_CHOICES), len(s))]),
        3: lambda s: _ssn_never_issued(rng, s),
        4: lambda s: _ssn_digit_typo(rng, s),
    }
    for code, make in makers.items():
        rows = np.flatnonzero(outcome == code)
        if rows.size:
            out.scatter(rows, make(ssn.gather(rows)))
    dashed = (rng.random(n) < noise.ssn_dashes) & (outcome != 1)
    frame = pl.DataFrame({"s": out, "dash": dashed})
    s = pl.col("s")
    out = frame.select(
        pl.when(pl.col("dash") & s.str.contains(r"^\d{9}$"))
        .then(pl.concat_str([s.str.slice(0, 3), s.str.slice(3, 2), s.str.slice(5, 4)],
                            separator="-"))
        .otherwise(s)
    ).to_series()
    return keep_where(out, outcome != 0), outcome


def register(
    rng: np.random.Generator, persons: pl.DataFrame, pidx: np.ndarray, spec: OrgSpec,
    first_number: int = 1, slot: int = 0,
) -> pl.DataFrame:
    """One registration per person in pidx: local id and identity as this organisation holds it."""
    noise = spec.noise
    m = pidx.size
    base = persons[pidx.astype(np.int64)]
    number = rng.permutation(m) + first_number
    flags: dict[str, np.ndarray] = {}
    first, last = base["first_name"].clone(), base["last_name"].clone()

    nick = (rng.random(m) < noise.nickname) & first.is_in(list(NICKNAMES)).to_numpy()
    first = first.zip_with(pl.Series(~nick), first.replace(NICKNAMES))
    flags["name:nickname"] = nick
    typo_mask = rng.random(m) < noise.typo
    in_last = rng.random(m) < TYPO_IN_LAST_NAME
    for target, rows in (("first", typo_mask & ~in_last), ("last", typo_mask & in_last)):
        idx = np.flatnonzero(rows)
        if idx.size:
            series = first if target == "first" else last
            series.scatter(idx, typo(rng, series.gather(idx)))
    flags["name:typo"] = typo_mask
    swap = rng.random(m) < noise.swap_names
    first, last = first.zip_with(pl.Series(~swap), last), last.zip_with(pl.Series(~swap), first)
    flags["name:swapped"] = swap
    if noise.upper_case:
        first, last = first.str.to_uppercase(), last.str.to_uppercase()
    names_missing = rng.random(m) < noise.names_missing
    first, last = keep_where(first, ~names_missing), keep_where(last, ~names_missing)
    flags["name:missing"] = names_missing

    birth = base.select(iso(pl.col("birth"))).to_series()
    month, dom = birth.str.slice(5, 2), birth.str.slice(8, 2)
    swap_dm = ((rng.random(m) < noise.birth_day_month_swap)
               & (dom.cast(pl.Int32) <= 12).to_numpy() & (month != dom).to_numpy())
    birth = birth.zip_with(pl.Series(~swap_dm), birth.str.slice(0, 5) + dom + "-" + month)
    flags["birth_date:day_month_swapped"] = swap_dm
    birth_missing = rng.random(m) < noise.birth_missing
    birth = keep_where(birth, ~birth_missing)
    flags["birth_date:missing"] = birth_missing

    unknown = rng.random(m) < noise.sex_unknown
    sex = base["sex"].zip_with(pl.Series(~unknown), pl.Series(["U"]))
    flags["sex:unknown"] = unknown
    ssn, outcome = noisy_ssn(rng, base["ssn"], noise)
    flags["ssn:missing"] = outcome == 0
    flags["ssn:digit_typo"] = outcome == 4
    zip_missing = rng.random(m) < noise.zip_missing
    if slot:
        flags["second_person_id"] = np.ones(m, dtype=bool)

    frame = pl.DataFrame({
        "pidx": pidx.astype(np.int32),
        "slot": np.full(m, slot, dtype=np.int8),
        "local_id": spec.id_prefix + digits(number, ID_WIDTH),
        "first_name": first,
        "last_name": last,
        "birth_date": birth,
        "sex": sex,
        "ssn": ssn,
        "zip": keep_where(base["zip"], ~zip_missing),
        **{f"_f{i}": v for i, v in enumerate(flags.values())},
    })
    codes = list(flags)
    noise_expr = pl.concat_str(
        [pl.when(pl.col(f"_f{i}")).then(pl.lit(c)) for i, c in enumerate(codes)],
        separator=";", ignore_nulls=True,
    )
    return frame.with_columns(
        noise_expr.replace("", None).alias("noise"), ssn_problem("ssn").alias("ssn_code")
    ).drop([f"_f{i}" for i in range(len(codes))])


def register_org(
    rng: np.random.Generator, persons: pl.DataFrame, pidx: np.ndarray, spec: OrgSpec
) -> pl.DataFrame:
    """Registrations of an organisation, plus a second person id for a share of its persons."""
    pidx = np.unique(pidx)
    first = register(rng, persons, pidx, spec)
    twice = pidx[rng.random(pidx.size) < spec.second_id_share]
    if twice.size == 0:
        return first
    second = register(rng, persons, twice, spec, first_number=pidx.size + 1, slot=1)
    return pl.concat([first, second])
