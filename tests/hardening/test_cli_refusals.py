"""Bad input to the `studio` command in a real subprocess: exit status 2, one message naming the
problem and the fix (no traceback), and not one byte or row changed in the store, adapters/ or
prompts/ (content hashes, tests/snapshots.py). A Hub token given to `studio adapters push`
appears nowhere: not in the output, the database or any file under STUDIO_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hardening.conftest import World, files_under, studio_cli
from tests.snapshots import assert_unchanged

REVIEWS = "studio/samples/reviews.csv"
TOKEN = "hf_hardeningSecretToken0123456789"


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("cli")
    home = base / "home"
    world = World(home, home / "adapters", base / "library")
    # The first command creates and migrates the store; the cases then must not change it.
    from tests.tuning.test_adapters import fake_folder

    ready = studio_cli("runs", "list", home=home, env={"STUDIO_ADAPTERS_DIR": str(world.adapters)})
    assert ready.returncode == 0, ready.stderr
    fake_folder(world.adapters)  # an adapter folder the cases must leave alone (and one to push)
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


# name -> (argv for a tmp folder, environment, what the message says is wrong, and its fix)
CASES = {
    "latin-1": (
        lambda tmp: _compare("--data", _write(tmp / "l1.csv", "text,label\ncafé,positive\n")),
        {},
        ["l1.csv: line 2", "not valid UTF-8"],
        ["Fix: re-save the file as UTF-8"],
    ),
    "upload-limit": (
        lambda tmp: _compare("--data", _sparse_csv(tmp / "big.csv", 3 * 2**20)),
        {"STUDIO_MAX_UPLOAD_MB": "1"},
        ["big.csv", "3.0 MiB", "above the limit of 1.0 MiB"],
        ["Fix: use a smaller file", "STUDIO_MAX_UPLOAD_MB"],
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
        ["../../../../etc/passwd", "not a template file"],
        ["Fix: give a template name from the library or the path of a .yaml template file"],
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
        ["--output", "adapters are written under the adapters folder", "'../../escaped'"],
        ["give adapters/NAME or NAME"],
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
        ["Invalid tuning settings"],
        [
            "training.learning_rate: Input should be greater than 0",
            "lora.r: Input should be greater than or equal to 1",
        ],
    ),
    "bad-setting-variable": (
        lambda tmp: ["runs", "list"],
        {"STUDIO_MAX_UPLOAD_MB": "0"},
        ["Invalid studio settings", "STUDIO_MAX_UPLOAD_MB"],
        ["Input should be greater than or equal to 1", "Fix or unset these variables"],
    ),
    "push-with-token-offline": (
        lambda tmp: ["adapters", "push", "demo", "--repo", "me/demo", "--token", TOKEN],
        {},
        ["Hub cannot be reached", "nothing was uploaded"],
        ["Fix: go online and retry", "copy the adapter folder"],
    ),
}


def _write(path: Path, text: str) -> str:
    path.write_bytes(text.encode("latin-1"))
    return str(path)


@pytest.mark.parametrize("name", list(CASES))
def test_cli_refuses_with_status_2_and_changes_nothing(
    cli_world: World, tmp_path: Path, name: str
) -> None:
    args, env, problem, fix = CASES[name]
    before = cli_world.snapshot()
    result = studio_cli(
        *args(tmp_path),
        home=cli_world.home,
        env={"STUDIO_ADAPTERS_DIR": str(cli_world.adapters), **env},
    )
    assert result.returncode == 2, (name, result.stdout[-1000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1
    for needle in problem:
        assert needle in result.stderr, (name, "the problem", needle, result.stderr)
    for needle in fix:
        assert needle in result.stderr, (name, "the fix", needle, result.stderr)
    assert_unchanged(before, cli_world.snapshot(), f"`studio` refusing {name}")
    assert TOKEN not in result.stdout + result.stderr


def test_the_token_is_in_no_file_of_the_studio(cli_world: World) -> None:
    """After the push above (or on its own), no file under STUDIO_HOME holds the token."""
    env = {"STUDIO_ADAPTERS_DIR": str(cli_world.adapters), "HF_TOKEN": TOKEN}
    result = studio_cli(
        "adapters", "push", "demo", "--repo", "me/demo", home=cli_world.home, env=env
    )
    assert result.returncode == 2 and TOKEN not in result.stdout + result.stderr
    assert "Hub cannot be reached" in result.stderr and "Fix: go online" in result.stderr
    leaks = [
        name
        for name in files_under(cli_world.home)
        if TOKEN.encode() in (cli_world.home / name).read_bytes()
    ]
    assert leaks == []
    assert files_under(cli_world.home), "the studio wrote nothing at all: nothing was checked"
    assert (ROOT / "studio" / "prompts").is_dir()
