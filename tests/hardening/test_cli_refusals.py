"""Bad input to the `studio` command in a real subprocess: exit status 2, one message naming the
problem and the fix (no traceback), and nothing written to the store, adapters/ or prompts/.
A Hub token given to `studio adapters push` appears nowhere: not in the output, the database or
any file under STUDIO_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hardening.conftest import World, files_under, studio_cli

REVIEWS = "studio/samples/reviews.csv"
TOKEN = "hf_hardeningSecretToken0123456789"


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("cli")
    home = base / "home"
    world = World(home, home / "adapters", base / "library")
    # The first command creates and migrates the store; the cases then must not change it.
    ready = studio_cli("runs", "list", home=home, env={"STUDIO_ADAPTERS_DIR": str(world.adapters)})
    assert ready.returncode == 0, ready.stderr
    return world


def _sparse_csv(path: Path, size: int) -> str:
    with path.open("wb") as handle:
        handle.write(b"text,label\n")
        handle.truncate(size)
    return str(path)


def _compare(*extra: str) -> list[str]:
    return [
        "compare",
        "--template",
        "reviews-sentiment",
        "--model",
        "smollm2-135m-instruct",
        "--limit",
        "2",
        *extra,
    ]


CASES = {
    "latin-1": (
        lambda tmp: _compare("--data", _write(tmp / "l1.csv", "text,label\ncafé,positive\n")),
        {},
        ["not valid UTF-8", "Fix: re-save the file as UTF-8"],
    ),
    "upload-limit": (
        lambda tmp: _compare("--data", _sparse_csv(tmp / "big.csv", 3 * 2**20)),
        {"STUDIO_MAX_UPLOAD_MB": "1"},
        ["3.0 MiB", "above the limit of 1.0 MiB", "STUDIO_MAX_UPLOAD_MB"],
    ),
    "template-file-traversal": (
        lambda tmp: [
            "compare",
            "--data",
            REVIEWS,
            "--template",
            "../../../../etc/passwd",
            "--model",
            "smollm2-135m-instruct",
        ],
        {},
        ["not a template file", "Fix:"],
    ),
    "tune-name-traversal": (
        lambda tmp: [
            "tune",
            "--data",
            REVIEWS,
            "--template",
            "reviews-sentiment",
            "--output",
            "../../escaped",
            "--max-steps",
            "1",
            "--check",
        ],
        {},
        ["--output", "adapters/NAME"],
    ),
    "tune-bad-hyperparameters": (
        lambda tmp: [
            "tune",
            "--data",
            REVIEWS,
            "--template",
            "reviews-sentiment",
            "--output",
            "ok",
            "--lr",
            "-1",
            "--lora-r",
            "0",
            "--check",
        ],
        {},
        ["training.learning_rate", "lora.r"],
    ),
    "bad-setting-variable": (
        lambda tmp: ["runs", "list"],
        {"STUDIO_MAX_UPLOAD_MB": "0"},
        ["STUDIO_MAX_UPLOAD_MB", "Fix or unset"],
    ),
    "push-with-token-offline": (
        lambda tmp: ["adapters", "push", "demo", "--repo", "me/demo", "--token", TOKEN],
        {},
        ["cannot be reached", "Fix:"],
    ),
}


def _write(path: Path, text: str) -> str:
    path.write_bytes(text.encode("latin-1"))
    return str(path)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_refuses_with_status_2_and_changes_nothing(
    cli_world: World, tmp_path: Path, name: str
) -> None:
    from tests.tuning.test_adapters import fake_folder

    if name == "push-with-token-offline" and not (cli_world.adapters / "demo").exists():
        fake_folder(cli_world.adapters)  # an adapter folder to push (not a trained one)
    args, env, needles = CASES[name]
    before = cli_world.snapshot()
    result = studio_cli(
        *args(tmp_path),
        home=cli_world.home,
        env={"STUDIO_ADAPTERS_DIR": str(cli_world.adapters), **env},
    )
    assert result.returncode == 2, (name, result.stdout[-1000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1
    for needle in needles:
        assert needle in result.stderr, (name, needle, result.stderr)
    assert cli_world.snapshot() == before
    assert TOKEN not in result.stdout + result.stderr


def test_the_token_is_in_no_file_of_the_studio(cli_world: World) -> None:
    """After the push above (or on its own), no file under STUDIO_HOME holds the token."""
    from tests.tuning.test_adapters import fake_folder

    if not (cli_world.adapters / "demo").exists():
        fake_folder(cli_world.adapters)
    env = {"STUDIO_ADAPTERS_DIR": str(cli_world.adapters), "HF_TOKEN": TOKEN}
    result = studio_cli(
        "adapters", "push", "demo", "--repo", "me/demo", home=cli_world.home, env=env
    )
    assert result.returncode == 2 and TOKEN not in result.stdout + result.stderr
    leaks = [
        name
        for name in files_under(cli_world.home)
        if TOKEN.encode() in (cli_world.home / name).read_bytes()
    ]
    assert leaks == []
    assert files_under(cli_world.home), "the studio wrote nothing at all: nothing was checked"
    assert (ROOT / "studio" / "prompts").is_dir()
