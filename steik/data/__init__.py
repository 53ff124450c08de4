"""Datasets: the registry, verified downloads (`fetch`), file readers (`io`), generated shapes
(`shapes2d`, `shapes3d`), folder datasets and the per-shape sample files (`sample`)."""
