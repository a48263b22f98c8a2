# Quick-start teacher of `make demo`: the RetinaNet-ResNet18-FPN teacher at a quarter width (ResNet-18 stages of
# 16-32-64-128 channels): on the easy demo data it trains in about a quarter of the full-width teacher's time
# on a CPU and scores higher after the same 1200 iterations (README, "make demo").
_base_ = ['./teacher_retinanet_r18_fpn_synthetic.py']
model = dict(backbone=dict(base_channels=16, stem_channels=16), neck=dict(in_channels=[16, 32, 64, 128]))
