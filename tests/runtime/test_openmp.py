import pytest

from studio.runtime.openmp import use_passive_waits, with_passive_waits
from studio.settings import load_settings
from studio.tuning.jobs import worker_environment


def test_the_studio_sets_passive_waits_unless_the_user_chose() -> None:
    assert with_passive_waits({"PATH": "/bin"}) == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    assert with_passive_waits({"OMP_WAIT_POLICY": "ACTIVE"}) == {"OMP_WAIT_POLICY": "ACTIVE"}
    assert with_passive_waits({"GOMP_SPINCOUNT": "300000"}) == {"GOMP_SPINCOUNT": "300000"}
    env = {"HOME": "/h"}
    use_passive_waits(env)
    assert env == {"HOME": "/h", "OMP_WAIT_POLICY": "PASSIVE"}


def test_training_workers_start_with_the_policy(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(home=tmp_path, offline=True)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert worker_environment(settings)["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert worker_environment(settings)["OMP_WAIT_POLICY"] == "active"
