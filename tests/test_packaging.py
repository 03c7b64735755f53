"""`pip install .` (not editable) ships everything the studio reads from its own package: the
bundled template library, the sample data and configs, the migrations and the stylesheet."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "studio"


def _shipped_files() -> set[str]:
    """Every file under studio/ that the installed studio needs beside its Python modules."""
    wanted = [
        *PACKAGE.glob("prompts/*.yaml"),
        *PACKAGE.glob("samples/*"),
        *PACKAGE.glob("store/migrations/versions/*.py"),
        PACKAGE / "ui" / "studio.css",
    ]
    return {str(path.relative_to(ROOT)) for path in wanted if path.is_file()}


def test_the_wheel_holds_the_library_samples_migrations_and_stylesheet(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("instruct_studio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _shipped_files()
    assert len([n for n in expected if n.startswith("studio/prompts/")]) >= 10
    assert "studio/samples/reviews.csv" in expected
    assert expected - names == set()
    assert "studio/cli/main.py" in names and "studio/settings.py" in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]


def test_an_installed_copy_finds_its_templates_and_samples_and_keeps_adapters_out(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "wheel"), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import studio.settings as s, studio.templates as t, studio.quickstart.sample as q\n"
        "from pathlib import Path\n"
        "print(s.PACKAGE_DIR)\n"
        "print(len(t.list_templates()))\n"
        "print(Path(q.compare_config().data).is_file())\n"
        "print(s.load_settings(home=Path('home')).adapters_dir)\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    package_dir, templates, sample_found, adapters = out.stdout.split("\n")[:4]
    assert Path(package_dir) == site / "studio"  # the installed copy, not this checkout
    assert int(templates) == len(list(PACKAGE.glob("prompts/*.yaml")))
    assert sample_found == "True"
    assert not Path(adapters).is_relative_to(site)  # trained adapters never land in site-packages
