"""Bounded rendering: hostile templates stop at the operator's render limits (characters, steps,
seconds) wherever the work hides (filters, methods, formats, loops, macros, set blocks,
validation, preview), and normal templates render exactly as a plain Jinja2 sandbox does."""

from __future__ import annotations

import csv
import itertools
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from studio.hosting import Limits
from studio.rendering import shared_rendering
from studio.rendering.sandbox import compiled as _compiled
from studio.templates import (
    PROMPTS_DIR,
    PromptTemplate,
    RenderLimitError,
    TemplateError,
    build_prompt,
    configure_rendering,
    fewshot_block,
    load_template,
    parse_template,
    render_fields,
    rendering_limits,
)
from studio.templates.render import _answer_context

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "studio" / "samples").glob("*.csv"))
CHARS, STEPS, SECONDS = (
    "STUDIO_MAX_RENDER_CHARS",
    "STUDIO_MAX_RENDER_STEPS",
    "STUDIO_MAX_RENDER_SECONDS",
)
SMALL = Limits(render_chars=10_000, render_steps=5_000, render_seconds=30.0)
PLAIN = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@pytest.fixture
def small_limits() -> Iterator[Limits]:
    configure_rendering(SMALL)
    try:
        yield SMALL
    finally:
        configure_rendering(Limits())


def render(source: str, context: Mapping[str, Any] | None = None) -> str:
    # model_construct skips validation (which would render too), as a stored record would.
    template = PromptTemplate.model_construct(
        name="t", template=source, answer="{{ label }}", system=None, label_map=None
    )
    return render_fields(template, {"label": "x", **(context or {})}).prompt


B = "{% set b = 'x' * 9000 %}"  # a text just under the small limit, the seed of many attacks
HOSTILE = {
    # padding widths, and format widths inside format strings
    "center-filter": ("{{ 'x'|center(10 ** 8) }}", CHARS),
    "ljust-method": ("{{ 'a'.ljust(10 ** 8) }}", CHARS),
    "zfill-method": ("{{ 'a'.zfill(10 ** 8) }}", CHARS),
    "expandtabs-method": ("{{ ('\t' * 1000).expandtabs(10 ** 6) }}", CHARS),
    "format-filter-star-width": ("{{ '%*s'|format(10 ** 8, 'x') }}", CHARS),
    "str-format-width": ("{{ '{:>999999999}'.format(1) }}", CHARS),
    "str-format-nested-width": ("{{ '{:{}}'.format(1, 999999999) }}", CHARS),
    "format-map-width": ("{{ '{a:>999999999}'.format_map({'a': 1}) }}", CHARS),
    "format-repeated-field": (B + "{{ '{0}{0}{0}{0}{0}{0}'.format(b) }}", CHARS),
    "percent-width": ("{{ '%999999999d' % 1 }}", CHARS),
    "percent-precision": ("{{ '%.999999999f' % 1.0 }}", CHARS),
    "percent-many-values": (B + "{{ '%s%s%s' % (b, b, b) }}", CHARS),
    # a long replacement, separator or wrap string, many times over
    "replace-method": ("{{ ('x' * 1000).replace('x', 'y' * 1000) }}", CHARS),
    "replace-filter": ("{{ ('x' * 1000)|replace('x', 'y' * 1000) }}", CHARS),
    "translate-method": ("{{ ('x' * 1000).translate({120: 'y' * 1000}) }}", CHARS),
    "join-filter-separator": ("{{ range(1000)|join('y' * 1000) }}", CHARS),
    "str-join-lazy": ("{{ ('y' * 1000).join(range(1000)|map('string')) }}", CHARS),
    "wordwrap-wrapstring": ("{{ ('x ' * 1000)|wordwrap(1, wrapstring='y' * 1000) }}", CHARS),
    "indent-width": ("{{ ('x\n' * 1000)|indent(10 ** 7) }}", CHARS),
    "tojson-indent": ("{{ [[1, 2], [3, 4]]|tojson(10 ** 8) }}", CHARS),
    "batch-fill": ("{{ [1]|batch(10 ** 9, 'x')|list }}", CHARS),
    "slice-count": ("{{ [1]|slice(10 ** 9)|list }}", CHARS),
    "map-center-join": ("{{ range(100000)|map('center', 9000)|join }}", CHARS),
    "lipsum-paragraphs": ("{{ lipsum(n=100000) }}", CHARS),
    "lipsum-words": ("{{ lipsum(1, max=10 ** 9) }}", CHARS),
    "range-list-join": ("{{ range(100000)|list|join }}", CHARS),
    "int-to-bytes": ("{{ (1).to_bytes(10 ** 9, 'big') }}", CHARS),
    "dict-fromkeys": ("{{ dict.fromkeys(range(100000), 'x') }}", CHARS),
    # repetition, concatenation, and str() of a list of big texts
    "repeat-text": ("{{ 'x' * 10 ** 9 }}", CHARS),
    "repeat-list": (B + "{{ [b] * 1000 }}", CHARS),
    "list-literal-output": (B + "{{ [b, b, b, b, b, b, b, b, b, b] }}", CHARS),
    "list-literal-string": (B + "{{ [b, b, b, b, b, b, b, b, b, b]|string }}", CHARS),
    "list-literal-concat": (B + "{{ [b, b, b, b, b, b, b, b, b, b] ~ '' }}", CHARS),
    "namespace-tilde-doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        CHARS,
    ),
    "namespace-plus-doubling": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s|length }}",
        CHARS,
    ),
    "namespace-keeps-list": (B + "{% set ns = namespace() %}{% set ns.l = [b, b] %}", CHARS),
    "quadratic-sum": ("{{ range(100000)|batch(1)|sum(start=[]) }}", CHARS),
    # text built by loops: in {% set %} blocks (never yielded), and output
    "set-block-loop": (
        "{% set x %}{% for i in range(4000) %}" + "c" * 1000 + "{% endfor %}{% endset %}"
        "{{ x|length }}",
        CHARS,  # the 10× total of all text built is named by the same setting
    ),
    "output-loop": ("{% for i in range(100000) %}abcdefgh{% endfor %}", CHARS),
    # work: loops and calls
    "nested-loops": (
        "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
        STEPS,
    ),
    "recursive-loop-inner": (
        "{% for a in ['go'] recursive %}{% if a == 'go' %}{{ loop(range(99999)) }}{% endif %}"
        "{% endfor %}",
        STEPS,
    ),
    "exponential-macro": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        STEPS,
    ),
    "caller-loop": (
        "{% macro m() %}{% for i in range(99999) %}{{ caller() }}{% endfor %}{% endmacro %}"
        "{% call m() %}{% endcall %}",
        STEPS,
    ),
    "block-called-twice": (
        "{% block b %}{% for i in range(4000) %}{% endfor %}{% endblock %}{{ self.b() }}",
        STEPS,
    ),
    "internal-filter-misuse": (  # a negative charge never buys room
        "{% for i in range(1)|_bounded_loop(-10 ** 15) %}{% endfor %}{% set x %}"
        "{% for i in range(4000) %}" + "c" * 1000 + "{% endfor %}{% endset %}",
        CHARS,
    ),
    "attribute-look-ups": (
        "{% set ns = namespace(a=1) %}{% for i in range(4000) %}{{ ns.a }}{{ ns.a }}{% endfor %}",
        STEPS,
    ),
}


@pytest.mark.parametrize(("source", "setting"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_template_is_refused_naming_the_limit(
    small_limits: Limits, source: str, setting: str
) -> None:
    with pytest.raises(RenderLimitError) as caught:
        render(source)
    message = str(caught.value)
    assert message.startswith("template 't' (template): rendering stopped: ")
    assert f"({setting})" in message and f"raise {setting}" in message
    assert isinstance(caught.value, TemplateError)


def test_lazy_filter_chains_count_each_item() -> None:
    configure_rendering(Limits(render_steps=5_000))
    try:
        assert render("{{ range(2000)|select|select|list|length }}") == "1999"
        with pytest.raises(RenderLimitError, match=r"\(STUDIO_MAX_RENDER_STEPS\)"):
            render("{{ range(4000)|select|select|select|list|length }}")
    finally:
        configure_rendering(Limits())


def test_messages_say_how_much_was_allowed(small_limits: Limits) -> None:
    with pytest.raises(TemplateError, match=r"would exceed 10,000 characters \(STUDIO_MAX_"):
        render("{{ 'x'|center(10 ** 8) }}")
    with pytest.raises(TemplateError, match=r"more than 5,000 steps \(loop iterations"):
        render("{% for a in range(99999) %}{% endfor %}")
    with pytest.raises(TemplateError, match=r"more than 100,000 characters of text in all"):
        render("{% set x %}{% for i in range(4000) %}" + "c" * 1000 + "{% endfor %}{% endset %}")


def test_deadline_stops_a_long_rendering() -> None:
    configure_rendering(Limits(render_steps=10**9, render_seconds=0.05))
    try:
        with pytest.raises(RenderLimitError, match=r"ran for more than 0\.05 seconds \(STUDIO_MAX"):
            render("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}")
    finally:
        configure_rendering(Limits())


def test_default_limits_stop_the_attacks_too() -> None:
    assert rendering_limits() == Limits()
    for source in ("{{ 'x'|center(10 ** 8) }}", "{{ '{:>999999999}'.format(1) }}"):
        with pytest.raises(RenderLimitError, match=r"1,000,000 characters \(STUDIO_MAX_RENDER"):
            render(source)
    with pytest.raises(RenderLimitError, match=r"200,000 steps \(loop"):
        render("{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}")


def test_macro_recursing_forever_is_refused() -> None:
    with pytest.raises(RenderLimitError, match=r"too deeply.*STUDIO_MAX_RENDER_STEPS"):
        render("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}")


def test_validation_renders_within_the_limits(small_limits: Limits) -> None:
    # Building a template with label_map and choices renders its answer: bounded like any other.
    with pytest.raises(
        TemplateError, match=r"\(answer\): rendering stopped: .*\(STUDIO_MAX_RENDER"
    ):
        PromptTemplate(
            name="t",
            template="x",
            answer="{{ label|center(10 ** 8) }}",
            label_map={"0": "a"},
            choices=["a"],
        )
    yaml_text = (
        'name: t\ntemplate: x\nanswer: "{% for a in range(99999) %}{% for b in range(99999) %}'
        "{% endfor %}{% endfor %}{{ label }}\"\nlabel_map: {'0': a}\nchoices: [a]\n"
    )
    with pytest.raises(TemplateError, match=r"rendering stopped: .*\(STUDIO_MAX_RENDER_STEPS\)"):
        parse_template(yaml_text, source="editor")


def test_preview_renders_within_the_limits(small_limits: Limits) -> None:
    template = PromptTemplate(name="t", mode="completion", template="{{ text|center(10 ** 8) }}")
    with pytest.raises(RenderLimitError, match=r"\(STUDIO_MAX_RENDER_CHARS\)"):
        fewshot_block(template, [{"text": "a", "label": "b"}])
    with pytest.raises(RenderLimitError, match=r"\(STUDIO_MAX_RENDER_CHARS\)"):
        build_prompt(template, {"text": "a", "label": "b"}, [])


def test_shared_rendering_spends_one_budget(small_limits: Limits) -> None:
    template = PromptTemplate(
        name="t", template="{% for i in range(3000) %}{% endfor %}{{ text }}", mode="completion"
    )
    row = {"text": "a", "label": "b"}
    assert render_fields(template, row).prompt == "a"
    assert render_fields(template, row).prompt == "a"  # each rendering its own 5,000 steps
    with shared_rendering(), pytest.raises(RenderLimitError, match="5,000 steps"):
        render_fields(template, row)
        render_fields(template, row)


def test_concurrent_renderings_never_share_a_budget(small_limits: Limits) -> None:
    # Two threads meet half-way through 3,000 steps each: one shared budget would pass 5,000.
    barrier = threading.Barrier(2, timeout=30)
    source = "{% for i in range(3000) %}{% if i == 1500 %}{{ meet() }}{% endif %}{% endfor %}ok"
    results: list[str] = []

    def meet() -> str:
        barrier.wait()
        return ""

    def worker() -> None:
        results.append(render(source, {"meet": meet}))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == ["ok", "ok"]


def test_configure_rendering_sets_and_restores_limits() -> None:
    configure_rendering(Limits(render_chars=1_000))
    try:
        assert rendering_limits().render_chars == 1_000
        with pytest.raises(RenderLimitError, match="1,000 characters"):
            render("{{ 'x' * 1001 }}")
    finally:
        configure_rendering(Limits())
    assert render("{{ 'x' * 1001 }}") == "x" * 1001


def test_compiled_templates_stay_cached() -> None:
    source = "{{ text|upper }} {{ text|length }}"
    render(source, {"text": "ab"})
    before = _compiled.cache_info()
    assert render(source, {"text": "cd"}) == "CD 2"
    after = _compiled.cache_info()
    assert after.misses == before.misses and after.hits > before.hits  # not compiled again


# -- normal templates render exactly as before -------------------------------------------------


def plain(source: str, context: Mapping[str, Any]) -> str:
    return PLAIN.from_string(source).render(context).rstrip("\n")


def _sample_rows() -> list[dict[str, str]]:
    return [row for path in SAMPLES for row in csv.DictReader(path.open(encoding="utf-8"))]


@pytest.mark.parametrize("path", sorted(PROMPTS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_library_templates_render_as_a_plain_sandbox_does(path: Path) -> None:
    template = load_template(path.stem)
    keys = itertools.cycle(template.label_map or [None])
    for i, sample in enumerate(_sample_rows()):
        row: dict[str, Any] = {
            name: sample.get(name, sample["text"]) for name in template.variables()
        }
        if "input" in row and i % 2:
            row["input"] = ""
        if (key := next(keys)) is not None:
            row["label"] = key
        rendered = render_fields(template, row)
        assert rendered.prompt == plain(template.template, row)
        assert rendered.answer == plain(template.answer, _answer_context(template, row))
        if template.system is not None:
            assert rendered.system == plain(template.system, row)


ROW = {
    "text": "  The film was great.  ",
    "label": "positive",
    "items": ["alpha", "beta", "gamma"],
    "scores": {"b": 2, "a": 1},
    "tree": [{"name": "x", "children": [{"name": "y", "children": []}]}],
    "n": 3,
}
NORMAL = [
    "Review: {{ text|trim }}\nSentiment:",
    "{{ items|join(', ') }} / {{ items|map('upper')|join('|') }} / {{ items|length }}",
    "{% for item in items %}{{ loop.index }}. {{ item|title }}{% if not loop.last %}\n"
    "{% endif %}{% endfor %}",
    "{% for item in items if item != 'beta' %}{{ item }}{{ loop.cycle(',', ';') }}"
    "{{ loop.length }}{% else %}none{% endfor %}",
    "{% for item in [] %}{{ item }}{% else %}empty{% endfor %}",
    "{% for k, v in scores|dictsort %}{{ k }}={{ v }} {% endfor %}",
    "{% for node in tree recursive %}{{ node.name }}[{{ loop(node.children) }}]{% endfor %}",
    "{% macro shot(t, a) %}Q: {{ t }}\nA: {{ a }}{% endmacro %}{{ shot(text|trim, label) }}",
    "{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}{{ label }}{% endcall %}",
    "{% filter upper %}{{ label }} and {{ n }}{% endfilter %}",
    "{% set header %}Label: {{ label }}{% endset %}{{ header }}!",
    "{% set loud | upper | trim %}  {{ label }}  {% endset %}<{{ loud }}>",
    "{% set ns = namespace(total=0, words='') %}{% for i in items %}"
    "{% set ns.total = ns.total + i|length %}{% set ns.words = ns.words ~ i[0] %}{% endfor %}"
    "{{ ns.total }} {{ ns.words }}",
    "{{ '{} is {}'.format(text|trim, label) }} {{ '%s-%03d' % (label, n) }} "
    "{{ '%5.2f'|format(3.14159) }} {{ '{:>8}'.format(label) }}",
    "{{ label ~ ':' ~ n ~ items }} {{ items + ['delta'] }} {{ (label * 2)|center(20) }}",
    "{{ text|wordwrap(10) }}|{{ 'a\nb'|indent(2, true) }}|{{ text|truncate(12) }}",
    "{{ items|batch(2, '-')|list }} {{ items|slice(2)|list }} {{ [[1], [2]]|sum(start=[]) }}",
    "{{ scores|tojson }} {{ items|select('ne', 'beta')|list }} {{ range(n)|sum }}",
    "{{ label.replace('pos', 'neg') }} {{ 'x'.zfill(3) }} {{ label|replace('i', 'I', 1) }}",
    "{% autoescape true %}{{ '<b>' ~ label }}{% endautoescape %} {{ '<b>'|e }}",
    "{{ n ** 2 }} {{ n * 4 }} {{ n % 2 }} {{ 7 // 2 }} {{ items[1:] }} {{ scores.a }}",
]


@pytest.mark.parametrize("source", NORMAL)
def test_normal_templates_render_exactly_as_before(source: str) -> None:
    assert render(source, ROW) == plain(source, ROW)


def test_normal_templates_render_under_small_limits(small_limits: Limits) -> None:
    for source in NORMAL:
        assert render(source, ROW) == plain(source, ROW)


def test_a_template_field_longer_than_the_cap_is_refused_before_parsing() -> None:
    with pytest.raises(TemplateError, match="at most 100,000"):
        parse_template("name: long\ntemplate: '" + "x" * 100_001 + "'\n")
    assert parse_template("name: ok\ntemplate: '" + "x" * 99_000 + "'\n").template


@pytest.mark.parametrize(
    "source",
    [
        "{{ x | _bounded_concat }}",
        "{{ [x] | map('_bounded_concat') | list }}",
        "{% filter _bounded_block %}{{ x }}{% endfilter %}",
    ],
)
def test_the_internal_filters_cannot_be_named(source: str) -> None:
    with pytest.raises(TemplateError, match="internal filter"):
        PromptTemplate(name="t", template=source, answer="{{ y }}")


def test_validating_many_label_values_spends_one_budget() -> None:
    labels = {str(i): "yes" if i % 2 else "no" for i in range(30)}
    source = "{% for i in range(1) %}{% endfor %}{{ label }}"
    values: dict[str, Any] = {
        "name": "t",
        "template": "{{ x }}",
        "answer": source,
        "label_map": labels,
        "choices": ["yes", "no"],
    }
    PromptTemplate(**values)  # fine under the default limits
    configure_rendering(Limits(render_steps=100))
    try:
        PromptTemplate(**values)  # two distinct values: two renderings, well under 100 steps
        many = {str(i): f"w{i}" for i in range(60)}
        with pytest.raises(Exception, match=STEPS):
            PromptTemplate(**{**values, "label_map": many, "choices": list(many.values())})
    finally:
        configure_rendering(Limits())
