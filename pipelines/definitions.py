"""The Dagster code location: every asset of the journey, its jobs and its one resource."""

import dagster as dg

from assets import checks, ingest, integrate, link, validate
from assets import indicators as indicator_assets
from assets.common import IO_MANAGER
from assets.io import WarehouseIOManager
from assets.resources import OutcomesConfig
from pipelines import alerts, automation
from pipelines.jobs import RUN_ORDER


def build_definitions(config: OutcomesConfig) -> dg.Definitions:
    assets = [
        *ingest.landing.values(),
        ingest.landing_reference,
        ingest.reference,
        validate.staging,
        link.linkage,
        *integrate.integration,
        indicator_assets.indicators,
        indicator_assets.partnership_maturity,
        indicator_assets.partnership_impact,
        indicator_assets.data_dictionary_table,
    ]
    asset_checks = [*checks.staged_checks, *checks.reference_checks]
    return dg.Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[job for job, _ in RUN_ORDER],
        sensors=[
            *automation.sensors,
            alerts.failure_sensor(alerts.assets_by_op([*assets, *asset_checks])),
        ],
        schedules=automation.schedules,
        resources={
            "outcomes": config,
            IO_MANAGER: WarehouseIOManager(outcomes=config),
        },
    )


defs = build_definitions(OutcomesConfig.from_env())
