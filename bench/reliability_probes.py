"""``python -m bench reliability_probes``: the hostile-input and failure probes of the reliability issue, re-run.

Each probe builds one bad situation in a temporary folder (a thin banner image, a FIFO, a link to
/dev/zero, a symlink loop, a non-UTF-8 file name, a bad input table, a swapped or truncated shard, a
deleted version file, a bad setting, SIGTERM mid-run, a missing input root, ``--limit``, pickled weights)
and drives the real ``fld-engine`` command line in a subprocess with a time limit, so a hang shows as a
failed probe instead of a hung benchmark. It prints what happened and whether that is the wanted outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "images"
# One cheap real model (rapidocr ships with its ONNX weights) and one filter: enough to meet every probe.
PROFILE = """extends: offline
specialists:
  - {name: ocr, backend: rapidocr, resources: {num_cpus: 1, batch_size: 4}}
filters:
  - {name: nms, backend: nms, resources: {num_cpus: 0.25, batch_size: 64}}
"""


@dataclass(frozen=True)
class Outcome:
    probe: str
    ok: bool
    seen: str


@dataclass(frozen=True)
class Cli:
    """The command line in a subprocess: exit code, stdout, stderr and seconds; exit 124 past ``timeout``."""

    profile: Path

    def __call__(self, *args: str, timeout: float = 300, config: bool = True) -> tuple[int, str, str, float]:
        extra = ["--config", str(self.profile)] if config and args and args[0] == "run" else []
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "engine.cli", *args, *extra], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return 124, "", f"no result after {timeout:.0f} s", time.perf_counter() - started
        return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _traceback_free(stderr: str) -> bool:
    return "Traceback" not in stderr


def _images(folder: Path, count: int = 2, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(start, start + count):
        pixels = np.random.default_rng(index).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{index}.png")
    return folder


def _version(output: Path) -> dict:
    return json.loads((output / "manifest.json").read_text())


def probe_thin_banner(cli: Cli, tmp: Path) -> Outcome:
    folder = _images(tmp / "in", 1)
    # 16 px wide passes the min_side gate; rapidocr would still enlarge it about 46-fold a side.
    Image.new("RGB", (16, 1600), "white").save(folder / "banner.png")
    code, _, err, seconds = cli("run", "--input", str(folder), "--output", str(tmp / "out"), "--quiet", timeout=240)
    if code != 0:
        return Outcome(
            "thin 16x1600 PNG through rapidocr", False, f"exit {code} after {seconds:.0f} s: {_last_line(err)}"
        )
    rows = pq.read_table(tmp / "out" / "annotations").to_pylist()
    errors = [e for row in rows for e in row["errors"] or [] if "banner" in row["source_uri"]]
    seen = f"published in {seconds:.0f} s; banner stage error: {errors[0]['message'][:90] if errors else 'none'}"
    return Outcome("thin 16x1600 PNG through rapidocr", bool(errors) and len(rows) == 2, seen)


def probe_special_files(cli: Cli, tmp: Path) -> Outcome:
    folder = _images(tmp / "in", 1)
    os.mkfifo(folder / "fifo.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    loop = folder / "loop"
    loop.mkdir()
    for name in ("a", "b", "c"):
        (loop / name).symlink_to(folder)
    code, _, err, seconds = cli("run", "--input", str(folder), "--output", str(tmp / "out"), "--quiet", timeout=240)
    if code != 0:
        return Outcome(
            "FIFO, /dev/zero link, symlink loop", False, f"exit {code} after {seconds:.0f} s: {_last_line(err)}"
        )
    reasons = pq.read_table(tmp / "out" / "quarantine").column("reason").to_pylist()
    annotated = _version(tmp / "out")["counts"]["images"]
    return Outcome(
        "FIFO, /dev/zero link, symlink loop",
        annotated == 1 and len(reasons) == 2,
        f"{seconds:.0f} s: {annotated} annotated, quarantined {sorted(reasons)}",
    )


def probe_non_utf8_name(cli: Cli, tmp: Path) -> Outcome:
    folder = _images(tmp / "in", 1)
    name = os.fsencode(folder) + b"/caf\xe9.png"
    Image.new("RGB", (32, 32), "red").save(open(name, "wb"), format="PNG")  # noqa: SIM115 (closed by PIL)
    code, _, err, _ = cli("run", "--input", str(folder), "--output", str(tmp / "out"), "--quiet")
    images = _version(tmp / "out")["counts"]["images"] if code == 0 else 0
    return Outcome(
        "non-UTF-8 file name", code == 0 and images == 2, f"exit {code}, {images} annotated {_last_line(err)}"
    )


def probe_bad_tables(cli: Cli, tmp: Path) -> Outcome:
    tmp.mkdir(parents=True, exist_ok=True)
    seen, ok = [], True
    pq.write_table(pa.table({"path": [1, 2]}), tmp / "ints.parquet")
    (tmp / "corrupt.parquet").write_bytes(b"PAR1 not really")
    (tmp / "latin1.txt").write_bytes(b"caf\xe9.png\n")
    for bad in ("ints.parquet", "corrupt.parquet", "latin1.txt"):
        code, _, err, _ = cli("run", "--input", str(tmp / bad), "--output", str(tmp / f"out-{bad}"), "--quiet")
        ok &= code in (1, 2) and _traceback_free(err) and len(err.strip().splitlines()) == 1
        seen.append(f"{bad}: exit {code} '{_last_line(err)[:70]}'")
    return Outcome("bad input tables (int paths, corrupt Parquet, non-UTF-8 list)", ok, "; ".join(seen))


def _dataset(cli: Cli, tmp: Path) -> Path:
    output = tmp / "out"
    code, _, err, _ = cli("run", "--input", str(_images(tmp / "in", 3)), "--output", str(output), "--quiet")
    if code != 0:
        raise RuntimeError(f"making the probe dataset failed: {_last_line(err)}")
    return output


def probe_swapped_shard(cli: Cli, tmp: Path) -> Outcome:
    first, second = _dataset(cli, tmp / "a"), _dataset(cli, tmp / "b")
    mine = first / _version(first)["shards"][0]["path"]
    theirs = second / _version(second)["shards"][0]["path"]
    mine.write_bytes(theirs.read_bytes())  # same row count, other images
    code, _, err, _ = cli("inspect", str(first), "--verify")
    export_code, _, export_err, _ = cli("export", str(first), "--format", "coco", "--to", str(tmp / "coco"))
    ok = code != 0 and export_code != 0 and _traceback_free(err + export_err)
    return Outcome(
        "shard swapped for another valid one",
        ok,
        f"inspect --verify exit {code}, export exit {export_code}: {_last_line(export_err)}",
    )


def probe_truncated_shard(cli: Cli, tmp: Path) -> Outcome:
    output = _dataset(cli, tmp)
    shard = output / _version(output)["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    code, _, err, _ = cli("audit", str(output))
    export_code, _, export_err, _ = cli("export", str(output), "--format", "coco", "--to", str(tmp / "coco"))
    _, _, retry_err, _ = cli("export", str(output), "--format", "coco", "--to", str(tmp / "coco"))
    ok = code != 0 and export_code != 0 and "already" not in retry_err and _traceback_free(err + export_err)
    return Outcome(
        "truncated shard",
        ok,
        f"audit exit {code} '{_last_line(err)[:60]}'; export exit {export_code}, "
        f"retry says '{_last_line(retry_err)[:50]}'",
    )


def probe_output_paths(cli: Cli, tmp: Path) -> Outcome:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "file").write_text("x")
    seen, ok = [], True
    for output in (tmp / "file", tmp / "file" / "under"):
        code, _, err, seconds = cli("run", "--input", str(SAMPLES), "--output", str(output), "--quiet")
        ok &= code == 2 and seconds < 30 and _traceback_free(err)
        seen.append(f"exit {code} in {seconds:.1f} s")
    return Outcome("output is a file / under a file", ok, "; ".join(seen))


def probe_deleted_version(cli: Cli, tmp: Path) -> Outcome:
    output = _dataset(cli, tmp)
    (output / "versions" / "v000001.json").unlink()
    (tmp / "in" / "img_0.png").unlink()
    cli("run", "--input", str(tmp / "in"), "--output", str(output), "--quiet")
    numbers = sorted(p.name for p in (output / "versions").iterdir())
    return Outcome("deleted latest vN.json", numbers == ["v000001.json", "v000002.json"], f"versions now {numbers}")


def probe_bad_settings(cli: Cli, tmp: Path) -> Outcome:
    tmp.mkdir(parents=True, exist_ok=True)
    seen, ok = [], True
    for key, value in (
        ("writer.rows_per_shard", "0"),
        ("writer.compression", "zstdd"),
        ("ingest.max_bytes", "0"),
        ("ingest.extensions", "[]"),
    ):
        code, _, err, seconds = cli(
            "run", "--input", str(SAMPLES), "--output", str(tmp / key), "--set", f"{key}={value}", "--quiet"
        )
        ok &= code == 2 and key in err and seconds < 30 and not (tmp / key).exists()
        seen.append(f"{key}={value}: exit {code}")
    return Outcome("settings out of range", ok, "; ".join(seen))


def probe_sigterm(cli: Cli, tmp: Path) -> Outcome:
    folder = _images(tmp / "in", 40)
    args = [
        sys.executable,
        "-m",
        "engine.cli",
        "run",
        "--input",
        str(folder),
        "--output",
        str(tmp / "out"),
        "--config",
        str(cli.profile),
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(12)
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return Outcome("SIGTERM mid-run", False, "still running 60 s after SIGTERM")
    lock_left = (tmp / "out" / ".lock").exists()
    resumed, _, _, _ = cli("run", "--input", str(folder), "--output", str(tmp / "out"), "--quiet")
    rows = pq.read_table(tmp / "out" / "annotations").num_rows if resumed == 0 else -1
    ok = process.returncode in (143, 0) and not lock_left and rows == 40 and _traceback_free(err)
    return Outcome(
        "SIGTERM mid-run",
        ok,
        f"exit {process.returncode} '{_last_line(err)[:60]}', lock left: {lock_left}, rows after resume {rows}",
    )


def probe_missing_root_and_limit(cli: Cli, tmp: Path) -> Outcome:
    output = _dataset(cli, tmp)
    code, _, _, _ = cli("run", "--input", str(tmp / "in"), str(tmp / "unmounted"), "--output", str(output), "--quiet")
    after_missing = _version(output)["version"]
    _images(tmp / "in", 2, start=3)
    limit_code, _, _, _ = cli("run", "--input", str(tmp / "in"), "--output", str(output), "--limit", "1", "--quiet")
    images = _version(output)["counts"]["images"]
    ok = code != 0 and after_missing == 1 and limit_code == 0 and images == 4
    return Outcome(
        "missing input root; --limit 1",
        ok,
        f"missing root exit {code} (latest stays v{after_missing}); --limit 1 with 2 new of 5: {images} images",
    )


def probe_pickled_weights(cli: Cli, tmp: Path) -> Outcome:
    tmp.mkdir(parents=True, exist_ok=True)
    weights = tmp / "evil.pt"
    marker = tmp / "ran"
    # A pickle that would create ``marker`` when loaded: its loading must be refused.
    weights.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    profile = tmp / "yolo.yaml"
    profile.write_text(
        "extends: offline\nfilters: []\nspecialists:\n"
        f"  - {{name: yolo, backend: ultralytics, options: {{weights: {weights}}}}}\n"
    )
    code, _, err, _ = cli(
        "run", "--input", str(SAMPLES), "--output", str(tmp / "out"), "--config", str(profile), "--quiet", config=False
    )
    ok = code != 0 and not marker.exists() and _traceback_free(err)
    return Outcome(
        "pickled .pt weights without opt-in", ok, f"exit {code}, code ran: {marker.exists()}, '{_last_line(err)[:90]}'"
    )


PROBES: tuple[Callable[[Cli, Path], Outcome], ...] = (
    probe_thin_banner,
    probe_special_files,
    probe_non_utf8_name,
    probe_bad_tables,
    probe_swapped_shard,
    probe_truncated_shard,
    probe_output_paths,
    probe_deleted_version,
    probe_bad_settings,
    probe_sigterm,
    probe_missing_root_and_limit,
    probe_pickled_weights,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench reliability_probes", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="probe function names (default: all)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="fld-probes-") as scratch:
        root = Path(scratch)
        (root / "probe.yaml").write_text(PROFILE)
        cli = Cli(root / "probe.yaml")
        for probe in PROBES:
            if args.only and probe.__name__ not in args.only:
                continue
            try:
                outcome = probe(cli, root / probe.__name__)
            except Exception as error:  # a probe that cannot even be set up is a failed probe, not a crash
                outcome = Outcome(probe.__name__, False, f"{type(error).__name__}: {error}")
            print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.probe}: {outcome.seen}", flush=True)
            results.append(outcome)
    passed = sum(o.ok for o in results)
    print(f"{passed}/{len(results)} probes give the wanted outcome")
    return {"passed": passed, "probes": len(results), "failed": [o.probe for o in results if not o.ok]}
