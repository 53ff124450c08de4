"""Networks: the quadratic neuron, parameter counts, initialisations, K independence."""

from __future__ import annotations

import pytest
import torch

from steik.nn import LinearLayer, QuadraticLayer, SDFNetwork


def test_quadratic_layer_matches_formula_float64():
    torch.manual_seed(0)
    layer = QuadraticLayer(5, 7, n_shapes=3).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    x = torch.randn(3, 11, 5, dtype=torch.float64)
    out = layer.out_features
    w1, w2 = layer.weight12[:, :out], layer.weight12[:, out:]
    b1, b2 = layer.bias12[:, :out], layer.bias12[:, out:]
    expected = torch.stack(
        [
            (x[k] @ w1[k].T + b1[k]) * (x[k] @ w2[k].T + b2[k])
            + (x[k] * x[k]) @ layer.weight3[k].T
            + layer.bias3[k]
            for k in range(3)
        ]
    )
    assert torch.allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("neuron", "layers", "hidden", "count"),
    [
        ("linear", 5, 256, 264_449),
        ("quadratic", 5, 128, 200_067),
        ("linear", 8, 512, 1_841_153),
        ("quadratic", 8, 256, 1_385_475),
    ],
)
def test_parameter_counts_match_paper(neuron, layers, hidden, count):
    net = SDFNetwork(3, hidden, layers, neuron, n_shapes=1)
    assert sum(p.numel() for p in net.parameters()) == count
    assert SDFNetwork(3, hidden, layers, neuron, n_shapes=2).n_params_per_shape() == count


@pytest.mark.parametrize("init", ["siren", "geometric_sine", "mfgi"])
def test_fresh_quadratic_network_is_close_to_linear_network(init):
    sphere = None if init == "siren" else (1.6, 0.1)
    quad = SDFNetwork(3, 32, 3, "quadratic", "sine", init, sphere, seeds=[4]).double()
    lin = SDFNetwork(3, 32, 3, "linear", "sine", init, sphere, seeds=[9]).double()
    with torch.no_grad():
        for q, l in zip(quad.layers, lin.layers, strict=True):
            w1, b1 = q.first_map()
            l.weight.copy_(w1)
            l.bias.copy_(b1)
    x = torch.rand(1, 500, 3, dtype=torch.float64) * 2 - 1
    diff = (quad(x) - lin(x)).abs().max().item()
    assert diff < 5e-3 * lin(x).abs().max().item()
    # and the quadratic part really is there: perturbing W2 changes the output
    with torch.no_grad():
        quad.layers[1].weight12[:, 32:].add_(0.1)
    assert (quad(x) - lin(x)).abs().max().item() > 10 * diff


def test_geometric_init_starts_from_a_sphere():
    directions = torch.nn.functional.normalize(torch.randn(1, 200, 3), dim=-1)
    for init in ("geometric_sine", "mfgi"):
        net = SDFNetwork(3, 64, 4, "quadratic", "sine", init, (1.6, 0.1), seeds=[0])
        # u rises with the radius and barely varies over a sphere about the origin
        inner, outer = net(0.3 * directions), net(0.9 * directions)
        assert (outer > inner).all()
        assert inner.std() < 0.2 * (outer.mean() - inner.mean()).abs()


def test_shapes_in_a_batch_are_initialised_like_single_runs():
    batch = SDFNetwork(2, 16, 2, "quadratic", seeds=[1, 2, 3], n_shapes=3)
    single = SDFNetwork(2, 16, 2, "quadratic", seeds=[2], n_shapes=1)
    for name, p in single.named_parameters():
        assert torch.equal(dict(batch.named_parameters())[name][1:2], p)
    assert not torch.equal(batch.layers[0].weight12[0], batch.layers[0].weight12[1])


def test_linear_layer_is_per_shape():
    layer = LinearLayer(3, 4, n_shapes=2)
    x = torch.randn(2, 5, 3)
    y = layer(x)
    with torch.no_grad():
        layer.weight[1].add_(1.0)
    y2 = layer(x)
    assert torch.equal(y[0], y2[0]) and not torch.equal(y[1], y2[1])


def test_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="valid: linear, quadratic"):
        SDFNetwork(neuron="cubic")
    with pytest.raises(ValueError, match="unknown init"):
        SDFNetwork(init="xavier")
