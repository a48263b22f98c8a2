# KD study on class families: the full recipe (re-param + logit KD + EMA, as ghostnetv3-0.5x_recipe.py) for
# the ResNet-18-0.25x student.
_base_ = ['./ghostnetv3-0.5x_recipe.py']
model = dict(student='{{fileDirname}}/resnet18-0.25x.py')
