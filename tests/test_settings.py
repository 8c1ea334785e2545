"""Settings out of their range refuse the run before anything is written."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from outcomes.config import ENV_LINKAGE_KEY, ENV_MIN_CELL, Settings, SettingsError
from pipelines.cli import main

KEY = "a-test-linkage-key-that-is-long-enough-0123456789"


@pytest.mark.parametrize("min_cell", [1, 0, -3])
def test_a_suppression_limit_below_two_is_refused(min_cell: int):
    with pytest.raises(SettingsError, match=f"{ENV_MIN_CELL}={min_cell}.*smallest allowed is 2"):
        Settings(Path("landing"), Path("warehouse"), min_cell=min_cell)


def test_the_smallest_allowed_limit_is_two():
    assert Settings(Path("landing"), Path("warehouse"), min_cell=2).min_cell == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [("1", "would publish counts of 1 person"), ("eleven", "must be a whole number")],
)
def test_outcomes_run_refuses_the_setting_and_writes_nothing(
    value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    landing.mkdir()
    monkeypatch.setenv(ENV_LINKAGE_KEY, KEY)
    monkeypatch.setenv(ENV_MIN_CELL, value)
    result = CliRunner().invoke(
        main, ["run", "--landing-dir", str(landing), "--warehouse-dir", str(warehouse)]
    )
    assert result.exit_code == 1
    assert ENV_MIN_CELL in result.output and message in result.output
    assert not warehouse.exists()
