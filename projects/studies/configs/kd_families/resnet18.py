# KD study on class families: the ResNet-18 teacher (trained once, longer than the students, and reused).
_base_ = ['../resnet18_synthetic_cls.py']
num_classes = 18
data_preprocessor = dict(num_classes=num_classes)
model = dict(head=dict(num_classes=num_classes))
