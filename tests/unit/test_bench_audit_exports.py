"""The audit_exports benchmark runs end to end at a tiny size and reports every throughput it promises."""

from __future__ import annotations

from bench import audit_exports


def test_audit_exports_scenario_reports_every_export(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(audit_exports, "RUNS", tmp_path / "runs")
    result = audit_exports.main(["--rows", "6", "--sample", "2"])
    assert result["rows"] == 6 and result["annotations_per_row"] > 10
    assert set(result["export_rows_per_s"]) == {"coco", "yolo", "hf", "florence"}
    assert all(rate > 0 for rate in result["export_rows_per_s"].values())
    assert result["audit_pass_rows_per_s"] > 0 and result["html_mib"] > 0
