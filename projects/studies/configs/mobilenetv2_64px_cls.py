# Teacher of the MobileNetV2 structure study (projects/studies/structure_study.py --family mobilenetv2): mmpretrain
# MobileNetV2 1.0x on 64x64 synthetic classification (`tools/misc/make_synthetic.py cls DATA --classes 6 --size 64`:
# six shapes, each image with a distractor shape on a cluttered background), the ResNet study's recipe. 64 px,
# not 32: MobileNetV2's five stride-2 stages would leave 1x1 maps from layer6 on at 32 px.
_base_ = './resnet18c_32px_cls.py'
data_root = 'work_dirs/structure_study_mobilenetv2/data'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=1.0), head=dict(in_channels=1280))
