"""Plain files go to probe tasks in groups sized to the cluster: few tasks for a few files, never huge ones."""

from __future__ import annotations

from engine.ingest.probe import MAX_FILES_PER_TASK, MIN_FILES_PER_TASK, files_per_task


def test_a_few_files_go_a_handful_per_task() -> None:
    assert files_per_task(10, cpus=3) == MIN_FILES_PER_TASK == 16
    assert files_per_task(0, cpus=3) == MIN_FILES_PER_TASK


def test_many_files_make_about_four_tasks_per_cpu() -> None:
    assert files_per_task(1_200, cpus=3) == 100  # 12 tasks of 100 files
    assert files_per_task(1_201, cpus=3) == 101  # the remainder does not make a 13th task of one file


def test_tasks_never_take_more_than_the_maximum() -> None:
    assert files_per_task(20_000, cpus=3) == MAX_FILES_PER_TASK == 256
    assert files_per_task(20_000, cpus=1_000) == MIN_FILES_PER_TASK  # a big cluster: small tasks, all busy


def test_a_cluster_reporting_no_cpus_counts_as_one() -> None:
    assert files_per_task(100, cpus=0) == 100
