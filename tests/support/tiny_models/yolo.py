"""A tiny random-init YOLOv8n detector (80 COCO class names) saved as an ultralytics ``.pt`` file."""

from __future__ import annotations

from pathlib import Path


def build_tiny_yolo(path: Path) -> Path:
    """Build YOLOv8n from ultralytics' bundled ``yolov8n.yaml`` (no download) and save it to ``path``."""
    import torch
    from ultralytics import YOLO

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    YOLO("yolov8n.yaml").save(str(path))
    return path
