# Structure search for the ResNetV1c-18 Fashion-MNIST teacher (../resnet18c_fashion-mnist_cls.py), in the
# space of the synthetic study (../_base_/resnet18c_width_space.py). Data and teacher come from
# projects/studies/structure_study.py --family resnet18c-fmnist.
_base_ = ['../resnet18c_fashion-mnist_cls.py', '../_base_/resnet18c_width_space.py']
structure_search = dict(teacher_checkpoint='work_dirs/structure_study_resnet18c-fmnist/teacher/epoch_20.pth')
