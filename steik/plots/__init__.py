"""Figures of the report, one module per kind: 2D level sets and the snapshot strip
(`levelsets`), renders of 3D reconstructions (`renders`), loss curves (`losses`), with what they
share (`figure`: labels from paths, saving). The quality-per-second figure lives with its checks
in `steik.quality`.

Each figure has a builder that returns a matplotlib `Figure` (not registered with pyplot, so
nothing global is left open) and a command-facing function that checks the output path, builds
and saves it. Tests read the builders' figures: line data, contour vertices, images, titles.
Everything is drawn offscreen (matplotlib's Agg renderer; no display, no OpenGL).

Labels come from the workflow's paths: `.../<run>/<shape>/<file>` with `<run>` the method name
(suffixed `-seed<S>` for seeds other than 0).
"""
