"""The Tune tab without a browser or a model: form values → TuneConfig, the check report and the
exact-string preview, the jobs views from hand-built records, and the timer's refresh."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from studio.datasets import Dataset
from studio.models.adapters import AdapterCard, AdapterInfo
from studio.models.errors import QuantizationError
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.store.records import MetricPoint, TuningRun
from studio.tuning.config import TuneConfig, TuneConfigError, flat_config
from studio.tuning.data import DataProblem, LengthStats, PreparedData, TrainExample, TuneDataError
from studio.tuning.jobs import LaunchCheck
from studio.tuning.memory import GIB, MemoryEstimate
from studio.ui.common.formatting import duration
from studio.ui.common.tuning_runs import can_stop, progress_html, progress_text
from studio.ui.tune.form import FORM_FIELDS, column_map, target_modules, tune_config
from studio.ui.tune.handlers import KEYS, TuneHandlers, pick_run
from studio.ui.tune.runs import (
    JOB_HEADERS,
    adapter_rows,
    can_resume,
    job_rows,
    metric_frame,
    run_markdown,
)
from studio.ui.tune.tab import build_tune_tab
from studio.ui.tune.views import (
    error_html,
    memory_html,
    packed_html,
    preview_html,
    ready_text,
    report_html,
    sequence_html,
)

# ---------------------------------------------------------------------------------------------
# Form values → TuneConfig


def form(**overrides: Any) -> dict[str, Any]:
    """The form's values as the browser sends them (gr.Number gives floats, blanks are None)."""
    values: dict[str, Any] = {
        "name": " sst2-qlora ", "overwrite": False, "data": "data/train.tsv", "limit": 40.0,
        "template": "sst2-sentiment", "column_map": "", "model": "smollm2-135m-instruct",
        "quantization": "4bit", "format": "auto", "lora_r": 16.0, "lora_alpha": 32.0,
        "lora_dropout": 0.05, "target_modules": "all-linear", "use_rslora": False,
        "use_dora": False, "lr": 0.0002, "scheduler": "linear", "warmup_ratio": 0.03,
        "epochs": 1.0, "max_steps": None, "batch_size": 8.0, "grad_accumulation": 1.0,
        "max_length": 512.0, "eval_split": 0.1, "eval_steps": None, "save_steps": 50.0,
        "seed": 0.0, "packing": False, "padding_free": False, "gradient_checkpointing": False,
        "prompt_loss": False,
    }  # fmt: skip
    assert set(values) == set(FORM_FIELDS)
    values.update(overrides)
    return values


def test_default_form_values_are_the_config_defaults_plus_name_data_limit_template() -> None:
    config = tune_config(form())
    expected = flat_config(
        name="sst2-qlora", data="data/train.tsv", limit=40, template="sst2-sentiment"
    )
    assert config == expected
    assert config.training.max_steps is None and config.training.eval_steps is None
    assert isinstance(config.lora.r, int) and isinstance(config.training.batch_size, int)


def test_form_values_map_to_every_section() -> None:
    config = tune_config(
        form(max_steps=4.0, eval_steps=2.0, limit=0, batch_size=4.0, max_length=128.0,
             eval_split=0.2, target_modules="q_proj, v_proj\n", column_map="sentence=text\nx = y",
             prompt_loss=True, use_dora=True, quantization="8bit", scheduler="cosine",
             packing=True, template="", format="alpaca", lr="1e-3")
    )  # fmt: skip
    assert config.training.max_steps == 4 and config.training.eval_steps == 2
    assert config.data.limit is None  # 0 = all rows
    assert config.lora.target_modules == ["q_proj", "v_proj"] and config.lora.use_dora
    assert config.data.column_map == {"sentence": "text", "x": "y"}
    assert config.data.completion_only_loss is False and config.data.template is None
    assert config.model.quantization == "8bit" and config.training.scheduler == "cosine"
    assert config.training.learning_rate == 1e-3 and config.training.packing


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "../escape"}, "name"),
        ({"data": ""}, "data.path"),
        ({"lora_r": 0.0}, "lora.r"),
        ({"batch_size": 2.5}, "training.batch_size"),
        ({"eval_split": 0.95}, "data.eval_split"),
        ({"lr": "fast"}, "training.learning_rate"),
        ({"max_length": 8.0}, "data.max_length"),
        ({"column_map": "sentence"}, "data.column_map"),
        ({"target_modules": "q_proj, v-proj!"}, "lora.target_modules"),
        ({"format": "template", "template": ""}, "data"),
        ({"packing": True, "padding_free": True}, "packing"),
    ],
)
def test_bad_values_name_the_setting(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(TuneConfigError, match=re.escape(field)):
        tune_config(form(**overrides))


def test_column_map_and_target_module_parsing() -> None:
    assert column_map("a=b, c=d\n\n e = f ") == {"a": "b", "c": "d", "e": "f"}
    assert target_modules(" all-linear ") == "all-linear"
    assert target_modules("") is None


# ---------------------------------------------------------------------------------------------
# Check: report, memory, preview


def example(row: int = 7, truncated: bool = False) -> TrainExample:
    segments = (("<|im_start|>user\n<b>Review</b> & co\n", False), ("positive<|im_end|>", True))
    return TrainExample(row, segments, [1, 2, 3, 4, 5], [0, 0, 0, 1, 1], truncated)


def launch_check(memory: MemoryEstimate | None, tmp_path: Path) -> LaunchCheck:
    dataset = Dataset("train.tsv", str(tmp_path / "train.tsv"), "tsv", ["sentence", "label"],
                      [{"sentence": "x", "label": "1"}] * 5, "ab" * 32)  # fmt: skip
    stats = LengthStats(n=5, min=4, median=5.0, max=9, max_length=8, truncated_rows=[3])
    warnings = [DataProblem(None, "the eval split has only 1 row(s)"), DataProblem(3, "9 tokens")]
    prepared = PreparedData("template", dataset, None, [example(1), example(3, True)],
                            [example(5)], stats, warnings)  # fmt: skip
    config = flat_config(name="demo", data=str(tmp_path / "train.tsv"), max_steps=4, batch_size=2)
    return LaunchCheck(config, prepared, tmp_path / "adapters" / "demo", 4, "loc", memory)


def test_preview_marks_the_trained_span_escapes_and_counts_tokens() -> None:
    html = preview_html([example(), example(9), example(10), example(11)])
    assert html.count('<div class="tune-example">') == 3  # the first three rows
    assert '<span class="tune-trained">positive&lt;|im_end|&gt;</span>' in html
    assert "&lt;b&gt;Review&lt;/b&gt; &amp; co" in html and "<b>Review" not in html
    assert "row 7 · 5 tokens: 3 masked, 2 trained" in html
    assert "truncated" in preview_html([example(truncated=True)])
    sequence = sequence_html(example().segments)
    newline = '<span class="tune-nl">↵</span>\n'  # a visible mark; the newline itself is kept
    assert sequence.startswith(
        f'<pre class="tune-seq"><span class="tune-masked">&lt;|im_start|&gt;user{newline}'
    )


def test_a_packed_sequence_shows_its_rows_end_to_end_with_their_masks() -> None:
    html = packed_html([[example(4), example(9)]], max_length=12)
    assert "packed sequence 1 · 2 rows (4, 9) · 10 of 12 tokens, 4 trained" in html
    assert html.count("⟦row") == 2 and html.index("⟦row 4⟧") < html.index("⟦row 9⟧")
    assert html.count('<span class="tune-trained">positive&lt;|im_end|&gt;</span>') == 2


def test_memory_estimate_shows_parts_and_whether_it_fits() -> None:
    parts = {"base weights": GIB, "logits": GIB // 2}
    fits = memory_html(MemoryEstimate(parts, 4 * GIB, "cpu"))
    assert 'data-fits="fits"' in fits and "1.50 GiB" in fits and "4.00 GiB available" in fits
    too_big = memory_html(MemoryEstimate(parts, GIB, "cuda:0"))
    assert 'data-fits="no-fit"' in too_big and "does NOT fit" in too_big
    assert "No memory estimate" in memory_html(None)


def test_report_lists_the_data_steps_warnings_with_rows_and_memory(tmp_path: Path) -> None:
    check = launch_check(MemoryEstimate({"base weights": GIB}, 2 * GIB, "cpu"), tmp_path)
    html = report_html(check)
    assert "2 train, 1 eval" in html and "min 4 · median 5 · max 9 (max_length 8)" in html
    assert "1 rows cut at max_length: 3" in html and "row 3: 9 tokens" in html
    assert "4 (max steps; 2 rows × 1 accumulation = 2 rows a step" in html
    assert 'data-fits="fits"' in html
    # Every step evaluates (4 steps, ~10 a run) plus the final one; the cost is stated.
    assert "5 evaluations × 1 of 1 eval rows (5 tokens each) ≈ 17.2% of the run" in html
    assert "4 optimizer steps → adapters/demo." in ready_text(check, overwrite=False)


def test_errors_name_their_kind_and_are_escaped() -> None:
    problem = TuneDataError([DataProblem(3, "no <answer>")], rows=10, fix="fill it in")
    html = error_html(problem)
    assert "The data cannot be trained on" in html and "row 3: no &lt;answer&gt;" in html
    assert "Nothing was queued" in html
    assert "Invalid setting" in error_html(TuneConfigError("lora.r: too small"))
    assert "Model problem" in error_html(QuantizationError("8bit needs a CUDA GPU"))
    assert "Unexpected error (KeyError)" in error_html(KeyError("x"))


def test_check_with_a_bad_setting_shows_the_error_and_queues_nothing(services: Services) -> None:
    status, report, preview = TuneHandlers(services).check(
        *[form(lora_r=0.0)[name] for name in FORM_FIELDS]
    )
    assert 'data-kind="error"' in status and "lora.r" in status
    assert "Check the settings" in report and "Check the settings" in preview
    assert services.store.list_tuning_runs() == []


# ---------------------------------------------------------------------------------------------
# Jobs: table, progress, story, plots, adapters


def run(id: int = 3, status: str = "running", **fields: Any) -> TuningRun:
    values: dict[str, Any] = {
        "id": id, "name": f"demo-{id}", "status": status,
        "config": flat_config(name=f"demo-{id}", data="d.tsv", template="t").to_dict(),
        "base_model": "smollm2-135m-instruct", "dataset_id": None, "template_version_id": None,
        "work_dir": "/nonexistent", "adapter_path": f"/a/demo-{id}",
        "progress": {"step": 3, "total_steps": 10, "loss": 1.23456, "eval_loss": None,
                     "tokens_per_second": 250.4, "eta_seconds": 125.0, "elapsed_seconds": 50},
        "summary": None, "stop_requested": False, "resume": False,
        "created_at": datetime(2025, 1, 2, 3, 4, tzinfo=timezone.utc), "started_at": None,
        "finished_at": None, "error": None, "host": None, "pid": None,
    }  # fmt: skip
    values.update(fields)
    return TuningRun(**values)


def test_duration_text() -> None:
    assert [duration(s) for s in (None, 4.4, 125, 3725)] == ["–", "4 s", "2 m 05 s", "1 h 02 m"]


def test_jobs_table_rows() -> None:
    rows = job_rows([run(3), run(2, "completed", progress={"step": 10, "total_steps": 10})])
    assert len(rows[0]) == len(JOB_HEADERS)
    assert rows[0] == [3, "demo-3", "▶ running", "3/10", "1.2346", "–", "250", "2 m 05 s",
                       "2025-01-02 03:04"]  # fmt: skip
    assert rows[1][2:4] == ["✓ completed", "10/10"] and rows[1][7] == "–"  # no ETA when done


def test_progress_bar_and_eta_text() -> None:
    text = progress_text(run())
    assert text.startswith("step 3/10 · 30% · loss 1.2346 · 250 tok/s · 50 s elapsed")
    assert text.endswith("ETA 2 m 05 s")
    assert 'style="width:30.0%"' in progress_html(run())
    stopping = progress_html(run(stop_requested=True))
    assert 'data-state="stopping"' in stopping and "stopping at the next step" in stopping
    done = progress_html(run(status="completed", progress={"step": 4, "total_steps": 5}))
    assert 'style="width:100.0%"' in done and "run #3 completed" in done
    assert "No run selected" in progress_html(None)


def test_run_story_says_why_it_failed_and_where_the_adapter_is() -> None:
    failed = run_markdown(run(status="failed", error="CUDA out of memory"))
    assert "**failed**" in failed and "CUDA out of memory" in failed and "Resume" in failed
    done = run_markdown(run(status="completed", summary={"train_loss": 0.5, "eval_loss": 0.25}))
    assert "use `adapters/demo-3` as a model in Compare or Playground" in done
    assert "train loss 0.5000 · eval loss 0.2500" in done
    assert "Waiting for run #2" in run_markdown(run(status="queued"), queued_behind=2)
    assert (can_stop(run()), can_resume(run())) == (True, False)
    assert (can_stop(run(status="stopped")), can_resume(run(status="stopped"))) == (False, True)
    assert not can_stop(run(stop_requested=True)) and not can_stop(None)


def test_plot_frames_keep_one_typed_value_a_step() -> None:
    points = [
        MetricPoint(step=1, loss=2.0, learning_rate=1e-4),
        MetricPoint(step=2, loss=1.5, learning_rate=2e-4),
        MetricPoint(step=2, eval_loss=1.8),
        MetricPoint(step=2, eval_loss=1.7),  # the final eval at the same step: the last wins
    ]
    loss = metric_frame(points, "loss")
    assert loss.values.tolist() == [[1, 2.0], [2, 1.5]]
    assert metric_frame(points, "eval_loss").values.tolist() == [[2, 1.7]]
    assert metric_frame(points, "learning_rate")["learning_rate"].tolist() == [1e-4, 2e-4]
    empty = metric_frame([], "loss")
    assert empty.empty and str(empty.dtypes["step"]) == "int64"
    assert str(empty.dtypes["loss"]) == "float64"


def test_adapter_rows(tmp_path: Path) -> None:
    card = AdapterCard("demo", "smollm2-135m-instruct", "loc", "4bit", {}, None, None, None,
                       "train.tsv", None, "hash", 8, 2, {"eval_loss": 0.31234},
                       created_at="2025-01-02T03:04:05+00:00")  # fmt: skip
    info = AdapterInfo("demo", tmp_path, "smollm2-135m-instruct", card, {}, 10, card.created_at)
    assert adapter_rows([info]) == [
        ["demo", "adapters/demo", "smollm2-135m-instruct", "0.3123", "2025-01-02 03:04"]
    ]


def test_the_followed_run_is_the_selected_one_else_the_newest() -> None:
    runs = [run(5), run(4)]
    assert pick_run(4, runs) == 4 and pick_run("4", runs) == 4
    assert pick_run(None, runs) == 5 and pick_run(99, runs) == 5 and pick_run(None, []) is None


# ---------------------------------------------------------------------------------------------
# The timer's refresh on a real store


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(home=tmp_path / "home", offline=True, adapters_dir=tmp_path / "ad")
    services = create_services(settings)
    yield services
    services.close()


def jobs_for(services: Services) -> TuneHandlers:
    """The jobs panel's handlers, on a built tab (its outputs are the KEYS components)."""
    with gr.Blocks():
        tab = build_tune_tab(services)
    assert len(tab.jobs.outputs) == len(KEYS) + 2  # the KEYS components, the cache, the notice
    return tab.handlers


def queue(services: Services, name: str) -> TuningRun:
    config: TuneConfig = flat_config(name=name, data="d.tsv")
    work_dir = services.settings.tuning_dir / name
    work_dir.mkdir(parents=True, exist_ok=True)  # queue_run makes it: resume needs it there
    return services.store.create_tuning_run(
        name=name, config=config.to_dict(), base_model="smollm2-135m-instruct",
        work_dir=str(work_dir), adapter_path=f"/a/{name}",
    )  # fmt: skip


def is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_refresh_sends_only_what_changed_and_follows_the_newest(services: Services) -> None:
    jobs = jobs_for(services)
    empty = dict(zip(KEYS, jobs.refresh(None, {}), strict=False))
    assert empty["info"].startswith("No tuning run yet") and empty["table"].empty
    first = queue(services, "first")
    values = jobs.refresh(None, {})
    shown = dict(zip(KEYS, values, strict=False))
    cache, notice = values[-2], values[-1]
    assert is_skip(notice)  # what Stop or Resume said stays
    assert shown["table"].values.tolist()[0][:3] == [first.id, "first", "⏳ queued"]
    assert "Run #1 — first" in shown["info"] and shown["adapters"].empty
    folder = services.settings.adapters_dir / "first"  # an adapter appears on disk...
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "base"}')
    (folder / "adapter_model.safetensors").write_bytes(b"")
    again = jobs.refresh(first.id, cache)
    assert all(is_skip(v) for v in again[: len(KEYS)])  # ...but the disk is read when a run ends
    services.store.request_tuning_stop(first.id)  # queued → cancelled
    queue(services, "second")
    after = dict(zip(KEYS, jobs.refresh(None, again[-2]), strict=False))
    assert "Run #2 — second" in after["info"]  # the newest run is followed
    assert after["adapters"].values.tolist()[0][:3] == ["first", "adapters/first", "base"]


def test_a_failing_refresh_keeps_the_page_and_says_why(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = jobs_for(services)

    def gone(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(services.store, "list_tuning_runs", gone)
    values = jobs.refresh(None, {"table": "x"})
    assert all(is_skip(v) for v in values[: len(KEYS)])
    assert values[-2] == {"table": "x", "failing": "yes"}
    assert values[-1] == "⚠ Could not refresh the jobs: database is locked"
    monkeypatch.undo()
    recovered = jobs.refresh(None, values[-2])
    assert recovered[-1] == "" and "failing" not in recovered[-2]


def test_stop_cancels_a_queued_run_and_resume_requeues_a_stopped_one(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = jobs_for(services)
    first, second = queue(services, "first"), queue(services, "second")
    assert jobs.request_stop(first.id) == f"Run #{first.id} was queued: cancelled."
    assert "nothing to stop" in jobs.request_stop(first.id)
    assert jobs.request_resume(first.id).endswith(f"resumed; run {first.id} is cancelled")
    services.store.finish_tuning_run(second.id, "stopped")
    monkeypatch.setattr("studio.tuning.jobs.start_next", lambda *_: None)  # no worker here
    assert jobs.request_resume(second.id) == (
        f"Run #{second.id} queued: it continues from its last checkpoint."
    )
    assert jobs.request_stop(None) == "Select a run to stop."


def test_the_tab_builds_with_every_form_field(services: Services) -> None:
    with gr.Blocks() as app:
        build_tune_tab(services)
    ids = {block.elem_id for block in app.blocks.values()}
    assert {"tune-check", "tune-launch", "tune-jobs", "tune-plot-loss", "tune-log"} <= ids
    for name in ("lora_r", "max_steps", "eval_split", "prompt_loss", "limit"):
        assert f"tune-{name.replace('_', '-')}" in ids


def test_a_run_whose_checkpoints_are_elsewhere_is_not_resumed(services: Services) -> None:
    run = queue(services, "imported")
    services.store.finish_tuning_run(run.id, "stopped")
    (services.settings.tuning_dir / "imported").rmdir()  # as after a bundle import
    message = jobs_for(services).request_resume(run.id)
    assert "checkpoints are not on this machine" in message and "re-run it" in message
    stored = services.store.get_tuning_run(run.id)
    assert stored is not None and stored.status == "stopped"
