"""The trainer callback that makes a training process observable and stoppable from the studio.

Each logged step becomes a metric point in the store (loss, eval loss, learning rate, grad norm,
tokens per second, ETA) and updates the run's progress (a resumed run first drops the points past
its checkpoint, which it logs again); after every optimizer step it reads the run's stop flag,
and a requested stop ends training at that step (the worker then saves the adapter). Only the
main process writes, so the same callback works under `accelerate launch`.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from studio.store import MetricPoint, Store


class StoreCallback(TrainerCallback):
    """Writes progress to the store and turns a stop request into should_training_stop."""

    def __init__(self, store: Store, run_id: int, total_steps: int, say: Any = None) -> None:
        self.store = store
        self.run_id = run_id
        self.total_steps = total_steps
        self.say = say or (lambda _text: None)
        self.stopped_by_user = False
        self._started = time.perf_counter()
        self._first_step: int | None = None
        self._last_tokens: tuple[float, float] | None = None  # (time, tokens seen)
        self.tokens_per_second: float | None = None
        self._latest: dict[str, float | None] = {"loss": None, "eval_loss": None}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()
        self._first_step = state.global_step
        self.total_steps = state.max_steps or self.total_steps
        if state.global_step and state.is_world_process_zero:
            # Resumed from a checkpoint: the steps logged after it (before the run died) are
            # trained and logged again, so their old points go.
            self.store.delete_metric_points_after(self.run_id, state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._stop_wanted(state):
            self.stopped_by_user = True
            control.should_training_stop = True
            control.should_save = True  # a checkpoint at this step, so resume continues here
            self.say(f"stop requested: ending at step {state.global_step}")

    def _stop_wanted(self, state: Any) -> bool:
        wanted = state.is_world_process_zero and self.store.tuning_stop_requested(self.run_id)
        import torch.distributed as dist  # lazy: torch is slow to import; only model work needs it

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # Every rank must stop at the same step, or the others wait forever.
            box = [wanted]
            dist.broadcast_object_list(box, src=0)
            wanted = bool(box[0])
        return bool(wanted)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        now = time.perf_counter()
        self._update_speed(now, logs)
        eta = self._eta(now, state.global_step)
        point = MetricPoint(
            step=state.global_step,
            epoch=_number(logs.get("epoch")),
            loss=_number(logs.get("loss")),
            eval_loss=_number(logs.get("eval_loss")),
            learning_rate=_number(logs.get("learning_rate")),
            grad_norm=_number(logs.get("grad_norm")),
            tokens_per_second=self.tokens_per_second,
            eta_seconds=eta,
        )
        if point.loss is None and point.eval_loss is None:
            return  # the end-of-training summary, recorded as the run's summary instead
        self.store.add_metric_points(self.run_id, [point])
        # Train and eval points arrive separately; progress shows the latest of each.
        for key, value in (("loss", point.loss), ("eval_loss", point.eval_loss)):
            if value is not None:
                self._latest[key] = value
        self.store.set_tuning_progress(
            self.run_id,
            {
                "step": state.global_step,
                "total_steps": self.total_steps,
                "epoch": point.epoch,
                **self._latest,
                "tokens_per_second": self.tokens_per_second,
                "eta_seconds": eta,
                "elapsed_seconds": now - self._started,
            },
        )
        self.say(_line(point, self.total_steps))

    def _update_speed(self, now: float, logs: dict[str, Any]) -> None:
        tokens = _number(logs.get("num_tokens"))
        if tokens is None:
            return
        if self._last_tokens is not None and now > self._last_tokens[0]:
            rate = (tokens - self._last_tokens[1]) / (now - self._last_tokens[0])
            if rate > 0:
                self.tokens_per_second = rate
        elif self._last_tokens is None and now > self._started:
            self.tokens_per_second = tokens / (now - self._started)
        self._last_tokens = (now, tokens)

    def _eta(self, now: float, step: int) -> float | None:
        done = step - (self._first_step or 0)
        if done <= 0:
            return None
        return (now - self._started) / done * max(self.total_steps - step, 0)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _line(point: MetricPoint, total: int) -> str:
    parts = [f"step {point.step}/{total}"]
    if point.loss is not None:
        parts.append(f"loss {point.loss:.4f}")
    if point.eval_loss is not None:
        parts.append(f"eval_loss {point.eval_loss:.4f}")
    if point.learning_rate is not None:
        parts.append(f"lr {point.learning_rate:.2e}")
    if point.tokens_per_second:
        parts.append(f"{point.tokens_per_second:.0f} tok/s")
    return " · ".join(parts)
