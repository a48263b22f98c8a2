# Teacher of the structure study: mmpretrain ResNetV1c-18 (deep stem: three 3x3 convs, so the stem is one
# module the search can narrow) on the 32x32 synthetic classification data
# (`tools/misc/make_synthetic.py cls work_dirs/structure_study/data --classes 6 --size 32`: six shapes, each
# image with a distractor shape of another class on a cluttered background).
_base_ = './resnet18_synthetic_cls.py'
data_root = 'work_dirs/structure_study/data'
data_preprocessor = dict(num_classes=6)
train_dataloader = dict(batch_size=64, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=128, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(backbone=dict(type='ResNetV1c'), head=dict(num_classes=6))
