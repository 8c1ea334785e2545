"""Yearly partitions: the reporting year a landing file belongs to."""

import warnings

import dagster as dg

from outcomes.config import FIRST_PARTITION_YEAR

yearly = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1 *",
    start=str(FIRST_PARTITION_YEAR),
    fmt="%Y",
    end_offset=1,  # up to the current year, loadable while it runs
)


def partition_years() -> range:
    """The reporting years a landing file may have: 2000 to the current year."""
    return range(FIRST_PARTITION_YEAR, int(yearly.get_last_partition_key() or 0) + 1)


# allow_nonexistent_upstream_partitions is beta but is what "every earlier year" needs
warnings.filterwarnings("ignore", category=dg.BetaWarning, module=__name__)

# "every earlier year": partitions begin in FIRST_PARTITION_YEAR, so this reaches all of them
_ALL_EARLIER = -100


def years_up_to(offset_end: int = 0) -> dg.TimeWindowPartitionMapping:
    """Every loaded year before this one, up to this year plus `offset_end`."""
    return dg.TimeWindowPartitionMapping(
        start_offset=_ALL_EARLIER, end_offset=offset_end, allow_nonexistent_upstream_partitions=True
    )


def earlier_years() -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(
        start_offset=_ALL_EARLIER, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )


def this_and_next_year() -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(
        start_offset=0, end_offset=1, allow_nonexistent_upstream_partitions=True
    )


def ranges(years: list[int]) -> list[list[int]]:
    """The years as unbroken runs of consecutive years (a single run covers one)."""
    out: list[list[int]] = []
    for y in sorted(years):
        if out and out[-1][-1] == y - 1:
            out[-1].append(y)
        else:
            out.append([y])
    return out
