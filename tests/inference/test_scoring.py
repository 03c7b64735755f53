"""Log-likelihood scoring on the real SmolLM2: matches a direct computation, cache or no cache."""

from __future__ import annotations

import pytest

from studio.inference.scoring import score_choices, shared_prefix_length
from studio.models.loading import LoadRequest
from studio.models.manager import ModelManager

pytestmark = pytest.mark.model

SHOTS = (
    "Review: a gorgeous, witty, seductive movie.\nSentiment: positive\n\n"
    "Review: the plot is nothing but boilerplate clichés.\nSentiment: negative\n\n"
)
QUERIES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "the acting , costumes , music , cinematography and sound are all astounding .",
    "a dull , inept and pointless exercise in style",
    "fun",
]
PROMPTS = [f"{SHOTS}Review: {q}\nSentiment:" for q in QUERIES]
CHOICES = [[" negative", " positive"]] * len(PROMPTS)


@pytest.fixture(scope="module")
def smol(model_home):
    from studio.settings import load_settings

    manager = ModelManager(load_settings(home=model_home, offline=True))
    return manager.get(LoadRequest("smollm2-135m-instruct"))


def direct_logprob(loaded, prompt: str, continuation: str) -> float:
    """The textbook computation: one unbatched forward over prompt + continuation."""
    import torch

    tok = loaded.tokenizer
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    full = tok(prompt + continuation, add_special_tokens=False)["input_ids"]
    assert full[: len(p)] == p
    with torch.inference_mode():
        logits = loaded.model(torch.tensor([full])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return float(sum(logprobs[t - 1, full[t]] for t in range(len(p), len(full))))


def by_index(results, choices=CHOICES):
    """Results keyed by example, after checking there is exactly one per prompt, with every
    choice scored in the order given (results arrive as batches finish, not in input order)."""
    results = list(results)
    assert sorted(r.index for r in results) == list(range(len(PROMPTS)))
    for r in results:
        assert [s.choice for s in r.scores] == list(choices[r.index])
    return {r.index: r for r in results}


def test_scores_match_a_direct_computation(smol) -> None:
    scored = by_index(score_choices(smol, PROMPTS, CHOICES, batch_rows=4, reuse_prefix=False))
    for i, prompt in enumerate(PROMPTS):
        for choice_score in scored[i].scores:
            expected = direct_logprob(smol, prompt, choice_score.choice)
            assert choice_score.logprob == pytest.approx(expected, abs=1e-4)


def test_prefix_cached_and_uncached_agree(smol) -> None:
    plain = by_index(score_choices(smol, PROMPTS, CHOICES, batch_rows=6, reuse_prefix=False))
    cached = by_index(score_choices(smol, PROMPTS, CHOICES, batch_rows=6, reuse_prefix=True))
    for i in range(len(PROMPTS)):
        for a, b in zip(plain[i].scores, cached[i].scores, strict=True):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    ids = [smol.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    assert shared_prefix_length(ids) > 30  # the shot block really was shared


def test_shared_prefix_length() -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # one own token is always left
    assert shared_prefix_length([]) == 0


def test_multi_token_choices_of_different_lengths(smol) -> None:
    choices = [[" no", " absolutely positive and uplifting", " rather negative"]] * len(PROMPTS)
    lengths = {len(smol.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in choices[0]}
    assert len(lengths) == 3  # one, a few and many tokens: both passes are exercised
    for reuse in (False, True):
        results = score_choices(smol, PROMPTS, choices, batch_rows=6, reuse_prefix=reuse)
        scored = by_index(results, choices)
        for i, prompt in enumerate(PROMPTS):
            for choice_score in scored[i].scores:
                expected = direct_logprob(smol, prompt, choice_score.choice)
                assert choice_score.logprob == pytest.approx(expected, abs=1e-4)
