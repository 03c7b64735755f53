"""`studio serve` (and `python app.py`) pauses the cyclic garbage collector while it imports
gradio and builds the UI, for a faster first page, and always turns it back on: before the server
serves requests (with the UI frozen out of its full passes), and when the start fails first. A
server left without it would never free the reference cycles that requests leave behind."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli.main import build_parser
from studio.cli.serve import run_serve
from studio.settings import SettingsError, get_settings, load_settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    yield
    gc.enable()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_collector_is_on_again_once_the_studio_serves(
    tmp_path: Path, collector_restored: None
) -> None:
    from studio.services import create_services  # lazy: imports gradio's neighbours
    from studio.ui import launch  # lazy: gradio takes seconds to import

    services = create_services(load_settings(home=tmp_path, offline=True))
    try:
        gc.unfreeze()
        gc.disable()  # as run_serve does before building the UI
        app = launch(services, port=free_port(), prevent_thread_lock=True)
        try:
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0  # the UI is kept out of full collections
        finally:
            app.close()
    finally:
        services.close()


def test_a_start_that_fails_turns_the_collector_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_restored: None
) -> None:
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where STUDIO_HOME should be a folder")
    monkeypatch.setenv("STUDIO_HOME", str(not_a_folder))
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="STUDIO_HOME"):
            run_serve(build_parser().parse_args(["serve", "--port", str(free_port())]))
    finally:
        get_settings.cache_clear()
    assert gc.isenabled()
