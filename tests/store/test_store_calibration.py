"""A configuration's contextual-calibration prior is kept in the store (SQLite and PostgreSQL),
read back with the run, and refused for a configuration that does not exist."""

from __future__ import annotations

import pytest

from studio.store import Store
from tests.store.conftest import RunFactory

CALIBRATION = {
    "inputs": ["N/A", "", "[MASK]"],
    "prompts": ["Review: N/A\nSentiment:", "Review: \nSentiment:", "Review: [MASK]\nSentiment:"],
    "logprobs": [[-0.2, -1.7], [-0.4, -1.1], [-0.3, -1.4]],
    "prior": [0.71, 0.29],
}


def test_calibration_is_kept_per_config_and_read_with_the_run(
    store: Store, make_run: RunFactory
) -> None:
    run = make_run()
    first, second = run.configs[0].id, run.configs[1].id
    assert store.config_calibration(first) is None
    store.set_config_calibration(first, CALIBRATION)
    assert store.config_calibration(first) == CALIBRATION
    assert store.config_calibration(second) is None
    reread = store.get_comparison_run(run.id)
    assert reread is not None
    assert [c.calibration for c in reread.configs] == [CALIBRATION, None, None]


def test_calibrating_a_missing_config_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="no comparison config with id 999999"):
        store.set_config_calibration(999999, CALIBRATION)
