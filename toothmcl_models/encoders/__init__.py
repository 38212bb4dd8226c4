"""Encoders: CBCT (MONAI SwinUNETR-v2 Swin transformer) and IOS (Point Transformer), plus kNN / FPS ops."""
