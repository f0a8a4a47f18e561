"""``python -m bench <scenario> [options]``: run one benchmark scenario, or ``all`` that fit this machine."""

from __future__ import annotations

import importlib
import sys
import traceback
from types import ModuleType

from bench.report import print_table, save

# Scenario name -> module with ``main(argv) -> dict`` (and optionally ``skip_reason() -> str | None``).
SCENARIOS: dict[str, str] = {
    "overhead": "bench.overhead",
    "profile": "bench.stage_profile",
    "memory": "bench.streaming_memory",
    "writer": "bench.writer_io",
    "text_filter": "bench.text_filter",
    "nms": "bench.nms",
    "refine_quality": "bench.refine_quality",
    "gpu": "bench.gpu_packing",
    "audit_exports": "bench.audit_exports",
    "specialist_times": "bench.specialist_times",
    "near_dups": "bench.near_dups",
    "object_store": "bench.object_store",
    "input_sources": "bench.input_sources",
    "ceiling": "bench.ceiling",
    "driver_memory": "bench.driver_memory",
    "reliability_probes": "bench.reliability_probes",
}


def _module(scenario: str) -> ModuleType | None:
    try:
        return importlib.import_module(SCENARIOS[scenario])
    except ModuleNotFoundError as error:
        if error.name == SCENARIOS[scenario]:
            return None
        raise


def run(scenario: str, argv: list[str]) -> dict:
    module = _module(scenario)
    if module is None:
        result = {"skipped": f"{SCENARIOS[scenario]} is not in this checkout"}
    elif hasattr(module, "skip_reason") and (reason := module.skip_reason()):
        result = {"skipped": reason}
    else:
        result = module.main(argv)
    print_table(scenario, result)
    if "skipped" not in result:
        print(f"saved {save(scenario, result)}")
    return result


def usage() -> str:
    return "usage: python -m bench {" + ",".join([*SCENARIOS, "all"]) + "} [scenario options; --help]"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0 if argv else 2
    scenario, rest = argv[0], argv[1:]
    if scenario == "all":
        failed = []
        for name in SCENARIOS:
            try:
                run(name, [])
            except Exception:
                traceback.print_exc()
                failed.append(name)
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    if scenario not in SCENARIOS:
        print(f"unknown scenario {scenario!r}; {usage()}", file=sys.stderr)
        return 2
    run(scenario, rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
