"""The audit as plain text for the terminal."""

from __future__ import annotations

from engine.audit.dataset_audit import AuditResult


def format_summary(result: AuditResult) -> str:
    stats, manifest = result.stats, result.manifest
    lines = [f"{result.root}: version {manifest.version}, {stats.images} images, audited in {result.seconds:.2f}s"]
    lines.append("annotations per type/kind:")
    lines += [f"  {name:<32} {count:>8}" for name, count in sorted(stats.by_kind.items())]
    lines.append("per source:")
    lines += [f"  {t + ' ' + s:<32} {n:>8}" for (t, s), n in sorted(stats.by_source.items())]
    lines.append("per refinement round:")
    lines += [f"  {t + ' round ' + str(r):<32} {n:>8}" for (t, r), n in sorted(stats.by_round.items())]
    if stats.errors:
        lines.append("stage errors: " + ", ".join(f"{s}={n}" for s, n in sorted(stats.errors.items())))
    quarantine = ", ".join(f"{r}={n}" for r, n in sorted(result.quarantine.items())) or "none"
    lines.append(f"quarantined: {quarantine}")
    skipped = result.skipped
    rules = ", ".join(f"{r}={n}" for r, n in sorted(skipped.rules.items())) or "none"
    lines.append(f"skipped by curation: {rules}; near-duplicate groups: {skipped.groups}")
    for group in skipped.largest:
        lines.append(f"  {group.representative_uri} ({len(group.copies)} copies): {', '.join(group.copies)}")
    lines.append("drops per rule:")
    lines += [f"  {rule:<32} {count:>8}" for rule, count in stats.drops.most_common()] or ["  none"]
    if stats.changes:
        lines.append("changes by refinement (field, round):")
        lines += [f"  {f + ' round ' + str(r):<32} {n:>8}" for (f, r), n in sorted(stats.changes.items())]
    lines += ["  " + line for line in result.paper.text.splitlines()]
    if result.paper.note:
        lines.append(f"  {result.paper.note}")
    if result.agreement.pairs:
        lines.append(f"agreement (IoU >= {result.agreement.threshold}):")
        for (kind, a, b), t in sorted(result.agreement.pairs.items()):
            lines.append(
                f"  {kind}: {a} vs {b}: {t.matched} matched of {t.boxes_a}/{t.boxes_b}, "
                f"mean IoU {t.mean_iou:.2f}, same label {t.label_agreement:.0%}"
            )
    for (granularity, a, b), t in sorted(result.agreement.texts.items()):
        lines.append(
            f"  {granularity} texts: {a} vs {b}: mean word Jaccard {t.mean_jaccard:.2f} over {t.images} images"
        )
    truth = result.ground_truth
    if truth is not None:
        box = "n/a" if truth.box_map is None else f"{truth.box_map:.3f}"
        mask = "n/a" if truth.mask_map is None else f"{truth.mask_map:.3f}"
        cer = "n/a" if truth.cer is None else f"{truth.cer:.3f}"
        lines.append(
            f"ground truth: {truth.images_matched}/{truth.images_in_ground_truth} images matched, box mAP {box}, "
            f"mask mAP {mask}, recall {truth.recall:.3f} ({truth.objects_found}/{truth.objects}), OCR CER {cer}"
        )
    return "\n".join(lines)
