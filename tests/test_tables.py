"""Tables: aggregation checked against an independent pandas groupby, paper layouts, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from steik.errors import SteikError
from steik.rows import METRICS, ROW_COLUMNS
from steik.runtime_table import runtime_table, write_runtime
from steik.tables import PAPER_TABLE1, PAPER_TABLE2, read_metrics, summarize, write_tables

SCAN = ("chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan")
SHAPENET = ("chamfer_sq", "iou")


def make_row(rng, dataset, method, shape, seed=0, status="ok", metrics=SCAN + SHAPENET):
    """One synthetic metrics row with DESIGN 2 columns; metrics outside `metrics` are NaN."""
    row = {c: math.nan for c in ROW_COLUMNS}
    quadratic = method in ("steik", "qua_ldiv")
    row.update(
        dataset=dataset, shape=shape, method=method, seed=seed,
        neuron="quadratic" if quadratic else "linear",
        structure="5 x 128" if quadratic else "5 x 256", init="mfgi", div="directional",
        n_params=200_067 if quadratic else 264_449, iterations=100, n_points=4000,
        train_seconds=float(rng.uniform(1, 9)), ms_per_iter=float(rng.uniform(10, 90)),
        extract_seconds=float(rng.uniform(0.1, 2)), device="cpu", torch_version="2.x",
        steik_version="0.1.0", config_hash="abc", status=status, message="", n_shapes_batch=1,
        source=f"scans/{shape}.ply",
    )
    for metric in metrics:
        row[metric] = float(rng.uniform(0.01, 1.0))
    return row


def write_rows(tmp_path, rows):
    paths = []
    for i, row in enumerate(rows):
        path = tmp_path / "runs" / f"{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([row])[list(ROW_COLUMNS)].to_parquet(path, index=False)
        paths.append(path)
    return paths


@pytest.fixture
def scan_rows():
    rng = np.random.default_rng(3)
    rows = []
    for method in ("digs", "steik", "siren_wo_n"):
        for shape in ("anchor", "dc", "gargoyle", "daratech"):
            rows.append(make_row(rng, "srb", method, shape, metrics=(*SCAN, "chamfer_l1")))
    rows[1]["status"] = "diverged"
    rows[5].update(status="no_surface", chamfer=math.nan, hausdorff=math.nan)
    return rows


def test_summary_equals_independent_groupby(tmp_path, scan_rows):
    rows = read_metrics(write_rows(tmp_path, scan_rows))
    summary = summarize(rows).set_index("method")
    frame = pd.DataFrame(scan_rows)
    grouped = frame.groupby("method")
    for metric in METRICS:
        expected_mean = grouped[metric].mean()  # pandas skips NaN
        expected_median = grouped[metric].median()
        expected_std = grouped[metric].std(ddof=0)
        for method in frame["method"].unique():
            for name, expected in (("mean", expected_mean), ("median", expected_median),
                                   ("std", expected_std)):
                got = summary.loc[method, f"{metric}_{name}"]
                want = expected[method]
                if math.isnan(want):
                    assert math.isnan(got), (metric, name, method)
                else:
                    assert got == pytest.approx(want, rel=1e-12), (metric, name, method)
    failures = frame.assign(failed=frame["status"] != "ok").groupby("method")["failed"].sum()
    assert summary["n_failures"].to_dict() == failures.to_dict()
    assert summary["n_shapes"].to_dict() == grouped["shape"].nunique().to_dict()
    assert list(summary.index) == ["digs", "steik", "siren_wo_n"]  # order of appearance


def test_write_tables_files_and_paper_rows(tmp_path, scan_rows):
    paths = write_tables(write_rows(tmp_path, scan_rows), "srb", tmp_path / "tables", paper="srb")
    rows = pd.read_parquet(paths["rows"])
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert len(rows) == len(scan_rows)
    assert not rows.duplicated(["method", "shape", "seed"]).any()
    summary = pd.read_parquet(paths["summary"])
    assert set(summary["method"]) == {"digs", "steik", "siren_wo_n"}
    markdown = paths["markdown"].read_text()
    assert "Table 1 layout" in markdown and "Table 2 layout" not in markdown
    for label in PAPER_TABLE1:
        assert f"*{label} (paper)*" in markdown
    # Our DiGS d_C mean appears with 4 significant digits.
    digs = summary.set_index("method").loc["digs", "chamfer_mean"]
    assert f"{digs:.4g}" in markdown
    html = paths["html"].read_text()
    assert "font-style: italic" in html and "PHASE+FF (paper)" in html
    # Without --paper, no reference rows.
    plain = write_tables(write_rows(tmp_path, scan_rows), "srb", tmp_path / "plain")
    assert "(paper)" not in plain["markdown"].read_text()


def test_shapenet_layout(tmp_path):
    rng = np.random.default_rng(5)
    rows = [make_row(rng, "shapenet", m, f"lamp_{i}", metrics=SHAPENET)
            for m in ("digs", "steik") for i in range(5)]
    paths = write_tables(write_rows(tmp_path, rows), "shapenet", tmp_path / "t", paper="shapenet")
    markdown = paths["markdown"].read_text()
    assert "Table 2 layout" in markdown and "Table 1 layout" not in markdown
    assert "sq. Chamfer median" in markdown and "IoU std" in markdown
    for label in PAPER_TABLE2:
        assert f"*{label} (paper)*" in markdown
    steik = [r["iou"] for r in rows if r["method"] == "steik"]
    assert f"{np.median(steik):.4g}" in markdown


@pytest.mark.parametrize("problem", ["missing_column", "no_rows", "duplicate", "other_dataset"])
def test_bad_input_fails_cleanly(tmp_path, scan_rows, problem):
    paths = write_rows(tmp_path, scan_rows[:3])
    if problem == "missing_column":
        pd.read_parquet(paths[0]).drop(columns=["iou"]).to_parquet(paths[0])
    elif problem == "no_rows":
        paths = paths[:1]
        pd.read_parquet(paths[0]).iloc[:0].to_parquet(paths[0])
    elif problem == "duplicate":
        paths.append(paths[0])
    else:
        frame = pd.read_parquet(paths[0])
        frame["dataset"] = "demo3d"
        frame.to_parquet(paths[0])
    out = tmp_path / "tables"
    with pytest.raises(SteikError) as error:
        write_tables(paths, "srb", out)
    if problem in ("missing_column", "no_rows"):
        assert str(paths[0]) in str(error.value)
    assert not out.exists() or not any(out.iterdir())


def test_runtime_table(tmp_path, scan_rows):
    rng = np.random.default_rng(7)
    extra = [make_row(rng, "demo3d", "steik", f"s{i}") for i in range(3)]
    table_a = write_tables(write_rows(tmp_path / "a", scan_rows), "srb", tmp_path / "t")["rows"]
    table_b = write_tables(write_rows(tmp_path / "b", extra), "demo3d", tmp_path / "t")["rows"]
    paths = write_runtime([table_a, table_b], tmp_path / "t" / "runtime.parquet")
    table = pd.read_parquet(paths["table"])
    steik = table[table["method"] == "steik"].iloc[0]
    expected = np.median([r["ms_per_iter"] for r in scan_rows + extra if r["method"] == "steik"])
    assert steik["ms_per_iter"] == pytest.approx(expected)
    assert steik["n_runs"] == 7 and steik["datasets"] == "srb, demo3d"
    assert steik["n_params"] == 200_067
    assert len(runtime_table(pd.concat([pd.DataFrame(scan_rows), pd.DataFrame(extra)]))) == 3
    markdown = paths["markdown"].read_text()
    assert "*StEik (paper)*" in markdown and "80.62" in markdown
    assert paths["html"].is_file()


def test_table1_note_names_the_columns_that_need_the_archive(tmp_path):
    """Runs on the SRB scans alone (d_C, d_H NaN): the note under Table 1 says which columns
    need the full archive; with the dense ground truth there is no such note."""
    rng = np.random.default_rng(11)
    one_sided = ("chamfer_scan", "hausdorff_scan")
    rows = [make_row(rng, "srb", m, s, metrics=one_sided) for m in ("digs", "steik")
            for s in ("anchor", "dc")]  # fmt: skip
    markdown = write_tables(write_rows(tmp_path, rows), "srb", tmp_path / "t", paper="srb")
    text = markdown["markdown"].read_text()
    note = "d_C and d_H need the benchmark's dense ground truth"
    assert note in text and "deep_geometric_prior_data.zip" in text
    assert note in markdown["html"].read_text()
    table = text.split("## srb: Table 1 layout", 1)[1].split("##", 1)[0]
    ours = [line for line in table.splitlines() if line.startswith("| StEik ")]
    cells = [cell.strip() for cell in ours[0].split("|")[3:7]]
    assert len(ours) == 1 and cells[:2] == ["", ""] and all(cells[2:])  # d_C, d_H empty
    full = [make_row(rng, "srb", "steik", s) for s in ("anchor", "dc")]
    text = write_tables(write_rows(tmp_path / "full", full), "srb", tmp_path / "f", paper="srb")
    assert note not in text["markdown"].read_text()
