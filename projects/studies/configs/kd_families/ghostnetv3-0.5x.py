# KD study on class families (issue 16): the re-parameterized GhostNetV3-0.5x student, 18 classes
# (`tools/misc/make_synthetic.py cls DATA --classes 18 --family-size 3 --size 48`: 6 shapes x 3 marks).
# The 'plain' variant sets model.backbone.num_branches=1 and extra_branches=False (same deploy network).
_base_ = ['../ghostnetv3-0.5x_synthetic_cls.py']
num_classes = 18
data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes))
