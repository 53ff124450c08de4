"""Method presets: SPEC values, overrides, refusals."""

from __future__ import annotations

import dataclasses

import pytest

from steik.errors import SteikError
from steik.methods import METHODS, parse_override, preset
from steik.model import build_network


def test_steik_srb_matches_spec():
    c = preset("steik", "srb")
    assert (c.neuron, c.hidden, c.layers, c.init, c.div, c.div_norm) == (
        "quadratic",
        128,
        5,
        "mfgi",
        "directional",
        "l1",
    )
    assert (c.w_sdf, c.w_inter, c.w_normal, c.w_eikonal) == (2e3, 1e2, 1e2, 5e1)
    assert c.schedule_knots == (1e2, 0.2, 1e2, 0.4, 0.0, 0.0) and c.schedule == "linear"
    assert (c.lr, c.iterations, c.n_manifold, c.n_offsurface, c.grad_clip) == (
        1e-4,
        10_000,
        15_000,
        15_000,
        10.0,
    )
    assert c.sphere == (1.6, 0.1)


def test_rows_of_the_tables():
    digs = preset("digs", "srb")
    assert (digs.neuron, digs.hidden, digs.div, digs.w_sdf, digs.lr) == (
        "linear",
        256,
        "full",
        3e3,
        5e-5,
    )
    assert (
        preset("lin_lln", "shapenet").div == "directional"
        and preset("lin_lln", "shapenet").neuron == "linear"
    )
    assert (
        preset("qua_ldiv", "shapenet").div == "full"
        and preset("qua_ldiv", "shapenet").hidden == 128
    )
    assert preset("steik", "shapenet").w_sdf == 5e3 and preset("steik", "shapenet").lr == 5e-5
    igr = preset("igr_wo_n", "srb")
    assert (igr.activation, igr.init, igr.layers, igr.hidden, igr.w_inter, igr.div) == (
        "softplus",
        "geometric_relu",
        8,
        512,
        0.0,
        "none",
    )
    assert (
        preset("siren_wo_n", "srb").init == "siren" and preset("siren_wo_n", "srb").sphere is None
    )
    scene = preset("steik", "scene")
    assert (
        scene.layers,
        scene.hidden,
        scene.init,
        scene.lr,
        scene.iterations,
        scene.schedule_knots[0],
    ) == (8, 256, "siren", 8e-6, 100_000, 1e1)
    two = preset("steik", "2d")
    assert (two.layers, two.hidden, two.grad_clip, two.sphere, two.lr) == (
        4,
        128,
        0.0,
        (1.6, 1.0),
        5e-5,
    )
    # The reference 2D networks: DiGS's linear 5 x 128 (66,561 weights), StEik's quadratic 4 x 128.
    digs = preset("digs", "2d")
    assert (digs.layers, digs.hidden) == (5, 128)
    assert build_network(digs, 2).n_params_per_shape() == 66_561
    assert build_network(two, 2).n_params_per_shape() == 3 * (3 * 128) + 3 * 3 * 128 * 129 + 3 * 129


@pytest.mark.parametrize("name", METHODS)
def test_every_preset_builds_a_network(name):
    c = preset(name, "srb", hidden=8, layers=2)
    assert build_network(c, 3).n_params_per_shape() > 0


def test_overrides_and_immutability():
    c = preset("steik", "srb", hidden=64, iterations=5)
    assert c.hidden == 64 and c.iterations == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.hidden = 3  # type: ignore[misc]
    assert preset("steik", "srb").hidden == 128  # a previous override never leaks


def test_unknown_names_list_valid_ones():
    with pytest.raises(SteikError, match="valid methods: igr_wo_n, siren_wo_n, digs"):
        preset("neural_splines", "srb")
    with pytest.raises(SteikError, match="valid experiments: srb, shapenet, scene, 2d"):
        preset("steik", "kitti")
    with pytest.raises(SteikError, match=r"unknown method field.*hiddn.*valid fields: name"):
        preset("steik", "srb", hiddn=3)
    with pytest.raises(SteikError, match="div = 'half'"):
        preset("steik", "srb", div="half")


def test_parse_override_types():
    assert parse_override("hidden=64") == ("hidden", 64)
    assert parse_override("lr=1e-3") == ("lr", 1e-3)
    assert parse_override("schedule_knots=1,0.5,2,3") == ("schedule_knots", (1.0, 0.5, 2.0, 3.0))
    assert parse_override("use_normals=true") == ("use_normals", True)
    with pytest.raises(SteikError, match="cannot read 'abc' as int"):
        parse_override("hidden=abc")
    with pytest.raises(SteikError, match="FIELD=VALUE"):
        parse_override("hidden")
