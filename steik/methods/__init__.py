"""Methods: what defines a training run, as data, split by role.

- `steik.methods.vocabulary`: method, experiment and option names, table labels, run folders.
- `steik.methods.config`: `MethodConfig` (every field with its type, default and accepted
  values), the views read from it (`network_kwargs`, `learning_rate`, `digest`), `validate`.
- `steik.methods.presets`: the presets as tables of layers, `preset`, `merged_overrides`.
- `steik.methods.overrides`: overrides from Python/YAML values and `--set` texts.

The package re-exports each module's public names, so `from steik.methods import preset` is how
the rest of the package and the workflow read them. Nothing here imports torch or numpy: the
workflow checks configurations while it builds its job graph.
"""

from steik.methods.config import (
    FIELDS,
    SRB_SCHEDULE,
    MethodConfig,
    learning_rate,
    network_kwargs,
    validate,
)
from steik.methods.overrides import check_overrides, overrides_from_cli, parse_override
from steik.methods.presets import SCENE_SCHEDULE, merged_overrides, preset
from steik.methods.vocabulary import (
    ACTIVATIONS,
    DIVERGENCE_NORMS,
    DIVERGENCES,
    EXPERIMENTS,
    INITS,
    LOSSES,
    METHOD_LABELS,
    METHODS,
    NEURONS,
    OUTPUT_MAPS,
    POISSON,
    STEPS,
    method_label,
    parse_run,
    run_label,
    run_name,
)

__all__ = [
    "ACTIVATIONS",
    "DIVERGENCES",
    "DIVERGENCE_NORMS",
    "EXPERIMENTS",
    "FIELDS",
    "INITS",
    "LOSSES",
    "METHODS",
    "METHOD_LABELS",
    "NEURONS",
    "OUTPUT_MAPS",
    "POISSON",
    "SCENE_SCHEDULE",
    "SRB_SCHEDULE",
    "STEPS",
    "MethodConfig",
    "check_overrides",
    "learning_rate",
    "merged_overrides",
    "method_label",
    "network_kwargs",
    "overrides_from_cli",
    "parse_override",
    "parse_run",
    "preset",
    "run_label",
    "run_name",
    "validate",
]
