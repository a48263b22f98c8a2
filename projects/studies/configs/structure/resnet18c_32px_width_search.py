# Structure search with searchable widths for the structure study's ResNetV1c-18 teacher (32x32 synthetic
# classification; the space: ../_base_/resnet18c_width_space.py). Data and teacher come from
# projects/studies/structure_study.py.
_base_ = ['../resnet18c_32px_cls.py', '../_base_/resnet18c_width_space.py']
structure_search = dict(teacher_checkpoint='work_dirs/structure_study/teacher/epoch_24.pth')
