"""The audit as one self-contained HTML file: plots as base64 PNG, samples as base64 JPEG, every text escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

from engine.audit import plots
from engine.audit.dataset_audit import AuditResult
from engine.audit.drawing import PHRASE_COLOURS, Palette, draw_record, legend_key
from schemas.records import ImageRecord

MAX_REGION_TEXTS = 20
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1240px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; } .note { color: #666; font-size: 13px; }
.sample { display: flex; gap: 16px; margin: 12px 0; padding: 8px; border: 1px solid #eee; }
.sample img { max-width: 640px; image-rendering: auto; } .captions { font-size: 13px; max-width: 520px; }
mark { border-radius: 3px; padding: 0 2px; }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        # Three decimals, but small thresholds (a 0.0001 area fraction) keep three significant digits.
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.3f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; numbers right-aligned, everything escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float)) or value is None
            cells.append(f'<td class="n">{esc(number(value))}</td>' if numeric else f"<td>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def picture_tag(data: bytes | None, alt: str, css: str = "plot", mime: str = "image/png") -> str:
    if data is None:
        return f'<p class="note">{esc(alt)}: nothing to plot.</p>'
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="{css}" alt="{esc(alt)}" src="data:{mime};base64,{encoded}">'


def highlighted_text(record: ImageRecord, text_id: str, text: str, phrases: Palette) -> str:
    """``text`` escaped, with its grounded phrases marked in their drawing colours."""
    spans = sorted((p.start, p.end, p) for p in record.phrases if p.text_id == text_id)
    parts, position = [], 0
    for start, end, phrase in spans:
        if start < position or end > len(text):
            continue  # overlapping or out-of-range spans are shown unmarked
        red, green, blue = phrases(phrase.id)
        parts.append(esc(text[position:start]))
        title = f"{phrase.provenance.source}, {len(phrase.regions)} region(s)"
        parts.append(
            f'<mark style="background: rgba({red},{green},{blue},0.45)" title="{esc(title)}">'
            f"{esc(text[start:end])}</mark>"
        )
        position = end
    parts.append(esc(text[position:]))
    return "".join(parts)


def sample_block(record: ImageRecord, regions: Palette, phrases: Palette) -> str:
    picture, note = draw_record(record, regions, phrases)
    captions = "".join(
        f"<p><b>{esc(t.granularity)}</b> <span class='note'>({esc(t.provenance.source)})</span>: "
        f"{highlighted_text(record, t.id, t.text, phrases)}</p>"
        for t in record.texts
    )
    texts_of: dict[str, list[str]] = {}
    for region in record.regions:
        if region.text and region.kind != "object":
            texts_of.setdefault(region.kind, []).append(region.text)
    captions += "".join(
        f"<p><b>{esc(kind)}</b>: {' · '.join(esc(t) for t in texts[:MAX_REGION_TEXTS])}"
        f"{' …' if len(texts) > MAX_REGION_TEXTS else ''}</p>"
        for kind, texts in sorted(texts_of.items())
    )
    kinds: dict[str, int] = {}
    for region in record.regions:
        kinds[region.kind] = kinds.get(region.kind, 0) + 1
    facts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "no regions"
    header = f"{record.source_uri} ({record.width}x{record.height}; {facts}; {len(record.phrases)} phrases)"
    warning = f'<p class="note">{esc(note)}</p>' if note else ""
    sources = sorted({legend_key(r) for r in record.regions})
    legend = " ".join(
        f'<span style="border-left: 12px solid rgb{regions(s)}; padding-left: 4px; margin-right: 8px">{esc(s)}</span>'
        for s in sources
    )
    warning += f'<p class="note">{legend}</p>' if legend else ""
    return (
        f'<div class="sample">{picture_tag(picture, record.source_uri, "sample", "image/jpeg")}'
        f'<div class="captions"><p><b>{esc(header)}</b></p>{warning}{captions or "<p>no texts</p>"}</div></div>'
    )


def skipped_section(result: AuditResult) -> str:
    """Skipped images per rule, then the largest near-duplicate groups (representative, copies)."""
    skipped = result.skipped
    if not skipped.rules:
        return "<p>none</p>"
    groups = [(g.representative_uri, len(g.copies), ", ".join(g.copies)) for g in skipped.largest]
    return (
        table(["rule", "images"], sorted(skipped.rules.items()))
        + f"<p>{skipped.groups} near-duplicate groups; the largest:</p>"
        + table(["representative (annotated)", "copies", "copies skipped"], groups)
    )


def render_html(result: AuditResult) -> str:
    """The whole report."""
    stats, manifest = result.stats, result.manifest
    sections = [
        f"<h1>fld-engine audit: {esc(result.root)} version {manifest.version}</h1>",
        f'<p class="note">created {esc(manifest.created_at)}, profile {esc(manifest.profile)}, schema '
        f"{esc(manifest.schema_version)}, {stats.images} images, audited in {result.seconds:.1f}s</p>",
        "<h2>Annotations</h2>",
        table(["type / kind", "count"], sorted(stats.by_kind.items())),
        table(["type", "source", "count"], [(t, s, n) for (t, s), n in sorted(stats.by_source.items())]),
        table(["type", "refinement round", "count"], [(t, r, n) for (t, r), n in sorted(stats.by_round.items())]),
        table(["stage with errors", "images"], sorted(stats.errors.items()))
        if stats.errors
        else "<p>No stage errors.</p>",
        "<h2>Quarantine</h2>",
        table(["reason", "inputs"], sorted(result.quarantine.items())) if result.quarantine else "<p>none</p>",
        "<h2>Skipped by curation</h2>",
        skipped_section(result),
        "<h2>Drops per filter rule</h2>",
        drops_section(result),
        "<h2>Changes by refinement</h2>",
        changes_section(result),
        "<h2>Scores per source</h2>",
        picture_tag(plots.histograms(stats.scores, "score", unit_range=True), "score histograms"),
        "<h2>Box sizes and positions</h2>",
        picture_tag(
            plots.histograms(stats.box_sizes, "sqrt(box area / image area)", unit_range=True), "box size histograms"
        ),
        picture_tag(plots.centre_maps(stats.box_centres), "box centre maps"),
        "<h2>Regions and grounded phrases per image</h2>",
        density_section(result),
        "<h2>Paper Table 2 / Table 3 measures</h2>",
        paper_section(result),
        "<h2>Agreement</h2>",
        agreement_section(result),
    ]
    if result.ground_truth is not None:
        sections += ["<h2>Ground truth</h2>", ground_truth_section(result)]
    regions, phrases = Palette(), Palette(PHRASE_COLOURS)
    sections += [f"<h2>Sample of {len(result.samples)} images</h2>"]
    sections += [sample_block(record, regions, phrases) for record in result.samples]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(f'fld-engine audit {result.root} v{manifest.version}')}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def drops_section(result: AuditResult) -> str:
    stats = result.stats
    if not stats.drops:
        return "<p>No annotation was dropped.</p>"
    rows = []
    for rule, count in stats.drops.most_common():
        examples = stats.drop_examples[rule].items if rule in stats.drop_examples else []
        for index, example in enumerate(sorted(examples, key=lambda e: (e.source_uri, e.summary))):
            rows.append(
                (
                    rule if index == 0 else "",
                    count if index == 0 else "",
                    example.summary,
                    example.value,
                    example.threshold,
                    example.by or "",
                    example.source_uri,
                )
            )
    headers = ["stage/rule", "drops", "example", "value", "threshold", "by", "image"]
    plot = picture_tag(
        plots.histograms(stats.drop_values, "measured value", marks=stats.drop_thresholds),
        "measured values of dropped annotations",
    )
    return table(headers, rows) + plot


def changes_section(result: AuditResult) -> str:
    """Counts of in-place changes per field and round, then a few examples of each field (old -> new)."""
    stats = result.stats
    if not stats.changes:
        return "<p>No annotation was changed in place.</p>"
    counts = table(["field", "round", "changes"], [(f, r, n) for (f, r), n in sorted(stats.changes.items())])
    rows = []
    for name, examples in sorted(stats.change_examples.items()):
        for example in sorted(examples.items, key=lambda e: (e.source_uri, e.annotation)):
            rows.append(
                (name, example.round, example.annotation, example.old or "", example.new or "", example.by or "",
                 example.source_uri)
            )  # fmt: skip
    return counts + table(["field", "round", "annotation", "old", "new", "by", "image"], rows)


def density_section(result: AuditResult) -> str:
    stats = result.stats
    rows = [("regions", stats.mean_per_image(stats.regions_per_image), sum(stats.regions_per_image.values()))]
    for granularity, histogram in sorted(stats.phrases_per_image.items()):
        rows.append(
            (f"grounded phrases ({granularity} text)", stats.mean_per_image(histogram), sum(histogram.values()))
        )
    bars = {"regions per image": stats.regions_per_image}
    bars.update({f"phrases per image ({g})": h for g, h in stats.phrases_per_image.items()})
    return table(["per image", "mean", "images"], rows) + picture_tag(
        plots.count_bars(bars, "count"), "per-image counts"
    )


def paper_section(result: AuditResult) -> str:
    paper = result.paper
    note = f'<p class="note">{esc(paper.note)}</p>' if paper.note else ""
    rows = [row for row in paper.rows if row.ours is not None]
    if paper.missing:
        note += '<p class="note">Cannot be computed for this dataset:</p><ul class="note">'
        note += "".join(f"<li>{esc(line)}</li>" for line in paper.missing) + "</ul>"
    if not rows:
        return note or "<p>no measures</p>"
    return (
        f'<p class="note">Measured on all {paper.images} images; paper values from FLD-5B Tables 2 and 3.</p>'
        + table(
            ["granularity", "measure", "this dataset", "paper", "ours / paper"],
            [(row.column, row.measure, row.ours, row.paper, row.ratio) for row in rows],
        )
        + note
    )


def agreement_section(result: AuditResult) -> str:
    pairs, texts = result.agreement.pairs, result.agreement.texts
    text_table = ""
    if texts:
        text_table = '<p class="note">Texts of one granularity: mean word-set Jaccard overlap per image.</p>' + table(
            ["granularity", "A", "B", "images", "mean Jaccard"],
            [(g, a, b, t.images, t.mean_jaccard) for (g, a, b), t in sorted(texts.items())],
        )
    if not pairs:
        return "<p>No image has boxes of one kind from two sources (or from a refinement round).</p>" + text_table
    rows = [
        (kind, a, b, t.images, t.boxes_a, t.boxes_b, t.matched, t.recall_a, t.recall_b, t.mean_iou, t.label_agreement)
        for (kind, a, b), t in sorted(pairs.items())
    ]
    headers = ["kind", "A", "B", "images", "boxes A", "boxes B", "matched", "A found by B", "B found by A"]
    return (
        f'<p class="note">Greedy IoU &ge; {result.agreement.threshold} matching per image, over the images both '
        "sides annotated (a specialist that ran and found nothing counts); NMS-suppressed boxes count as their "
        "source's output.</p>" + table([*headers, "mean IoU", "same label"], rows)
    )


def ground_truth_section(result: AuditResult) -> str:
    truth = result.ground_truth
    assert truth is not None
    rows = [
        ("images matched", f"{truth.images_matched} of {truth.images_in_ground_truth}"),
        ("box mAP@[.5:.95]", number(truth.box_map)),
        ("mask mAP@[.5:.95]", number(truth.mask_map)),
        ("recall of GT objects (IoU ≥ 0.5, any label)", f"{truth.recall:.3f} ({truth.objects_found}/{truth.objects})"),
        ("OCR character error rate", f"{number(truth.cer)} over {truth.text_references} GT texts"),
    ]
    categories = sorted(set(truth.box_ap) | set(truth.mask_ap))
    per_category = table(
        ["category", "box AP", "mask AP"], [(c, truth.box_ap.get(c), truth.mask_ap.get(c)) for c in categories]
    )
    unscored = ", ".join(f"{name} ({n})" for name, n in truth.unscored_labels.most_common(20))
    extra = f'<p class="note">Labels not in the ground truth (not scored): {esc(unscored)}</p>' if unscored else ""
    if truth.mask_note:
        extra += f'<p class="note">{esc(truth.mask_note)}</p>'
    return table(["measure", "value"], rows) + per_category + extra
