"""How each organisation registers a person: its own id and a noisy copy of the identity.

Noise is drawn once per person and organisation (a registration), so one
client's records agree with each other but not with other systems, as in
real data. The `noise` column names what was done, for linkage evaluation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from outcomes.sample.config import NoiseProfile, OrgSpec
from outcomes.sample.names import NICKNAMES, PARTICLES
from outcomes.sample.util import PLACEHOLDER_SSNS, digits, iso, keep_where, ssn_problem, typo

ID_WIDTH = 7
TYPO_IN_LAST_NAME = 0.5
SSN_OUTCOMES = ("missing", "partial", "placeholder", "never_issued", "digit_typo")
PLACEHOLDER_CHOICES = (*PLACEHOLDER_SSNS[:3], "999999999", "000000000", "123-45-6789")
NEVER_ISSUED_AREAS = ("000", "666", "900", "987", "999")
ALWAYS = (0, 9999)  # from_year and to_year of a registration row valid in every year
SEPARATORS = r"[-\s]+"  # between the parts of a compound surname
JOINERS = (" ", "-", "")
FIRST_PART = 0.7  # one part of a double surname: usually the first (the paternal one)


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


def _compound_part(rng: np.random.Generator, last: pl.Series) -> pl.Series:
    """One part of a compound surname: the word after a particle, else either surname."""
    m = len(last)
    frame = pl.DataFrame({"s": last, "first": rng.random(m) < FIRST_PART})
    words = pl.col("s").str.replace_all(SEPARATORS, " ").str.split(" ")
    particle = words.list.first().str.to_titlecase().is_in(PARTICLES)
    return frame.select(
        pl.when(~particle & pl.col("first")).then(words.list.first())
        .otherwise(words.list.last())
    ).to_series().alias(last.name)


def _compound_format(rng: np.random.Generator, last: pl.Series) -> pl.Series:
    """The same parts joined otherwise: a space for a hyphen, a hyphen for a space, or nothing."""
    m = len(last)
    frame = pl.DataFrame({"s": last, "k": rng.integers(0, len(JOINERS), m)})
    options = [pl.col("s").str.replace_all(SEPARATORS, j, literal=False) for j in JOINERS]
    chosen = pl.coalesce(
        pl.when(pl.col("k") == i).then(o) for i, o in enumerate(options))
    following = pl.coalesce(
        pl.when(pl.col("k") == i).then(options[(i + 1) % len(JOINERS)])
        for i in range(len(JOINERS)))
    return frame.select(
        pl.when(chosen != pl.col("s")).then(chosen).otherwise(following)
    ).to_series().alias(last.name)


def _apply(series: pl.Series, rows: np.ndarray, make) -> pl.Series:
    idx = np.flatnonzero(rows)
    if idx.size:
        series = series.clone()
        series.scatter(idx, make(series.gather(idx)))
    return series


def register(
    rng: np.random.Generator, persons: pl.DataFrame, pidx: np.ndarray, spec: OrgSpec,
    first_number: int = 1, slot: int = 0, since: np.ndarray | None = None,
) -> pl.DataFrame:
    """One registration per person in pidx: local id and identity as this organisation holds it.

    `since` is the year of each registration (default: long ago). A woman who
    married holds her new surname where the organisation registered her in or
    after the marriage year (unless it kept the old one); where it registered her
    before, it may update the name from the marriage year on: such a registration
    has two rows, one per surname, with the years each is valid (`from_year`,
    `to_year`; otherwise 0 and 9999).
    """
    noise = spec.noise
    m = pidx.size
    base = persons[pidx.astype(np.int64)]
    since = np.full(m, ALWAYS[0]) if since is None else since
    number = rng.permutation(m) + first_number

    # which surname each registration holds; updated registrations get a second row
    married_year = base["marriage_year"].fill_null(ALWAYS[1]).to_numpy().astype(np.int64)
    married = base["married_name"].is_not_null().to_numpy()
    after = married & (since >= married_year)
    kept = after & (rng.random(m) < noise.maiden_name_kept)
    update = married & ~after & (rng.random(m) < noise.married_name_update)
    updated = np.flatnonzero(update)
    src = np.concatenate([np.arange(m), updated])  # registration of each row
    later = np.zeros(src.size, dtype=bool)
    later[m:] = True
    from_year = np.where(later, married_year[src], ALWAYS[0])
    to_year = np.where(~later & update[src], married_year[src], ALWAYS[1])
    holds_married = np.concatenate([after & ~kept, np.ones(updated.size, dtype=bool)])
    last = base["last_name"].gather(src).zip_with(
        pl.Series(~holds_married), base["married_name"].gather(src))

    flags: dict[str, np.ndarray] = {}
    first = base["first_name"].clone()
    nick = (rng.random(m) < noise.nickname) & first.is_in(list(NICKNAMES)).to_numpy()
    first = first.zip_with(pl.Series(~nick), first.replace(NICKNAMES))
    flags["name:nickname"] = nick[src]
    typo_mask = rng.random(m) < noise.typo
    in_last = rng.random(m) < TYPO_IN_LAST_NAME
    first = _apply(first, typo_mask & ~in_last, lambda v: typo(rng, v)).gather(src)
    compound = last.str.contains(SEPARATORS).to_numpy()
    part = compound & (rng.random(m) < noise.compound_part)[src]
    fmt = compound & ~part & (rng.random(m) < noise.compound_format)[src]
    last = _apply(last, part, lambda v: _compound_part(rng, v))
    last = _apply(last, fmt, lambda v: _compound_format(rng, v))
    last = _apply(last, (typo_mask & in_last)[src], lambda v: typo(rng, v))
    flags["name:typo"] = typo_mask[src]
    swap = (rng.random(m) < noise.swap_names)[src]
    first, last = first.zip_with(pl.Series(~swap), last), last.zip_with(pl.Series(~swap), first)
    flags["name:swapped"] = swap
    if noise.upper_case:
        first, last = first.str.to_uppercase(), last.str.to_uppercase()
    names_missing = (rng.random(m) < noise.names_missing)[src]
    first, last = keep_where(first, ~names_missing), keep_where(last, ~names_missing)
    flags["name:missing"] = names_missing
    flags["name:married"] = holds_married & ~names_missing
    flags["name:compound_part"] = part & ~names_missing
    flags["name:compound_format"] = fmt & ~names_missing

    birth = base.select(iso(pl.col("birth"))).to_series()
    month, dom = birth.str.slice(5, 2), birth.str.slice(8, 2)
    swap_dm = ((rng.random(m) < noise.birth_day_month_swap)
               & (dom.cast(pl.Int32) <= 12).to_numpy() & (month != dom).to_numpy())
    birth = birth.zip_with(pl.Series(~swap_dm), birth.str.slice(0, 5) + dom + "-" + month)
    flags["birth_date:day_month_swapped"] = swap_dm[src]
    birth_missing = rng.random(m) < noise.birth_missing
    birth = keep_where(birth, ~birth_missing)
    flags["birth_date:missing"] = birth_missing[src]

    unknown = rng.random(m) < noise.sex_unknown
    sex = base["sex"].zip_with(pl.Series(~unknown), pl.Series(["U"]))
    flags["sex:unknown"] = unknown[src]
    ssn, outcome = noisy_ssn(rng, base["ssn"], noise)
    flags["ssn:missing"] = (outcome == 0)[src]
    flags["ssn:digit_typo"] = (outcome == 4)[src]
    zip_missing = rng.random(m) < noise.zip_missing
    if slot:
        flags["second_person_id"] = np.ones(src.size, dtype=bool)

    frame = pl.DataFrame({
        "pidx": pidx.astype(np.int32)[src],
        "slot": np.full(src.size, slot, dtype=np.int8),
        "local_id": spec.id_prefix + digits(number[src], ID_WIDTH),
        "first_name": first,
        "last_name": last,
        "birth_date": birth.gather(src),
        "sex": sex.gather(src),
        "ssn": ssn.gather(src),
        "zip": keep_where(base["zip"], ~zip_missing).gather(src),
        "from_year": from_year.astype(np.int32),
        "to_year": to_year.astype(np.int32),
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
    rng: np.random.Generator, persons: pl.DataFrame, pidx: np.ndarray, spec: OrgSpec,
    years: np.ndarray | int,
) -> pl.DataFrame:
    """Registrations of an organisation, plus a second person id for a share of its persons.

    `years` are the years of the rows pidx came from (or one year for all): a
    person is registered in the year of their first row.
    """
    first_seen = pl.DataFrame({
        "pidx": pidx.astype(np.int64),
        "year": np.broadcast_to(np.asarray(years, dtype=np.int64), pidx.shape),
    }).group_by("pidx").agg(pl.col("year").min()).sort("pidx")
    pidx, since = first_seen["pidx"].to_numpy(), first_seen["year"].to_numpy()
    first = register(rng, persons, pidx, spec, since=since)
    twice = rng.random(pidx.size) < spec.second_id_share
    if not twice.any():
        return first
    second = register(rng, persons, pidx[twice], spec, first_number=pidx.size + 1, slot=1,
                      since=since[twice])
    return pl.concat([first, second])


def valid_in(registrations: pl.DataFrame, year: int) -> pl.DataFrame:
    """The registration rows that hold in a year: one per person and slot."""
    return registrations.filter((pl.col("from_year") <= year) & (pl.col("to_year") > year))
