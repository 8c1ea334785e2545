"""Disclosure control on hand-checked linked tables, the issue's worked attacks, and
random tables on several seeds: the protection must pass the attacker's audit."""

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from outcomes import disclosure, indicators
from outcomes.indicators import CELL_SCHEMA, finalize, release_audit

Y = 2021
C1, C2, C3, C4, C5 = "01001", "01003", "01005", "01007", "01009"
PROP, RATE = "cross_sector_reach", "foster_care_entry_rate"


def cells(indicator_id, rows, group=None):
    """(county, numerator, denominator) rows of one indicator-year (one group value)."""
    frame = pl.DataFrame(
        [(indicator_id, Y, c, n, d, False) for c, n, d in rows], schema=CELL_SCHEMA, orient="row"
    )
    if group:
        frame = frame.with_columns(group_by=pl.lit(group[0]), group_value=pl.lit(group[1]))
    return frame


def reasons(published) -> dict:
    keys = [c for c in ("group_value", "county_fips") if c in published]
    return {tuple(r[:-1]) if len(r) > 2 else r[0]: r[-1]
            for r in published.select(*keys, "suppression").iter_rows()}  # fmt: skip


def release(rows, kind_id, reasons_of):
    """A county-table release as published: suppressed cells null, reasons given."""
    frame = cells(kind_id, rows).with_columns(
        suppression=pl.Series([reasons_of.get(c) for c, _, _ in rows], dtype=pl.String)
    )
    hidden = pl.col("suppression").is_not_null()
    return frame.with_columns(pl.when(~hidden).then(pl.col("numerator", "denominator")))


def no_groups():
    return pl.DataFrame(schema={**CELL_SCHEMA, "group_by": pl.String, "group_value": pl.String,
                                "suppression": pl.String})  # fmt: skip


# ---------------------------------------------------------------- the rule


def test_primary_counts_numerator_denominator_and_the_complement():
    county, _ = finalize(
        cells(
            PROP,
            [
                (C1, 10, 100),  # numerator 10 -> primary
                (C2, 11, 11),  # 11/11: complement 0 -> shown
                (C3, 0, 10),  # denominator 10 -> primary
                (C4, 95, 100),  # 5 persons without the outcome -> primary
                (C5, 0, 0),  # empty -> shown, never a complementary pick
                ("ALL", 116, 221),
            ],
        )
    )
    got = reasons(county)
    assert {c for c, r in got.items() if r == "primary"} == {C1, C3, C4}
    assert got[C5] is None
    rates = finalize(cells(RATE, [(C1, 0, 5), (C2, 12, 8), ("ALL", 12, 13)]))[0]
    assert set(reasons(rates).values()) == {None}  # a small population never suppresses


def test_complement_covers_the_shortfall_not_just_the_limit():
    # the second hole: A=1 primary, B=11, C=40, ALL=52. The hidden parts must
    # hold 21: B (11) does not cover the 20 lacking, C (40) does and is the smallest.
    rows = [(C1, 1, 1000), (C2, 11, 1000), (C3, 40, 1000), ("ALL", 52, 3000)]
    county, _ = finalize(cells(RATE, rows))
    assert reasons(county) == {C1: "primary", C2: None, C3: "complementary", "ALL": None}


def test_ties_go_to_the_smaller_denominator_then_county_and_never_to_0_over_0():
    rows = [(C1, 5, 1000), (C2, 0, 0), (C3, 25, 900), (C4, 25, 800), ("ALL", 55, 2700)]
    county, _ = finalize(cells(RATE, rows))
    assert reasons(county) == {C1: "primary", C2: None, C3: None, C4: "complementary",
                               "ALL": None}  # fmt: skip


def test_a_line_of_zeros_is_closed_by_its_total():
    # C1 0/5 primary by its denominator. C3 adds the 16 persons lacking; no part can add
    # a numerator, so the line's total is suppressed and the sum is no longer known.
    rows = [(C1, 0, 5), (C2, 0, 0), (C3, 0, 30), (C4, 0, 50), ("ALL", 0, 85)]
    county, _ = finalize(cells(PROP, rows))
    assert reasons(county) == {C1: "primary", C2: None, C3: "complementary", C4: None,
                               "ALL": "complementary"}  # fmt: skip


def test_min_cell_is_the_limit_of_every_rule():
    rows = [(C1, 4, 100), (C2, 5, 100), (C3, 30, 100), ("ALL", 39, 300)]
    low = finalize(cells(PROP, rows), min_cell=5)[0]
    # limit 5: C1 primary; the parts must hold 9: C2 (5) covers the 5 lacking
    assert reasons(low) == {C1: "primary", C2: "complementary", C3: None, "ALL": None}
    high = finalize(cells(PROP, rows))[0]
    assert reasons(high)[C1] == reasons(high)[C2] == "primary"


# ---------------------------------------------------------------- the attacker


def test_audit_recovers_the_old_complementary_pick():
    # A=1 primary, B=11 complementary, C=40 and ALL=52 published: A + B = 12 with
    # A in 1..10 and B in {0} or 11.. gives A=1 and B=11 exactly.
    rows = [(C1, 1, 1000), (C2, 11, 1000), (C3, 40, 1000), ("ALL", 52, 3000)]
    published = release(rows, RATE, {C1: "primary", C2: "complementary"})
    audit = release_audit(published, no_groups(), 11)
    found = {(r["county_fips"], r["low"], r["high"]) for r in audit.findings.iter_rows(named=True)}
    assert found == {
        (
            C1,
            1,
            1,
        ),
        (C2, 11, 11),
    }
    assert audit.summary.select("recovered", "narrowed").row(0) == (2, 0)


def test_audit_recovers_a_group_from_its_county_total():
    # the first hole: C1 120/400 with F 70/230, M 47/165, U 0/0 published gives
    # the hidden X = 3/5 by subtraction.
    county = release([(C1, 120, 400), (C2, 300, 600), ("ALL", 420, 1000)], PROP, {})
    sex = {"F": [(C1, 70, 230), (C2, 160, 310), ("ALL", 230, 540)],
           "M": [(C1, 47, 165), (C2, 140, 290), ("ALL", 187, 455)],
           "X": [(C1, 3, 5), (C2, 0, 0), ("ALL", 3, 5)],
           "U": [(C1, 0, 0), (C2, 0, 0), ("ALL", 0, 0)]}  # fmt: skip
    groups = pl.concat(
        release(rows, PROP, {C1: "primary", "ALL": "primary"} if v == "X" else {}).with_columns(
            group_by=pl.lit("sex"), group_value=pl.lit(v)
        )
        for v, rows in sex.items()
    )
    audit = release_audit(county, groups, 11)
    pinned = audit.findings.filter(pl.col("recovered"))
    assert set(pinned.select("county_fips", "group_value", "count", "low").iter_rows()) >= {
        (C1, "X", "numerator", 3),
        (C1, "X", "denominator", 5),
    }
    # protected together, the same cells leave nothing to recover
    truth_c = cells(PROP, [(C1, 120, 400), (C2, 300, 600), ("ALL", 420, 1000)])
    truth_g = pl.concat(cells(PROP, rows, ("sex", v)) for v, rows in sex.items())
    c, g = finalize(truth_c, truth_g)
    assert release_audit(c, g, 11).passed
    # and C1's sex line hides more than X: at least two cells holding 21 persons
    c1 = g.filter((pl.col("county_fips") == C1) & pl.col("suppression").is_not_null())
    assert c1.height >= 2


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_protection_passes_the_audit_on_random_tables(seed):
    """Six counties by sex with small counts: what the pipeline meets in a small state."""
    rng = np.random.default_rng(seed)
    counties = [f"99{2 * i + 1:03d}" for i in range(6)]
    d = rng.poisson(rng.choice([3, 12, 40], size=(6, 4)))
    d[rng.random((6, 4)) < 0.15] = 0
    n = rng.binomial(d, rng.uniform(0.05, 0.95, size=(6, 4)))
    sexes = ["F", "M", "U", "X"]
    groups = pl.concat(
        cells(PROP, [*zip(counties, n[:, j].tolist(), d[:, j].tolist(), strict=True),
                     ("ALL", int(n[:, j].sum()), int(d[:, j].sum()))], ("sex", s))
        for j, s in enumerate(sexes)
    )  # fmt: skip
    county = cells(PROP, [*zip(counties, n.sum(1).tolist(), d.sum(1).tolist(), strict=True),
                          ("ALL", int(n.sum()), int(d.sum()))])  # fmt: skip
    c, g = finalize(county, groups)
    audit = release_audit(c, g, 11)
    assert audit.passed, audit.findings
    hidden = pl.concat([c, g.drop("group_by", "group_value")]).filter(
        pl.col("suppression").is_not_null()
    )
    assert hidden["numerator"].null_count() == hidden.height  # nothing of a hidden cell shows


def _sparse_rate(seed):
    """24 counties of about one foster entry each: the statewide count is above the
    limit, and the protection takes many rounds to hide enough."""
    rng = np.random.default_rng(seed)
    counties = [f"99{2 * i + 1:03d}" for i in range(24)]
    n, d = rng.poisson(0.95, size=24), rng.integers(200, 900, size=24)
    rows = [*zip(counties, n.tolist(), d.tolist(), strict=True)]
    rows.append(("ALL", int(n.sum()), int(d.sum())))
    (table,) = disclosure.linked(indicators._estimates(cells(RATE, rows)), no_groups())
    return table


@pytest.mark.parametrize("seed", [3, 6, 10])
def test_what_a_round_keeps_for_the_next_finds_what_a_fresh_audit_finds(seed, monkeypatch):
    """The protection's rounds reuse the points and exemptions found before (`Seen`);
    every round's findings are those of an audit that starts from nothing, and include
    every count that the release's audit proves narrowed (the protection does not
    optimise to proof, so it may find more, never less)."""
    table = _sparse_rate(seed)
    audit_table = disclosure.audit_table
    rounds = []

    def checked(table, hidden, status, limit, seen=None):
        kept = audit_table(table, hidden, status, limit, seen)
        fresh = audit_table(table, hidden, status, limit, disclosure.Seen.truth(table))
        proved = audit_table(table, hidden, status, limit)
        rounds.append(len(kept))
        assert sorted((f.cell, f.count, f.range.low, f.range.high) for f in kept) == sorted(
            (f.cell, f.count, f.range.low, f.range.high) for f in fresh
        )
        assert {(f.cell, f.count) for f in proved} <= {(f.cell, f.count) for f in kept}
        return kept

    monkeypatch.setattr(disclosure, "audit_table", checked)
    disclosure.protect_table(table, 11)
    assert len(rounds) > 1 and rounds[0] > 0  # rounds with findings, so something was kept


def test_a_kept_lp_answers_each_objective_as_a_fresh_solve():
    """The LP left loaded in HiGHS between objectives (warm-started primal simplex)
    reaches the optimum scipy's milp reaches from scratch, objective after objective."""
    rng = np.random.default_rng(5)
    a = sp.random(40, 30, density=0.2, random_state=rng, format="csr")
    x0 = rng.uniform(0, 10, 30)  # a feasible point, so every LP has an optimum
    slack = rng.uniform(0, 5, 40)
    constraints = LinearConstraint(a, a @ x0 - slack, a @ x0 + slack)
    bounds = Bounds(np.zeros(30), np.full(30, 10.0))
    kept = disclosure._Simplex(constraints, bounds)
    for _ in range(20):
        c = rng.normal(size=30)
        x, proved = kept.minimise(c, 10.0)
        fresh = milp(c, bounds=bounds, constraints=constraints)
        assert proved and fresh.status == 0
        assert c @ x == pytest.approx(fresh.fun, abs=1e-7)
        assert np.all(a @ x >= constraints.lb - 1e-7) and np.all(a @ x <= constraints.ub + 1e-7)


def test_a_release_that_contradicts_the_rule_is_refused():
    rows = [(C1, 30, 1000), (C2, 11, 1000), ("ALL", 52, 2000)]  # 30 + 11 != 52
    with pytest.raises(ValueError, match="do not add up"):
        release_audit(release(rows, RATE, {}), no_groups(), 11)


def test_linked_lines_of_a_county_table_and_its_breakdown():
    county = cells(PROP, [(C1, 20, 40), ("ALL", 20, 40)])
    groups = pl.concat(cells(PROP, [(C1, 10, 20), ("ALL", 10, 20)], ("sex", s)) for s in "FM")
    from outcomes.indicators import _estimates

    (table,) = disclosure.linked(_estimates(county), _estimates(groups))
    lines = {(*sorted(table.line_cells(i).tolist()), int(table.total[i]))
             for i in range(len(table.total))}  # fmt: skip
    # cells: 0 C1, 1 ALL (county table); 2 F-C1, 3 F-ALL, 4 M-C1, 5 M-ALL
    assert lines == {(0, 1), (2, 3), (4, 5), (2, 4, 0), (3, 5, 1)}


def test_audit_disclosure_command_passes_a_release_and_fails_an_old_one(handmade, tmp_path):
    import shutil

    from click.testing import CliRunner

    from outcomes.schema import OUTCOME_INDICATORS
    from outcomes.warehouse import Warehouse
    from pipelines.cli import main

    ok = CliRunner().invoke(
        main, ["audit-disclosure", "--warehouse-dir", str(handmade.warehouse.root)]
    )
    assert ok.exit_code == 0, ok.output
    assert "0 recovered exactly" in ok.output
    # the same warehouse with 2015 published under the old rule (issue's second hole)
    root = tmp_path / "warehouse"
    shutil.copytree(handmade.warehouse.root, root)
    wh = Warehouse(root)
    rows = [(C1, 1, 1000), (C2, 11, 1000), (C3, 40, 1000), ("ALL", 52, 3000)]
    old = release(rows, RATE, {C1: "primary", C2: "complementary"})
    published = wh.read(OUTCOME_INDICATORS, [2015]).filter(pl.col("indicator_id") != RATE)
    old = old.with_columns(year=pl.lit(2015, dtype=pl.Int64)).select(
        [pl.col(c) if c in old.columns else pl.lit(None).alias(c) for c in published.columns]
    )
    wh.write(OUTCOME_INDICATORS, pl.concat([published, old.cast(published.schema)]), 2015)
    bad = CliRunner().invoke(main, ["audit-disclosure", "--warehouse-dir", str(root)])
    assert bad.exit_code == 1
    assert "2 recovered exactly" in bad.output


def _inherent_by_optimising(table, finding, status, limit) -> bool | None:
    """The exemption as first written: both ends of the count with everything
    suppressed, optimised (None where the solver could not prove them)."""
    everything = np.ones(table.size, dtype=bool)
    ub = disclosure._upper_bounds(table, everything)
    cells = next(g for g in disclosure._groups(table, everything) if finding.cell in g)
    program = disclosure._Program(table, everything, cells, status, limit, ub)
    i = int(np.flatnonzero(cells == finding.cell)[0])
    ends = []
    for sign in (1.0, -1.0):
        x, ok = program.solve(program.objective(finding.count, sign, np.array([i])))
        if x is None or not ok:
            return None
        ends.append(float(program.value(x, finding.count)[i]))
    return ends[1] - ends[0] + 1 <= finding.range.values


def _primary_only_findings(county, groups):
    (table,) = disclosure.linked(indicators._estimates(county), indicators._estimates(groups))
    small = disclosure.primary_mask(table, 11)
    hidden = np.logical_or.reduce(list(small.values()))
    status = np.where(hidden, disclosure.PRIMARY, None).astype(object)
    ub = disclosure._upper_bounds(table, hidden)
    seen = disclosure.Seen.truth(table)
    findings = [
        f
        for g in disclosure._groups(table, hidden)
        for f in disclosure._audit_group(table, hidden, g, status, 11, ub, seen)
    ]
    return table, status, findings


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_the_rule_alone_exemption_agrees_with_optimising_both_ends(seed):
    """Primary suppression alone leaves findings; for each, `inherent` (two feasibility
    questions) says what optimising the range with everything suppressed says."""
    rng = np.random.default_rng(seed)
    counties = [f"99{2 * i + 1:03d}" for i in range(5)]
    d = rng.poisson(rng.choice([2, 6, 30], size=(5, 2)))
    n = rng.binomial(d, 0.5)
    groups = pl.concat(
        cells(PROP, [*zip(counties, n[:, j].tolist(), d[:, j].tolist(), strict=True),
                     ("ALL", int(n[:, j].sum()), int(d[:, j].sum()))], ("sex", s))
        for j, s in enumerate(["F", "M"])
    )  # fmt: skip
    county = cells(PROP, [*zip(counties, n.sum(1).tolist(), d.sum(1).tolist(), strict=True),
                          ("ALL", int(n.sum()), int(d.sum()))])  # fmt: skip
    table, status, findings = _primary_only_findings(county, groups)
    assert findings  # primary suppression alone is not safe: there is something to judge
    for f in findings:
        expected = _inherent_by_optimising(table, f, status, 11)
        assert disclosure.inherent(table, f, status, 11) is bool(expected), f


def test_the_protection_keeps_a_finding_whose_exemption_it_cannot_settle_in_time(monkeypatch):
    """The protection gives the rule-alone question PROTECT_PROOF_SECONDS: unsettled, the
    finding stands (more is suppressed), never the other way round; the release audit
    keeps its own, longer time."""
    rows = [(C1, 2, 1000), (C2, 3, 2000), (C3, 1, 1500), (C4, 0, 900), (C5, 0, 800),
            ("ALL", 6, 6200)]  # fmt: skip
    table, status, findings = _primary_only_findings(cells(RATE, rows), no_groups())
    protection = disclosure._Baseline(table, status, 11, truth=True)
    assert findings and all(protection.inherent(f) for f in findings)
    monkeypatch.setattr(disclosure, "PROTECT_PROOF_SECONDS", 0.0)
    monkeypatch.setattr(disclosure, "REACH_SECONDS", 0.0)
    hurried = disclosure._Baseline(table, status, 11, truth=True)
    assert not any(hurried.inherent(f) for f in findings)
    assert all(disclosure.inherent(table, f, status, 11) for f in findings)


def test_a_statewide_count_below_the_limit_bounds_its_counties_whatever_is_published():
    """Foster entries 2, 3, 1, 0, 0 (ALL 6): the rule alone keeps each county within
    1 to 8 or so, so those findings are exempt, by both computations."""
    rows = [(C1, 2, 1000), (C2, 3, 2000), (C3, 1, 1500), (C4, 0, 900), (C5, 0, 800),
            ("ALL", 6, 6200)]  # fmt: skip
    table, status, findings = _primary_only_findings(cells(RATE, rows), no_groups())
    assert len(findings) == 4
    for f in findings:
        assert disclosure.inherent(table, f, status, 11)
        assert _inherent_by_optimising(table, f, status, 11) is True
