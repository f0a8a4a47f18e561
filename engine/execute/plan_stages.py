"""Planning the stages: each configured stage instantiated (not loaded), its order and weights checked
before any work starts, and what the run needs to know of it (fingerprint, model, what it needs and makes)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.config.registry import SPECIALISTS
from engine.config.settings import EngineConfig, StageConfig
from engine.config.typed_config import ConfigError
from engine.refresh.incremental import StageSpec, stage_inputs
from schemas.stage import BaseStage, Resources, UntrustedWeights, WeightsCheck, WeightsNotFound, stage_fingerprint


@dataclass(frozen=True)
class PlannedStage:
    """A configured stage with its fingerprint, model identity and declared inputs and outputs."""

    config: StageConfig
    fingerprint: str
    model: str
    holds_model: bool
    requires: frozenset[str] = frozenset()
    produces: frozenset[str] = frozenset()
    needs_pixels: bool = True  # unknown stages are assumed to; plan_stages says what each really needs

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def resources(self) -> Resources:
        return self.config.resources

    def spec(self) -> StageSpec:
        return StageSpec(self.name, self.kind, self.fingerprint, self.requires, self.produces)


def plan_stages(config: EngineConfig) -> list[PlannedStage]:
    """Every stage of ``config`` in run order; a stage placed before what it needs is a config error, and
    missing weights are reported all at once. Each stage's fingerprint is the one rows record: what it
    computes and what its place in the order gives it (``stage_inputs``, ``schemas.stage.stage_fingerprint``).
    Pickled weights the profile neither trusts nor pins are refused here too, before any work."""
    stages: list[BaseStage] = []
    missing: list[WeightsCheck] = []
    untrusted: list[WeightsCheck] = []
    produced: set[str] = set()
    for stage_config in config.stages:
        stage: BaseStage = stage_config.create()
        if stage.requires - produced:
            raise ConfigError(
                f"{stage.kind} stage {stage.name!r} needs {sorted(stage.requires - produced)} from an "
                "earlier stage; put a specialist that produces them before it"
            )
        produced |= stage.produces
        check = stage.check_weights()
        if not check.found:
            missing.append(check)
        elif not check.trusted:
            untrusted.append(check)
        stages.append(stage)
    if missing:
        raise WeightsNotFound(describe_missing(missing))
    if untrusted:
        raise UntrustedWeights("; ".join(check.detail for check in untrusted))
    inputs = stage_inputs([(stage.name, stage.kind, stage.fingerprint()) for stage in stages])
    planned = []
    for stage_config, stage in zip(config.stages, stages, strict=True):
        stage.inputs = inputs[stage.name]
        # Manifests list the specialists' models; a filter's model counts in its fingerprint only.
        model = stage.model_id if stage.kind == SPECIALISTS else ""
        placed = replace(stage_config, inputs=stage.inputs)
        planned.append(
            PlannedStage(
                placed,
                stage_fingerprint(stage),
                model,
                stage.holds_model,
                stage.requires,
                stage.produces,
                stage.needs_pixels,
            )
        )
    return planned


def weights_checks(config: EngineConfig) -> list[WeightsCheck]:
    """Where each configured specialist looks for its weights, in profile order (nothing is loaded)."""
    return [stage.create().check_weights() for stage in config.specialists]


def describe_missing(missing: list[WeightsCheck]) -> str:
    return "weights missing for " + "; ".join(
        f"{c.specialist} ({c.backend}) {c.model!r}: looked in {', '.join(c.looked_in) or '-'}" for c in missing
    )
