"""The reliability probes run the real command line; two quick ones must give the wanted outcome."""

from __future__ import annotations

from bench import reliability_probes


def test_quick_probes_pass_and_report_what_they_saw(capsys) -> None:
    result = reliability_probes.main(["--only", "probe_bad_settings", "probe_output_paths"])
    assert result == {"passed": 2, "probes": 2, "failed": []}
    printed = capsys.readouterr().out
    assert "PASS  settings out of range: writer.rows_per_shard=0: exit 2" in printed
    assert "PASS  output is a file / under a file: exit 2" in printed
