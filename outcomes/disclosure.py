"""Disclosure control: what of an indicator-year may be published, and the attacker's audit.

The county table and its breakdowns by sex and age band are one *linked table*: every
cell sits on lines whose parts add up to the line's total (a group's counties add up to
its ALL row; a county's groups, and ALL's, add up to that county's total row; the
counties add up to ALL). Suppression is decided on the whole linked table at once:

1. primary: a numerator of 1 to limit - 1, or for a proportion a denominator or a
   denominator minus numerator (the persons without the outcome) of 1 to limit - 1;
2. the line rule: no line has exactly one suppressed cell, and where a line's total is
   published its suppressed parts hold together at least 2 x limit - 1 in numerator and,
   for proportions, denominator (and in denominator minus numerator when one of them is
   primary on it), so that the rule alone bounds no primary count tighter than 1 to
   limit - 1;
3. the audit: an integer program per group of linked suppressed cells bounds each
   suppressed count from what is published and what the rule says; where a count is
   pinned to one value, or a primary numerator keeps fewer than limit - 1 values, more
   cells are suppressed and 2-3 repeat.

Complementary picks are deterministic: in the line at fault, a published part that
covers the line's shortfall alone (the smallest such), else the part that adds most,
else the line's total; never a cell with a zero denominator (0/0). Cells are ordered
by group, group value and county (ALL last), which breaks every tie.

Pure numpy/scipy on arrays of one indicator-year: the tables are a few hundred cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import highspy
import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components

from outcomes import schema

ALL = schema.ALL_COUNTIES
TOTAL = "TOTAL"  # group_by and group_value of county-table cells inside the linked table
PRIMARY, COMPLEMENTARY = "primary", "complementary"
KEYS = ["indicator_id", "year"]
CELL = ["county_fips", "group_by", "group_value"]
SOLVE_SECONDS = 60.0  # per integer program; a solve cut short only keeps what it found
PRIMAL_SIMPLEX = 4  # HiGHS simplex_strategy
REACH_SECONDS = 1.0  # per heuristic question; unanswered, the count is optimised to proof
# the protection's rule-alone question over the whole indicator-year: unsettled in this
# time, the finding stands and more is suppressed (the release audit takes SOLVE_SECONDS)
PROTECT_PROOF_SECONDS = 1.0
Q_NUMERATOR, Q_DENOMINATOR, Q_COMPLEMENT = "numerator", "denominator", "complement"


# ---------------------------------------------------------------- the linked table


@dataclass
class Linked:
    """One indicator-year as arrays: cells in a fixed order, and its lines."""

    key: tuple[str, int]
    cells: pl.DataFrame  # CELL columns, in tie-break order
    n: np.ndarray  # int64; -1 where unknown (a suppressed cell read from a release)
    d: np.ndarray
    proportion: bool
    parts: sp.csr_matrix  # lines x cells, 1 where the cell is a part of the line
    total: np.ndarray  # the total cell of each line
    status: np.ndarray | None = None  # a release's suppression column, as published
    cell_lines: list[np.ndarray] = field(default_factory=list)  # lines each cell is on

    @property
    def size(self) -> int:
        return len(self.n)

    def counts(self) -> dict[str, np.ndarray]:
        """The counts the rule protects: numerator, and for proportions d and d - n."""
        if not self.proportion:
            return {Q_NUMERATOR: self.n}
        return {Q_NUMERATOR: self.n, Q_DENOMINATOR: self.d, Q_COMPLEMENT: self.d - self.n}

    def truth_at(self, cells: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        """The true counts of `cells` as a point of the attacker's programs."""
        return {q: v[cells].astype(float) for q, v in self.counts().items()}

    def line_cells(self, line: int) -> np.ndarray:
        start, end = self.parts.indptr[line], self.parts.indptr[line + 1]
        return self.parts.indices[start:end]


_ORDER = [pl.col("group_by") != TOTAL, "group_by", "group_value",
          pl.col("county_fips") == ALL, "county_fips"]  # fmt: skip


def _cell_frame(county: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """Both tables as one frame of cells; the county table's cells are group TOTAL."""
    cols = [*KEYS, *CELL, "numerator", "denominator", "kind"]
    cols += ["suppression"] if "suppression" in county else []
    total = county.with_columns(group_by=pl.lit(TOTAL), group_value=pl.lit(TOTAL))
    frame = pl.concat([total.select(cols), groups.select(cols)]) if groups.height else total
    return frame.select(cols)


def _lines(cells: pl.DataFrame) -> pl.DataFrame:
    """(line, row, is_total): the margins that tie the cells of one indicator-year."""
    rows = cells.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    across = rows.select(  # a group's counties (and the county table's) add up to ALL
        line=pl.concat_str(pl.lit("across"), "group_by", "group_value", separator="|"),
        row="row",
        is_total=pl.col("county_fips") == ALL,
    )
    county_rows = rows.filter(pl.col("group_by") == TOTAL).select("county_fips", total="row")
    breakdown = rows.filter(pl.col("group_by") != TOTAL)
    within = breakdown.join(county_rows, on="county_fips", how="inner").select(
        line=pl.concat_str(pl.lit("within"), "group_by", "county_fips", separator="|"),
        parts=pl.col("row"),
        total="total",
    )
    within = pl.concat(
        [
            within.select("line", row="parts", is_total=pl.lit(False)),
            within.select("line", row="total", is_total=pl.lit(True)).unique(),
        ]
    )
    return pl.concat([across, within]).sort("line", "row")


def linked(county: pl.DataFrame, groups: pl.DataFrame) -> list[Linked]:
    """The linked table of every indicator-year in a county table and its breakdowns.

    Suppressed cells (numerator null) are unknowns. A table whose known cells do not
    add up along its lines is refused: the protection would be computed on a lie.
    """
    frame = _cell_frame(county, groups)
    out = []
    for key, cells in frame.sort(KEYS).group_by(KEYS, maintain_order=True):
        cells = cells.sort(_ORDER)
        members = _lines(cells)
        line_ids = members.select(pl.col("line").rank("dense").cast(pl.Int64) - 1).to_series()
        members = members.with_columns(line_id=line_ids)
        totals = members.filter("is_total").sort("line_id")
        if totals.height != members["line_id"].n_unique():
            raise ValueError(f"{key}: a line of the linked table has no single total row")
        part = members.filter(~pl.col("is_total"))
        n_lines = totals.height
        parts = sp.csr_matrix(
            (np.ones(part.height), (part["line_id"].to_numpy(), part["row"].to_numpy())),
            shape=(n_lines, cells.height),
        )
        parts.sort_indices()
        kinds = cells["kind"].unique().to_list()
        if len(kinds) != 1:
            raise ValueError(f"{key}: cells of more than one kind {kinds}")
        table = Linked(
            key=(str(key[0]), int(key[1])),
            cells=cells.select(CELL),
            n=cells["numerator"].fill_null(-1).to_numpy().astype(np.int64),
            d=cells["denominator"].fill_null(-1).to_numpy().astype(np.int64),
            proportion=kinds[0] == "proportion",
            parts=parts,
            total=totals["row"].to_numpy(),
            status=(
                np.array(cells["suppression"].to_list(), dtype=object)
                if "suppression" in cells
                else None
            ),
        )
        csc = parts.tocsc()
        table.cell_lines = [
            np.union1d(
                csc.indices[csc.indptr[c] : csc.indptr[c + 1]], np.flatnonzero(table.total == c)
            )
            for c in range(table.size)
        ]
        _check_margins(table)
        out.append(table)
    return out


def _check_margins(table: Linked) -> None:
    for name, q in (("numerator", table.n), ("denominator", table.d)):
        known = q >= 0
        whole = (table.parts @ known.astype(float)) == np.asarray(table.parts.sum(axis=1)).ravel()
        whole &= known[table.total]
        off = whole & (table.parts @ np.where(known, q, 0) != q[table.total])
        if off.any() and (name == "numerator" or table.proportion):
            bad = table.cells.row(int(table.total[np.flatnonzero(off)[0]]))
            raise ValueError(f"{table.key}: the {name}s of a line do not add up to {bad}")


# ---------------------------------------------------------------- the rule


def primary_mask(table: Linked, limit: int) -> dict[str, np.ndarray]:
    """Per protected count, the cells where it is 1 to limit - 1 (truth needed)."""
    return {q: (v >= 1) & (v <= limit - 1) for q, v in table.counts().items()}


def _zero_denominator(table: Linked) -> np.ndarray:
    return table.d == 0


def _shortfalls(
    table: Linked, hidden: np.ndarray, small: dict[str, np.ndarray], limit: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Lines breaking the line rule, and per count how much their hidden parts lack."""
    need = 2 * limit - 1
    h = hidden.astype(float)
    in_parts = table.parts @ h
    count = in_parts + h[table.total]
    total_published = ~hidden[table.total]
    lack = {}
    for q, v in table.counts().items():
        guarded = q != Q_COMPLEMENT or small[q].any()
        if not guarded:
            continue
        if q == Q_COMPLEMENT:
            guarded_lines = (table.parts @ (hidden & small[q]).astype(float)) > 0
        else:
            guarded_lines = np.ones(len(table.total), dtype=bool)
        held = table.parts @ (h * v)
        lack[q] = np.where(total_published & (in_parts > 0) & guarded_lines, need - held, 0)
    broken = count == 1
    for q in lack:
        broken |= lack[q] > 0
    return broken, lack


def _pick(table: Linked, line: int, hidden: np.ndarray, lack: dict[str, float]) -> int | None:
    """The complementary cell for one line (see the module docstring), or None."""
    total = int(table.total[line])
    cands = np.append(table.line_cells(line), total)
    cands = cands[~hidden[cands] & ~_zero_denominator(table)[cands]]
    if not len(cands):
        return None
    counts = table.counts()
    short = {q: a for q, a in lack.items() if a > 0}
    is_total = cands == total
    covers = np.ones(len(cands), dtype=bool)
    adds = np.zeros(len(cands))
    for q, a in short.items():
        covers &= counts[q][cands] >= a
        adds += np.minimum(counts[q][cands], a)
    n, d = table.n[cands], table.d[cands]
    if covers.any():
        order = np.lexsort((cands, d, n, is_total, ~covers))
    elif (adds > 0).any():
        order = np.lexsort((cands, -adds, is_total))
    else:  # nothing in the line adds anything: the total stops the line telling
        order = np.lexsort((cands, n, ~is_total))
    return int(cands[order[0]])


def _apply_line_rule(
    table: Linked, hidden: np.ndarray, small: dict[str, np.ndarray], limit: int
) -> list[int]:
    """Suppress complementary cells until no line breaks the rule; the cells added."""
    added: list[int] = []
    while True:
        broken, lack = _shortfalls(table, hidden, small, limit)
        for line in np.flatnonzero(broken):
            cell = _pick(table, int(line), hidden, {q: a[line] for q, a in lack.items()})
            if cell is not None:
                hidden[cell] = True
                added.append(cell)
                break
        else:
            return added


# ---------------------------------------------------------------- the attacker


@dataclass(frozen=True)
class Range:
    """What the attacker can say of one suppressed count."""

    low: int
    high: int
    exact: bool  # both ends proved by the solver (else the range found so far)

    @property
    def values(self) -> int:
        return self.high - self.low + 1


@dataclass
class Finding:
    cell: int
    count: str
    range: Range
    primary: bool


def _upper_bounds(table: Linked, hidden: np.ndarray) -> dict[str, np.ndarray]:
    """Bounds each hidden count by propagation along the lines (valid, not tight)."""
    counts = (
        {Q_NUMERATOR: table.n, Q_DENOMINATOR: table.d}
        if table.proportion
        else {Q_NUMERATOR: table.n}
    )
    out = {}
    for q, v in counts.items():
        ub = np.where(hidden, np.inf, v.astype(float))
        for _ in range(table.size):
            before = ub.copy()
            known_parts = table.parts @ np.where(hidden, 0.0, v)
            for line in range(len(table.total)):
                t, members = table.total[line], table.line_cells(line)
                if not hidden[t]:
                    rest = v[t] - known_parts[line]
                    hp = members[hidden[members]]
                    ub[hp] = np.minimum(ub[hp], rest)
                else:
                    ub[t] = min(ub[t], ub[members].sum())
            if np.array_equal(before, ub):
                break
        out[q] = ub
    if table.proportion:
        out[Q_NUMERATOR] = np.minimum(out[Q_NUMERATOR], out[Q_DENOMINATOR])
    fallback = 2.0 * max(int(np.abs(table.n).sum() + np.abs(table.d).sum()), 1)
    return {q: np.where(np.isinf(ub), fallback, ub) for q, ub in out.items()}


class _Program:
    """The attacker's integer program over one group of linked suppressed cells.

    Each either-or of the rule is a set of binaries, one per side. Fixing them to the
    sides a feasible point is on (`at`; all cells, or all but some `free` ones) gives a
    smaller program whose points are points of the full one: with every side fixed it
    is an LP, and its optimum is usually integral. One program serves every variant,
    so a group's constraints are built once.
    """

    def __init__(self, table: Linked, hidden: np.ndarray, cells: np.ndarray,
                 status: np.ndarray, limit: int, ub: dict[str, np.ndarray]) -> None:  # fmt: skip
        self.cells = cells
        k = len(cells)
        index = {int(c): i for i, c in enumerate(cells)}
        self.col = {Q_NUMERATOR: np.arange(k)}
        if table.proportion:
            self.col[Q_DENOMINATOR] = np.arange(k, 2 * k)
        self.quantities = [*self.col, *([Q_COMPLEMENT] if table.proportion else [])]
        n_vars = k * len(self.col)
        self.rows: list[tuple[dict[int, float], float, float]] = []
        self.lows, self.highs = np.zeros(n_vars), np.zeros(n_vars)
        for q, cols in self.col.items():
            self.highs[cols] = ub[q][cells]
        self.n_vars = n_vars
        # per either-or: its cell, and per side a binary and the count's range there
        self.choices: list[tuple[int, list[tuple[int, str, float, float]]]] = []
        for i, c in enumerate(cells):
            self._rule(i, status[c], limit)
        lines = np.unique(np.concatenate([table.cell_lines[c] for c in cells]))
        for q, cols in self.col.items():
            v = table.n if q == Q_NUMERATOR else table.d
            for line in lines:
                t, members = int(table.total[line]), table.line_cells(line)
                terms = {int(cols[index[int(p)]]): 1.0 for p in members if hidden[p]}
                rhs = -float(v[members][~hidden[members]].sum())
                if hidden[t]:
                    terms[int(cols[index[t]])] = -1.0
                else:
                    rhs += float(v[t])
                self.rows.append((terms, rhs, rhs))
        row_of = [r for r, (terms, _, _) in enumerate(self.rows) for _ in terms]
        columns = [j for terms, _, _ in self.rows for j in terms]
        coefs = [c for terms, _, _ in self.rows for c in terms.values()]
        a = sp.csr_matrix((coefs, (row_of, columns)), shape=(len(self.rows), self.n_vars))
        lb = np.array([low for _, low, _ in self.rows], dtype=float)
        rb = np.array([high for _, _, high in self.rows], dtype=float)
        self.constraints = LinearConstraint(a.tocsc(), lb, rb)
        every = np.arange(self.n_vars)
        self.whole = _Sides(every, np.zeros(self.n_vars), self.constraints,
                            Bounds(self.lows, self.highs), lp=False)  # fmt: skip

    def _binary(self) -> int:
        self.lows, self.highs = np.append(self.lows, 0.0), np.append(self.highs, 1.0)
        self.n_vars += 1
        return self.n_vars - 1

    def _within(self, terms: dict[int, float], low: float, high: float) -> None:
        """low <= terms <= high, as a bound when the terms are one variable."""
        if len(terms) == 1:
            (j,) = terms
            self.lows[j], self.highs[j] = max(self.lows[j], low), min(self.highs[j], high)
        else:
            self.rows.append((terms, low, high))

    def _either(self, i: int, q: str, terms: dict[int, float],
                sides: list[tuple[float, float]], big: float) -> None:  # fmt: skip
        """Count q of cell i (`terms`) lies in one of `sides`: a binary per side."""
        z = [self._binary() for _ in sides]
        for zq, (low, high) in zip(z, sides, strict=True):  # active side: low <= terms <= high
            if low > 0:
                self.rows.append(({**terms, zq: -low}, 0, np.inf))
            if np.isfinite(high):
                self.rows.append(({**terms, zq: big}, -np.inf, high + big))
        self.rows.append(({zq: 1.0 for zq in z}, 1, np.inf))
        self.choices.append((i, [(zq, q, *side) for zq, side in zip(z, sides, strict=True)]))

    def _rule(self, i: int, reason: str | None, limit: int) -> None:
        """What the published suppression reason says of cell i (None: a published cell
        taken as unknown, for the baseline where nothing is published)."""
        primary = reason == PRIMARY
        small, zero, large = (1.0, limit - 1.0), (0.0, 0.0), (float(limit), np.inf)
        n = int(self.col[Q_NUMERATOR][i])
        big_n = float(self.highs[n]) + limit
        if Q_DENOMINATOR not in self.col:  # a rate: its denominator is public
            if primary:
                self._within({n: 1.0}, *small)
            else:
                self._either(i, Q_NUMERATOR, {n: 1.0}, [zero, large], big_n)
            return
        d = int(self.col[Q_DENOMINATOR][i])
        big_d = float(self.highs[d]) + limit
        self.rows.append(({d: 1.0, n: -1.0}, 0, np.inf))  # numerator at most denominator
        terms = {Q_NUMERATOR: {n: 1.0}, Q_DENOMINATOR: {d: 1.0}, Q_COMPLEMENT: {d: 1.0, n: -1.0}}
        big = {Q_NUMERATOR: big_n, Q_DENOMINATOR: big_d, Q_COMPLEMENT: big_d}
        if primary:  # numerator, denominator or d - n is 1..limit-1: a binary per count
            z = []
            for q in terms:
                zq = self._binary()
                self.rows.append(({**terms[q], zq: -1.0}, 0, np.inf))
                self.rows.append(({**terms[q], zq: big[q]}, -np.inf, small[1] + big[q]))
                z.append((zq, q, *small))
            self.rows.append(({zq: 1.0 for zq, *_ in z}, 1, np.inf))
            self.choices.append((i, z))
            return
        if reason == COMPLEMENTARY:  # never 0/0, so the denominator is not small
            self._within({d: 1.0}, *large)
        else:
            self._either(i, Q_DENOMINATOR, {d: 1.0}, [zero, large], big_d)
        for q in (Q_NUMERATOR, Q_COMPLEMENT):
            self._either(i, q, terms[q], [zero, large], big[q])

    def at(self, point: dict[str, np.ndarray], free: np.ndarray | None = None) -> _Sides:
        """The program with every either-or of the cells not `free` fixed to the side
        `point` is on (the first side that holds it), its binaries taken out."""
        fixed = np.zeros(self.n_vars, dtype=bool)
        x0 = np.zeros(self.n_vars)
        for i, sides in self.choices:
            if free is not None and free[i]:
                continue
            chosen = next(zq for zq, q, low, high in sides if low <= point[q][i] <= high)
            for zq, *_ in sides:
                fixed[zq], x0[zq] = True, float(zq == chosen)
        keep = np.flatnonzero(~fixed)
        a = self.constraints.A
        shift = a[:, fixed] @ x0[fixed]
        sub = a[:, keep].tocsr()
        used = np.diff(sub.indptr) > 0  # rows left with no variable hold by construction
        return _Sides(
            keep, x0,
            LinearConstraint(sub[used], (self.constraints.lb - shift)[used],
                             (self.constraints.ub - shift)[used]),
            Bounds(self.lows[keep], self.highs[keep]),
            lp=bool(fixed.sum() == self.n_vars - len(self.cells) * len(self.col)),
        )  # fmt: skip

    def value(self, x: np.ndarray, q: str) -> np.ndarray:
        if q == Q_COMPLEMENT:
            return x[self.col[Q_DENOMINATOR]] - x[self.col[Q_NUMERATOR]]
        return x[self.col[q]]

    def objective(self, q: str, sign: float, which: np.ndarray | None = None) -> np.ndarray:
        c = np.zeros(self.n_vars)
        pick = np.arange(len(self.cells)) if which is None else which
        if q == Q_COMPLEMENT:
            c[self.col[Q_DENOMINATOR][pick]] += sign
            c[self.col[Q_NUMERATOR][pick]] -= sign
        else:
            c[self.col[q][pick]] += sign
        return c

    def feasible_with(
        self, q: str, i: int, low: float, high: float, sides: _Sides | None = None,
        seconds: float = SOLVE_SECONDS, push: bool = False,
    ) -> tuple[np.ndarray | None, bool]:  # fmt: skip
        """A point whose count q of cell i lies in [low, high], if there is one, and
        whether the solver settled the question (a point, or proof there is none).
        `push` aims the search at the interval's far side: its first point then
        usually lies well inside."""
        sides = sides or self.whole
        c = self.objective(q, 1.0, np.array([i]))[sides.keep]
        row = LinearConstraint(c[np.newaxis, :], low, high)
        goal, options = np.zeros(len(sides.keep)), {"time_limit": seconds}
        if push:  # aim at the far side, and stop at the first point found
            goal, options["mip_rel_gap"] = (c if high < np.inf else -c), np.inf
        res = milp(goal, integrality=np.ones(len(sides.keep)), bounds=sides.bounds,
                   constraints=[sides.constraints, row], options=options)  # fmt: skip
        return sides.point(res.x), res.status in (0, 2)

    def solve(self, c: np.ndarray, sides: _Sides | None = None,
              seconds: float = SOLVE_SECONDS) -> tuple[np.ndarray | None, bool]:  # fmt: skip
        """A feasible integer point at the optimum (or the best found), and whether
        proved; with every side fixed the LP first, as it is often integral."""
        options = {"mip_rel_gap": 0.0, "time_limit": seconds}
        sides = sides or self.whole
        c = c[sides.keep]
        if sides.lp:
            x, ok = sides.simplex().minimise(c, seconds)
            if x is not None and np.allclose(x, np.round(x), atol=1e-7):
                return sides.point(x), ok
        res = milp(c, integrality=np.ones(len(sides.keep)), bounds=sides.bounds,
                   constraints=sides.constraints, options=options)  # fmt: skip
        return sides.point(res.x), res.x is not None and res.status == 0


@dataclass
class _Sides:
    """A program with some binaries fixed and taken out: the columns kept, the values
    of the rest, and what is left to solve."""

    keep: np.ndarray
    fixed: np.ndarray  # every column's value where fixed (ignored where kept)
    constraints: LinearConstraint
    bounds: Bounds
    lp: bool  # no binary left
    _simplex: _Simplex | None = None

    def simplex(self) -> _Simplex:
        if self._simplex is None:
            self._simplex = _Simplex(self.constraints, self.bounds)
        return self._simplex

    def point(self, x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        out = self.fixed.copy()
        out[self.keep] = np.round(x)
        return out


class _Simplex:
    """One LP kept loaded in HiGHS, solved for objective after objective: primal simplex
    restarts from the last optimal basis, still feasible, so a new objective takes a few
    pivots where a fresh solve (scipy's milp) presolves and starts over."""

    def __init__(self, constraints: LinearConstraint, bounds: Bounds) -> None:
        a = sp.csc_matrix(constraints.A)
        lp = highspy.HighsLp()
        lp.num_row_, lp.num_col_ = a.shape
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = np.zeros(a.shape[1]), bounds.lb, bounds.ub
        lp.row_lower_, lp.row_upper_ = constraints.lb, constraints.ub
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
        self.highs = highspy.Highs()
        for option, value in (("output_flag", False), ("presolve", "off"),
                              ("simplex_strategy", PRIMAL_SIMPLEX)):  # fmt: skip
            self.highs.setOptionValue(option, value)
        self.highs.passModel(lp)
        self.columns = np.arange(a.shape[1], dtype=np.int32)

    def minimise(self, c: np.ndarray, seconds: float) -> tuple[np.ndarray | None, bool]:
        """The optimum's point (None if none was reached) and whether it is proved."""
        self.highs.setOptionValue("time_limit", seconds)
        self.highs.changeColsCost(len(self.columns), self.columns, c)
        self.highs.run()
        if self.highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None, False
        return np.asarray(self.highs.getSolution().col_value), True


def _groups(table: Linked, hidden: np.ndarray) -> Iterator[np.ndarray]:
    """Suppressed cells that share a line, transitively: each is one program."""
    cells = np.flatnonzero(hidden)
    if not len(cells):
        return
    member = sp.csr_matrix(table.parts.toarray() + _total_matrix(table))[:, cells]
    member.data[:] = 1.0
    adjacency = (member.T @ member).tocsr()
    _, labels = connected_components(adjacency, directed=False)
    for label in np.unique(labels):
        yield cells[labels == label]


def _total_matrix(table: Linked) -> np.ndarray:
    m = np.zeros((len(table.total), table.size))
    m[np.arange(len(table.total)), table.total] = 1.0
    return m


@dataclass
class Seen:
    """Per count of every cell, the lowest and highest values of the feasible points
    found, starting from the truth, and the counts exempt as the rule alone narrows
    them as much. Kept across the protection's rounds: a point stays feasible when
    more cells are suppressed (with their true values), and an exempt count stays
    exempt (its range can only widen, up to what the rule alone allows, which it
    already had), so what one round found need not be found again."""

    low: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    exempt: dict[str, np.ndarray]

    @classmethod
    def truth(cls, table: Linked) -> Seen:
        counts = table.truth_at()
        return cls({q: v.copy() for q, v in counts.items()}, counts,
                   {q: np.zeros(table.size, dtype=bool) for q in counts})  # fmt: skip


def audit_table(table: Linked, hidden: np.ndarray, status: np.ndarray, limit: int,
                seen: Seen | None = None) -> list[Finding]:  # fmt: skip
    """The suppressed counts an attacker pins down or narrows, with the range found.

    Ranges grow from feasible points only (so a count passes only when two solutions
    prove it): the extremes of each count summed over the counts still in doubt, round
    after round, then one count at a time for the few left. With `seen` (the
    pipeline's own check) the true values, and the points it holds, count too, and a
    count that the cheap questions leave in doubt is a finding without optimising its
    ends to proof: the protection then suppresses more where the attacker might not
    narrow anything, never less (on the sample data at 5,000 and 1,000,000 persons it
    decides exactly as with proof, in a fraction of the time). A finding's range is
    then the one found so far, inside the true range, which keeps the rule-alone
    exemption sound: no point of the baseline beyond it means no point at all.
    """
    findings: list[Finding] = []
    ub = _upper_bounds(table, hidden)
    for cells in _groups(table, hidden):
        findings += _audit_group(table, hidden, cells, status, limit, ub, seen)
    baseline = _Baseline(table, status, limit, truth=seen is not None)
    kept = []
    for f in findings:
        if not baseline.inherent(f):
            kept.append(f)
        elif seen is not None:
            seen.exempt[f.count][f.cell] = True
    return kept


def _audit_group(table: Linked, hidden: np.ndarray, cells: np.ndarray, status: np.ndarray,
                 limit: int, ub: dict[str, np.ndarray],
                 seen: Seen | None) -> list[Finding]:  # fmt: skip
    full = _Program(table, hidden, cells, status, limit, ub)
    quantities = full.quantities
    if seen is not None:
        anchor = table.truth_at(cells)
    else:
        x, _ = full.solve(np.zeros(full.n_vars))
        if x is None:
            raise ValueError(f"{table.key}: no counts fit what is published and the rule")
        anchor = {q: full.value(x, q) for q in quantities}
    width = {q: np.full(len(cells), 2) for q in quantities}
    width[Q_NUMERATOR] = np.where(status[cells] == PRIMARY, max(limit - 1, 2), 2)
    if seen is None:
        low = {q: anchor[q].copy() for q in quantities}
        high = {q: anchor[q].copy() for q in quantities}
    else:  # from the truth and the earlier rounds
        low = {q: seen.low[q][cells] for q in quantities}
        high = {q: seen.high[q][cells] for q in quantities}

    def found(x: np.ndarray) -> dict[str, np.ndarray]:
        point = {q: full.value(x, q) for q in quantities}
        for q in quantities:
            low[q], high[q] = np.minimum(low[q], point[q]), np.maximum(high[q], point[q])
        return point

    exempt = {q: np.zeros(len(cells), dtype=bool) if seen is None else seen.exempt[q][cells]
              for q in quantities}  # fmt: skip

    def doubtful(q: str) -> np.ndarray:
        return (high[q] - low[q] + 1 < width[q]) & ~exempt[q]

    def explore(point: dict[str, np.ndarray], each: bool) -> None:
        """LPs on the sides `point` is on: sums of the counts in doubt, then (`each`)
        every count still in doubt alone."""
        sides = full.at(point)
        for q in quantities:
            progress = True
            while progress and doubtful(q).any():
                before = int(doubtful(q).sum())
                for sign in (1.0, -1.0):
                    c = full.objective(q, sign, np.flatnonzero(doubtful(q)))
                    x, _ = full.solve(c, sides)
                    if x is not None:
                        found(x)
                progress = int(doubtful(q).sum()) < before
            for i in np.flatnonzero(doubtful(q)) if each else []:
                for sign in (-1.0, 1.0):
                    if doubtful(q)[i]:
                        c = full.objective(q, sign, np.array([i]))
                        x, _ = full.solve(c, sides)
                        if x is not None:
                            found(x)

    def reach(q: str, i: int, sides: _Sides) -> None:
        """Ask for a point far enough up, then down, to give count q of cell i its
        width: the first point found settles most counts, where optimising an end to
        proof can take long. A heuristic, REACH_SECONDS a question."""
        for up in (True, False):
            if doubtful(q)[i]:
                w = width[q][i] - 1
                bounds = (low[q][i] + w, np.inf) if up else (-np.inf, high[q][i] - w)
                x, _ = full.feasible_with(q, i, *bounds, sides, REACH_SECONDS, push=True)
                if x is not None:
                    explore(found(x), each=False)

    explore(anchor, each=True)
    one_line, two_lines = _neighbours(table, cells)
    alone = np.eye(len(cells), dtype=bool)
    findings = []
    for q in quantities:
        # Free the cell's own either-ors, then those of the cells on its lines, within
        # two lines, everything: each a larger program, asked only what is left.
        for free in (alone, one_line, two_lines, None):
            for i in np.flatnonzero(doubtful(q)):
                reach(q, i, full.whole if free is None else full.at(anchor, free[i]))
        for i in np.flatnonzero(doubtful(q)):  # still in doubt: each end, to proof
            if seen is not None:  # the protection suppresses more rather than prove
                rng = Range(int(low[q][i]), int(high[q][i]), exact=False)
                findings.append(Finding(int(cells[i]), q, rng, bool(status[cells[i]] == PRIMARY)))
                continue
            ends, near = [], full.at(anchor, two_lines[i])
            for sign in (-1.0, 1.0):  # the highest, then the lowest
                x, ok = None, False
                for sides in (near, full.whole):
                    if not doubtful(q)[i]:
                        break
                    x, ok = full.solve(full.objective(q, sign, np.array([i])), sides)
                    if x is not None:
                        explore(found(x), each=False)  # new sides
                ends.append(sides is full.whole and ok and x is not None)
            if doubtful(q)[i]:
                rng = Range(int(low[q][i]), int(high[q][i]), all(ends))
                findings.append(Finding(int(cells[i]), q, rng, bool(status[cells[i]] == PRIMARY)))
    if seen is not None:  # kept for the next round
        for q in quantities:
            seen.low[q][cells], seen.high[q][cells] = low[q], high[q]
    return findings


def _neighbours(table: Linked, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cells x cells: suppressed cells on a line together, and within two lines."""
    member = (table.parts.toarray() + _total_matrix(table))[:, cells] > 0
    one = (member.T.astype(int) @ member.astype(int)) > 0
    return one, (one.astype(int) @ one.astype(int)) > 0


class _Baseline:
    """The attacker's program with every cell of the indicator-year suppressed (only
    the reasons published): what the rule alone says. Built on first use. With
    `truth` (the pipeline's own check) the true values, a point of it, anchor cheap
    questions first."""

    def __init__(self, table: Linked, status: np.ndarray, limit: int,
                 truth: bool = False) -> None:  # fmt: skip
        self.table, self.status, self.limit, self.truth = table, status, limit, truth
        self.programs: list[_Program] = []
        self.near: dict[int, tuple[dict[str, np.ndarray], np.ndarray]] = {}

    def program(self, cell: int) -> tuple[_Program, int]:
        found = [p for p in self.programs if cell in p.cells]
        if not found:
            everything = np.ones(self.table.size, dtype=bool)
            ub = _upper_bounds(self.table, everything)
            cells = next(g for g in _groups(self.table, everything) if cell in g)
            found = [_Program(self.table, everything, cells, self.status, self.limit, ub)]
            self.programs += found
        return found[0], int(np.flatnonzero(found[0].cells == cell)[0])

    def _near(self, program: _Program, i: int) -> list[_Sides]:
        """Programs of the truth's sides with cell i, then its lines, freed."""
        if not self.truth:
            return []
        if id(program) not in self.near:  # the truth and the lines, once a program
            one_line, _ = _neighbours(self.table, program.cells)
            self.near[id(program)] = (self.table.truth_at(program.cells), one_line)
        anchor, one_line = self.near[id(program)]
        return [program.at(anchor, np.arange(len(program.cells)) == i),
                program.at(anchor, one_line[i])]  # fmt: skip

    def inherent(self, finding: Finding) -> bool:
        """The rule alone narrows the count as much: no point of the baseline lies
        beyond the finding's range. So a statewide count below the limit bounds its
        counties whatever is published. Unsettled (the solver's time ran out), it is
        not: the finding stands."""
        program, i = self.program(finding.cell)
        near = self._near(program, i)
        # The finding's ends are values of feasible points, and points of the release
        # are points of the baseline too: its range is no wider exactly when no point
        # lies beyond them. Two feasibility questions, usually settled by the first
        # point found (near the truth, where it is known, then anywhere).
        for low, high in ((finding.range.high + 1, np.inf), (-np.inf, finding.range.low - 1)):
            q = finding.count
            if any(program.feasible_with(q, i, low, high, sides, REACH_SECONDS)[0] is not None
                   for sides in near):  # fmt: skip
                return False
            seconds = PROTECT_PROOF_SECONDS if self.truth else SOLVE_SECONDS
            x, decided = program.feasible_with(q, i, low, high, seconds=seconds)
            if x is not None or not decided:
                return False
        return True


def inherent(table: Linked, finding: Finding, status: np.ndarray, limit: int) -> bool:
    """`_Baseline.inherent` for one finding."""
    return _Baseline(table, status, limit).inherent(finding)


# ---------------------------------------------------------------- protection


def protect_table(table: Linked, limit: int) -> np.ndarray:
    """The suppression status of each cell (None, primary or complementary)."""
    small = primary_mask(table, limit)
    is_primary = np.logical_or.reduce(list(small.values()))
    hidden = is_primary.copy()
    status = np.where(is_primary, PRIMARY, None).astype(object)
    seen = Seen.truth(table)
    while True:
        _apply_line_rule(table, hidden, small, limit)
        status[hidden & (status == None)] = COMPLEMENTARY  # noqa: E711
        findings = audit_table(table, hidden, status, limit, seen)
        if not findings:
            return status
        if not _fix(table, hidden, findings, limit):
            rest = ~hidden & ~_zero_denominator(table)
            hidden |= rest  # nothing narrower protects it: publish none of it
            status[rest] = COMPLEMENTARY
            return status


def _fix(table: Linked, hidden: np.ndarray, findings: list[Finding], limit: int) -> bool:
    """One more complementary cell beside each cell the attacker narrowed."""
    need = 2 * limit - 1
    counts = table.counts()
    touched: set[int] = set()
    added = False
    for f in findings:
        lines = [int(li) for li in table.cell_lines[f.cell] if int(li) not in touched]
        if not lines:
            continue
        q = f.count
        held = [counts[q][table.line_cells(li)][hidden[table.line_cells(li)]].sum() for li in lines]
        closed = [0 if hidden[table.total[li]] else 1 for li in lines]
        order = sorted(range(len(lines)), key=lambda j: (-closed[j], held[j], lines[j]))
        for j in order:
            cell = _pick(table, lines[j], hidden, {q: need - held[j]})
            if cell is not None:
                hidden[cell] = True
                touched.add(lines[j])
                added = True
                break
    return added


def protect(
    county: pl.DataFrame, groups: pl.DataFrame, limit: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`suppression` for every cell of a county table and its breakdowns (all years)."""
    decided = []
    for table in linked(county, groups):
        status = protect_table(table, limit)
        decided.append(
            table.cells.with_columns(
                indicator_id=pl.lit(table.key[0]),
                year=pl.lit(table.key[1], dtype=pl.Int64),
                suppression=pl.Series(status.tolist(), dtype=pl.String),
            )
        )
    flags = pl.concat(decided) if decided else pl.DataFrame(
        schema={**dict.fromkeys(CELL, pl.String), "indicator_id": pl.String,
                "year": pl.Int64, "suppression": pl.String}
    )  # fmt: skip
    county_flags = flags.filter(pl.col("group_by") == TOTAL).drop("group_by", "group_value")
    group_flags = flags.filter(pl.col("group_by") != TOTAL)
    on = [*KEYS, "county_fips"]
    return (
        county.drop("suppression", strict=False).join(
            county_flags, on=on, how="left", maintain_order="left"
        ),
        groups.drop("suppression", strict=False).join(
            group_flags, on=[*on, "group_by", "group_value"], how="left", maintain_order="left"
        ),
    )


# ---------------------------------------------------------------- the audit of a release


AUDIT_SCHEMA = {
    "indicator_id": pl.String, "year": pl.Int64, "county_fips": pl.String,
    "group_by": pl.String, "group_value": pl.String, "suppression": pl.String,
    "count": pl.String, "low": pl.Int64, "high": pl.Int64, "exact": pl.Boolean,
    "recovered": pl.Boolean,
}  # fmt: skip


@dataclass(frozen=True)
class Audit:
    """What an attacker learns from a release: per indicator-year totals and failures."""

    summary: pl.DataFrame  # indicator_id, year, suppressed, primary, recovered, narrowed
    findings: pl.DataFrame  # AUDIT_SCHEMA, one row per count pinned or narrowed

    @property
    def passed(self) -> bool:
        return self.findings.height == 0


def audit(county: pl.DataFrame, groups: pl.DataFrame, limit: int) -> Audit:
    """Play the attacker on published tables (suppressed cells null, `kind` joined)."""
    summary, found = [], []
    for table in linked(county, groups):
        status = table.status
        assert status is not None, "a release carries its suppression column"
        hidden = status != None  # noqa: E711
        findings = audit_table(table, hidden, status, limit)
        recovered = {f.cell for f in findings if f.range.values == 1}
        narrowed = {f.cell for f in findings} - recovered
        summary.append((*table.key, int(hidden.sum()), int((status == PRIMARY).sum()),
                        len(recovered), len(narrowed)))  # fmt: skip
        for f in findings:
            cell = (*table.key, *table.cells.row(f.cell), status[f.cell], f.count)
            found.append((*cell, f.range.low, f.range.high, f.range.exact, f.range.values == 1))
    summary_schema = {
        "indicator_id": pl.String, "year": pl.Int64, "suppressed": pl.Int64,
        "primary": pl.Int64, "recovered": pl.Int64, "narrowed": pl.Int64,
    }  # fmt: skip
    return Audit(
        pl.DataFrame(summary, schema=summary_schema, orient="row"),
        pl.DataFrame(found, schema=AUDIT_SCHEMA, orient="row"),
    )
