"""Networks: backbones (ResNet-50/18, EfficientNet-Lite0), the encoders E_h / E_l, the predictor
Pred, and the fusion modules (CRFF, and the one-FC-layer fusion of ablation A5)."""
