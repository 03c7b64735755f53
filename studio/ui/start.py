"""Start here tab: the whole loop on the project's own sample project, one button per step.

Step 1 and step 3 run a shipped comparison config through the Compare tab's engine
(services.comparisons.run), streaming progress and the latest rows; step 2 launches the shipped
tuning config through the Tune tab's engine (check_launch, queue_run, start_next) and follows the
worker through the store on a timer; step 4 lists what the loop stored. Loading the sample configs
is studio.quickstart.sample's job; handlers here parse nothing, call the engine and format what
it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.engine import RunFinished
from studio.compare.summary import summarize_run
from studio.quickstart import sample
from studio.services import Services
from studio.ui.compare_live import LIVE_HEADERS, LiveRun, progress_bar
from studio.ui.compare_views import estimate_text
from studio.ui.stops import StopRegistry
from studio.ui.tune_run_views import can_stop, duration, number, progress_html

log = logging.getLogger(__name__)
INTRO = (
    "### Start here: the whole loop, on CPU, on the project's own sample task\n"
    "The project ships a small task of its own: route a customer-support ticket to **billing, "
    "shipping, technical or account** (`studio/samples/tickets-*.csv`, 200 training and 72 "
    "held-out tickets, template `support-tickets`). Run the four steps in order; each button "
    "runs the same engine as the other tabs and the command shown next to it."
)
RESULT_HEADERS = ["model", "shots", "seed", "n", "accuracy [95% CI]", "acc_norm [95% CI]"]
RUN_HEADERS = ["kind", "run", "name", "status", "result"]
IDLE = progress_bar(0, "Not run yet.", "idle")
PREPARING = progress_bar(0, "Preparing: reading the sample and loading the model…", "running")
FOUND_COMPARE = (
    "Run #{run} is stored: open it in the **Compare** tab (past runs) or the **Experiments** "
    "tab for every example's exact prompt and choice scores; `studio runs list` lists it."
)
DEMO_NOTE = "Demo mode (STUDIO_DEMO=1): training is switched off here, so step 2 cannot run."


@dataclass
class CompareStep:
    """The components of a comparison step (1 or 3)."""

    run: gr.Button
    stop: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    live: gr.Dataframe
    results: gr.Dataframe

    @property
    def outputs(self) -> list[Any]:
        return [self.progress, self.live, self.results, self.status, self.run]


class StartSteps:
    """The handlers of the four steps. `limit` caps the tickets scored (tests, demo mode)."""

    def __init__(self, services: Services, limit: int | None = None) -> None:
        self.services = services
        self.limit = limit
        self.stops = {1: StopRegistry(), 3: StopRegistry()}

    # -- steps 1 and 3: comparisons ---------------------------------------------------------

    def config(self, step: int) -> Any:
        path = sample.COMPARE_CONFIG if step == 1 else sample.ADAPTER_COMPARE_CONFIG
        config = sample.compare_config(path)
        limit = self.limit
        if self.services.settings.demo:  # a public Space caps rows per comparison
            cap = max(1, self.services.settings.demo_max_examples // config.n_configs)
            limit = min(limit or cap, cap)
        return config if limit is None else config.model_copy(update={"limit": limit})

    def compare(self, step: int, session: str | None) -> Iterator[tuple[Any, ...]]:
        """Values for CompareStep.outputs as the run goes: progress, rows, results, status."""
        stop = self.stops[step].begin(session)
        live: LiveRun | None = None
        try:
            yield (
                PREPARING,
                _live_frame(None),
                gr.skip(),
                "Preparing…",
                gr.Button(interactive=False),
            )
            config = self.config(step)
            live = LiveRun(config.n_configs)
            for event in self.services.comparisons.run(config, stop):
                live.stopping = stop.is_set()
                if not live.apply(event):
                    continue
                if isinstance(event, RunFinished):
                    yield self._finished(live, event)
                else:
                    yield live.progress_html(), _live_frame(live), gr.skip(), gr.skip(), gr.skip()
        except Exception as exc:  # refused before anything was stored, or failed midway
            if not isinstance(exc, (ValueError, OSError)):
                log.exception("start-here step %s failed", step)
            progress = live.progress_html() if live and live.run_id else IDLE
            yield progress, gr.skip(), gr.skip(), f"✗ {exc}", gr.Button(interactive=True)
        finally:
            self.stops[step].end(session, stop)

    def _finished(self, live: LiveRun, event: RunFinished) -> tuple[Any, ...]:
        summaries = summarize_run(self.services.store, event.run_id)
        rows = [
            [s.model, s.shots, s.seed, s.n, estimate_text(s.accuracy), estimate_text(s.acc_norm)]
            for s in sorted(summaries, key=lambda s: s.position)
        ]
        verdict = {"completed": "✓ Completed", "stopped": "■ Stopped (the rows scored are kept)"}
        status = (
            f"{verdict.get(event.status, '✗ Failed: ' + str(event.error))} — "
            f"mean accuracy {sample.headline_text(summaries)}.\n\n"
            + FOUND_COMPARE.format(run=event.run_id)
        )
        frame = pd.DataFrame(rows, columns=RESULT_HEADERS)
        return live.progress_html(), _live_frame(live), frame, status, gr.Button(interactive=True)

    def stop_compare(self, step: int, session: str | None) -> str:
        if self.stops[step].stop(session):
            return "Stopping at the next batch; the rows scored so far are kept."
        return "Nothing is running for this step."

    # -- step 2: tuning ---------------------------------------------------------------------

    def launch_tune(self) -> tuple[str, int | None]:
        """Check and queue the sample's tuning run; (status, run id to follow)."""
        tuning = self.services.tuning
        try:
            check = tuning.check(sample.tune_config(), overwrite=True)
            run = tuning.queue(check)
        except Exception as exc:
            if not isinstance(exc, (ValueError, OSError)):
                log.exception("start-here tuning launch failed")
            return f"✗ {exc}", None
        started = tuning.start_next()
        what = "started" if started is not None and started.id == run.id else "queued"
        return (
            f"▶ Run #{run.id} {what}: {check.total_steps} steps on {len(check.prepared.train)} "
            "tickets, in its own process (leaving this page does not stop it).",
            run.id,
        )

    def stop_tune(self, run_id: Any) -> str:
        run = self._tuning_run(run_id)
        if run is None or not can_stop(run):
            return "Nothing is training for this step."
        if self.services.tuning.stop(run.id) == "cancelled":
            return f"Run #{run.id} was cancelled before it started."
        return f"Run #{run.id} stops at its next step and saves its adapter."

    def _tuning_run(self, run_id: Any) -> Any:
        if run_id not in (None, ""):
            return self.services.store.get_tuning_run(int(run_id))
        return sample.latest_tuning_run(self.services.store)

    def tune_state(self, run_id: Any) -> dict[str, Any]:
        """What step 2 shows now, and whether step 3 may run."""
        run = self._tuning_run(run_id)
        ready = sample.adapter_ready(self.services.settings)
        return {
            "progress": progress_html(run) if run else IDLE,
            "info": tune_markdown(run, sample.adapter_folder(self.services.settings), ready),
            "stop": can_stop(run),
            "step3": ready and not can_stop(run),
        }

    def tick(self, run_id: Any, shown: dict[str, Any] | None) -> tuple[Any, ...]:
        """Timer: progress, info, stop and step-3 buttons, sent only when they changed."""
        shown = dict(shown or {})
        try:
            state = self.tune_state(run_id)
        except Exception:  # the store may be busy for a moment: try again next tick
            log.exception("reading the start-here tuning run failed")
            return (*(gr.skip() for _ in range(4)), shown)
        values = {
            "progress": state["progress"],
            "info": state["info"],
            "stop": gr.Button(interactive=state["stop"]),
            "step3": gr.Button(interactive=state["step3"]),
        }
        out = []
        for key, value in values.items():
            changed = shown.get(key) != state[key]
            shown[key] = state[key]
            out.append(value if changed else gr.skip())
        return (*out, shown)

    # -- step 4: what the loop stored -------------------------------------------------------

    def stored_runs(self) -> pd.DataFrame:
        store = self.services.store
        rows: list[list[Any]] = []
        for run in sample.sample_comparisons(store, limit=10):
            headline = sample.headline_text(summarize_run(store, run.id))
            rows.append(["comparison", run.id, run.name, run.status, headline])
        name = sample.adapter_name()
        for tuning in store.list_tuning_runs(limit=200):
            if tuning.name == name:
                rows.append(["tuning", tuning.id, tuning.name, tuning.status, _tune_result(tuning)])
        return pd.DataFrame(rows, columns=RUN_HEADERS)


def _live_frame(live: LiveRun | None) -> pd.DataFrame:
    return pd.DataFrame(live.live_rows() if live else [], columns=LIVE_HEADERS)


def _tune_result(run: Any) -> str:
    summary = run.summary or {}
    parts = [
        f"{label} {number(summary[key])}"
        for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss"))
        if summary.get(key) is not None
    ]
    if summary.get("wall_seconds") is not None:
        parts.append(duration(summary["wall_seconds"]))
    if run.status in ("completed", "stopped"):
        parts.append(f"adapter {run.adapter_path}")
    return " · ".join(parts) or (run.error or "")


def tune_markdown(run: Any, folder: Path, ready: bool) -> str:
    """Step 2's outcome: where the adapter is and where the run is shown."""
    if run is None:
        return "No tuning run yet." + (f" An adapter is already at `{folder}`." if ready else "")
    lines = [f"Run #{run.id} **{run.status}**" + (f": {run.error}" if run.error else "")]
    result = _tune_result(run)
    if result:
        lines.append(result)
    if ready and not can_stop(run):
        lines.append(
            f"The adapter is in `{folder}`: use `adapters/{folder.name}` as a model in Compare "
            "or Playground. Its loss curve and log are in the **Tune** tab (and Experiments)."
        )
    return "\n\n".join(lines)


def _step_header(step: sample.Step) -> None:
    gr.Markdown(
        f"#### {step.number} · {step.title}\n{step.explanation}\n\n```bash\n{step.command}\n```",
        elem_id=f"start-step-{step.number}",
    )


def _compare_step(step: sample.Step, label: str, interactive: bool = True) -> CompareStep:
    _step_header(step)
    with gr.Row():
        run = gr.Button(label, variant="primary", scale=3, interactive=interactive,
                        elem_id=f"start-run-{step.number}")  # fmt: skip
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id=f"start-stop-{step.number}")
    status = gr.Markdown("", elem_id=f"start-status-{step.number}")
    progress = gr.HTML(IDLE, js_on_load=None, elem_id=f"start-progress-{step.number}")
    with gr.Accordion("Latest rows", open=False):
        live = gr.Dataframe(headers=LIVE_HEADERS, interactive=False, max_height=220,
                            elem_id=f"start-live-{step.number}")  # fmt: skip
    results = gr.Dataframe(headers=RESULT_HEADERS, interactive=False, label="Accuracy",
                           elem_id=f"start-results-{step.number}")  # fmt: skip
    return CompareStep(run, stop, status, progress, live, results)


def _wire_compare(steps: StartSteps, number: int, ui: CompareStep) -> None:
    def run(request: gr.Request) -> Iterator[tuple[Any, ...]]:
        yield from steps.compare(number, request.session_hash)

    def stop(request: gr.Request) -> str:
        return steps.stop_compare(number, request.session_hash)

    # One comparison at a time, shared with the Compare tab: they share the model and the CPU.
    streaming: dict[str, Any] = {"show_progress": "hidden", "concurrency_id": "compare",
                                 "api_visibility": "private"}  # fmt: skip
    ui.run.click(run, None, ui.outputs, **streaming)
    # Not queued: a stop must get through while this session's run holds the queue slot.
    ui.stop.click(stop, None, ui.status, queue=False, api_visibility="private")


def build_start_tab(services: Services) -> None:
    steps = StartSteps(services)
    settings = services.settings
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    first = _compare_step(sample.STEPS[0], "Run step 1: compare 0 vs 4 shots")
    _wire_compare(steps, 1, first)

    _step_header(sample.STEPS[1])
    with gr.Row():
        train = gr.Button("Run step 2: tune the adapter", variant="primary", scale=3,
                          interactive=not settings.demo, elem_id="start-run-2")  # fmt: skip
        stop_train = gr.Button("Stop", variant="stop", scale=1, interactive=False,
                               elem_id="start-stop-2")  # fmt: skip
    train_status = gr.Markdown(DEMO_NOTE if settings.demo else "", elem_id="start-status-2")
    initial = steps.tune_state(None)
    train_progress = gr.HTML(initial["progress"], js_on_load=None, elem_id="start-progress-2")
    train_info = gr.Markdown(initial["info"], elem_id="start-info-2")
    run_id, shown = gr.State(None), gr.State({})

    third = _compare_step(sample.STEPS[2], "Run step 3: base vs adapter", initial["step3"])
    _wire_compare(steps, 3, third)

    _step_header(sample.STEPS[3])
    refresh = gr.Button("Show what the loop stored", elem_id="start-run-4")
    stored = gr.Dataframe(headers=RUN_HEADERS, interactive=False, wrap=True,
                          elem_id="start-stored")  # fmt: skip

    private: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
    follow = (steps.tick, [run_id, shown],
              [train_progress, train_info, stop_train, third.run, shown])  # fmt: skip
    train.click(steps.launch_tune, None, [train_status, run_id], concurrency_id="tune-check",
                api_visibility="private").then(*follow, **private)  # fmt: skip
    stop_train.click(steps.stop_tune, run_id, train_status, **private).then(*follow, **private)
    gr.Timer(2.0).tick(*follow, **private)
    refresh.click(steps.stored_runs, None, stored, **private)
