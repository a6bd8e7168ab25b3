"""ImageNet normalisation constants: per-channel (R, G, B) mean and standard deviation of pixel
values scaled to [0, 1], as torchvision's pretrained weights expect (x = (p - mean) / std)."""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
