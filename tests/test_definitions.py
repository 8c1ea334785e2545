"""The Dagster code location loads and tells the data's journey truthfully."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs

LANDING_ROOTS = {
    "landing_spells", "landing_wages", "landing_services", "landing_client_surveys",
    "landing_partnership_surveys", "landing_reference",
}  # fmt: skip


def graph() -> dg.AssetGraph:
    return defs.resolve_asset_graph()


def test_definitions_load_with_every_contract_table():
    keys = {k.to_user_string() for k in graph().get_all_asset_keys()}
    contract = {
        "load_ledger", "quarantine", "record_links", "person_key_merges", "service_spells",
        "outcome_indicators", "outcome_indicators_by_group", "partnership_maturity",
        "partnership_impact",
    }  # fmt: skip
    assert contract | LANDING_ROOTS <= keys
    dg.Definitions.validate_loadable(defs)


def test_landing_files_are_the_roots_and_lead_to_the_indicators():
    g = graph()
    roots = {k.to_user_string() for k in g.get_all_asset_keys() if not g.get(k).parent_keys}
    # besides the landing files, only what is made from the code's declarations
    assert roots == LANDING_ROOTS | {"data_dictionary"}
    seen, todo = set(), [dg.AssetKey("outcome_indicators")]
    while todo:
        key = todo.pop()
        for parent in g.get(key).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    names = {k.to_user_string() for k in seen}
    assert {"landing_spells", "staged_spells", "record_links", "linked_spells"} <= names


def test_every_materialized_asset_is_documented_owned_and_versioned():
    g = graph()
    for key in g.get_all_asset_keys():
        node = g.get(key)
        if not node.is_materializable:
            continue
        name = key.to_user_string()
        assert node.group_name and node.group_name != "default", name
        assert node.description, name
        assert node.owners, name
        assert node.kinds, name
        assert node.code_version, name


def test_indicators_read_the_next_year_and_linkage_reads_earlier_years():
    g = graph()
    node = g.get(dg.AssetKey("indicator_panel"))
    mapping = node.partition_mappings[dg.AssetKey("linked_spells")]
    assert isinstance(mapping, dg.TimeWindowPartitionMapping)
    assert mapping.end_offset == 1 and mapping.start_offset < -10
    link = g.get(dg.AssetKey("record_links")).partition_mappings[dg.AssetKey("record_links")]
    assert link.end_offset == -1
