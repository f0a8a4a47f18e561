"""A random-init MobileSAM saved as an ultralytics SAM ``.pt`` file (10M parameters, about 20 MB).

Ultralytics builds a SAM from fixed dimensions chosen by the end of the file name, so a test model cannot
have smaller ones: MobileSAM (TinyViT encoder) is the smallest architecture it knows. Run at a 256-pixel
input (ultralytics resizes its encoder for that), it segments a few images on CPU in well under a second.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 256
LOGIT_SCALE = 30.0


def build_tiny_mobile_sam(path: Path) -> Path:
    """Save a random-init MobileSAM state dict to ``path`` (its name must end with ``mobile_sam.pt``)."""
    import torch
    from ultralytics.models.sam.build import build_mobile_sam

    assert path.name.endswith("mobile_sam.pt"), "ultralytics reads the architecture from the file name"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_mobile_sam(checkpoint=None)
    with torch.no_grad():
        # Random init gives logits within +/-0.2, so every stability score would be 0: the hypernetworks'
        # last layers scale the mask logits linearly, and 30x spreads them over a few units.
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(LOGIT_SCALE)
            mlp.layers[-1].bias.mul_(LOGIT_SCALE)
    state = model.state_dict()
    # fp16 halves the file; loading copies the values into the fp32 model ultralytics builds.
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    return path
