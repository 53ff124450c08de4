"""The one type checker (`steik.typecheck`): method overrides from values and `--set` texts, the
workflow's override entries, and the `--options` of the other commands."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from steik.cli._options import build_config
from steik.data.sample import SampleConfig
from steik.errors import SteikError
from steik.methods import check_overrides, merged_overrides, parse_override, preset
from steik.poisson import PoissonConfig
from steik.typecheck import spec, typed


@pytest.mark.parametrize(
    ("key", "text", "value", "message"),
    [
        ("use_normals", "maybe", "maybe", "use_normals must be true or false, got 'maybe'"),
        ("hidden", "abc", "abc", "hidden must be a whole number, got 'abc'"),
        ("hidden", "16.7", 16.7, "hidden must be a whole number, got 16.7"),
        ("lr", "nan", float("nan"), "lr must be a finite number, got nan"),
        ("div", "half", "half", "div = 'half' is not valid; choose one of none, full, directional"),
        ("checkpoint_every", "-1", -1, "checkpoint_every must be 0 or more, got -1"),
    ],
)
def test_a_text_and_a_value_are_refused_alike(key, text, value, message):
    """`--set KEY=TEXT` and the same value in YAML/JSON end in the same message."""
    with pytest.raises(SteikError, match=f"^method field {message}$"):
        parse_override(f"{key}={text}")
    with pytest.raises(SteikError, match=f"^method field {message}$"):
        check_overrides({key: value})


def test_texts_and_values_are_typed_like_their_field():
    assert parse_override("iterations=1e3") == ("iterations", 1000)
    assert parse_override("lr=1") == ("lr", 1.0) and isinstance(parse_override("lr=1")[1], float)
    assert parse_override("skip_in=[2, 4]") == ("skip_in", (2, 4))
    assert parse_override("notes=a, b") == ("notes", ("a", "b"))
    assert parse_override("use_normals=FALSE") == ("use_normals", False)
    typed_values = check_overrides({"hidden": 64.0, "w_sdf": 3, "schedule_knots": [1, 0.5, 0]})
    assert typed_values == {"hidden": 64, "w_sdf": 3.0, "schedule_knots": (1.0, 0.5, 0.0)}
    assert [type(v) for v in typed_values.values()] == [int, float, tuple]
    with pytest.raises(SteikError, match=r"unknown method fields 'hiddn', 'lrr'; valid fields"):
        check_overrides({"hiddn": 3, "lrr": 1})
    with pytest.raises(SteikError, match="must be a list of finite numbers"):
        check_overrides({"schedule_knots": [1, float("inf")]})


def test_workflow_entries_pick_by_dataset_method_and_neuron():
    entries = [
        {"set": {"iterations": 1000, "hidden": 64}},
        {"datasets": ["demo3d"], "neurons": ["quadratic"], "set": {"hidden": 128}},
        {"methods": ["digs"], "set": {"lr": 1}},
    ]
    steik = merged_overrides(entries, "demo3d", "steik", "srb")
    assert steik == {"iterations": 1000, "hidden": 128}
    assert merged_overrides(entries, "demo2d", "steik", "2d") == {"iterations": 1000, "hidden": 64}
    # values stay as written (the workflow passes them on as JSON); `preset` types them
    assert merged_overrides(entries, "demo3d", "digs", "srb") == {
        "iterations": 1000, "hidden": 64, "lr": 1,
    }  # fmt: skip
    assert preset("digs", "srb", **merged_overrides(entries, "demo3d", "digs", "srb")).lr == 1.0


def test_options_of_other_commands_use_the_same_checker():
    poisson = build_config(PoissonConfig, {"depth": 9.0, "point_weight": 4}, "--options")
    assert (poisson.depth, poisson.point_weight) == (9, 4.0)
    assert isinstance(poisson.depth, int) and isinstance(poisson.point_weight, float)
    assert build_config(SampleConfig, {"n_occ": None}, "--options").n_occ is None
    with pytest.raises(SteikError, match="--options: depth must be a whole number, got '8'"):
        build_config(PoissonConfig, {"depth": "8"}, "--options")
    with pytest.raises(SteikError, match="n_occ must be a whole number or null, got 'all'"):
        build_config(SampleConfig, {"n_occ": "all"}, "--options")
    with pytest.raises(SteikError, match="unknown --options field 'dept'; valid fields: depth"):
        build_config(PoissonConfig, {"dept": 8}, "--options")


def test_a_field_with_choices_is_one_line():
    """A new string field with a fixed set of values needs only its declaration."""

    @dataclass(frozen=True)
    class Options:
        step: str = spec("auto", choices=("auto", "explicit"))
        rate: float = spec(0.5, above=0, at_most=1)

    assert typed(Options, "step", "explicit", "step") == "explicit"
    with pytest.raises(SteikError, match="step = 'fast' is not valid; choose one of auto, expl"):
        typed(Options, "step", "fast", "step")
    with pytest.raises(SteikError, match=r"rate must be positive and at most 1, got 0\.0"):
        typed(Options, "rate", "0", "rate", text=True)
