"""What every asset shares: owners, kinds, the year of a partition."""

import dagster as dg

OWNERS = ["team:data-engineering"]
CODE_VERSION = "1"


def partition_year(context: dg.AssetExecutionContext) -> int:
    return int(context.partition_key)
