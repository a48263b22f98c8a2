# Structure search for a compact student of the Fashion-MNIST ResNet-18 teacher
# (configs/fashion_mnist/resnet18_1xb128_fashion-mnist.py): every stage is a block, the channel count between
# stages (and of the backbone output) a choice, so every uniform width multiplier of the teacher (ratios
# below) is one of the selectable structures. Train the teacher first and pass its checkpoint:
#   python tools/train.py configs/fashion_mnist/resnet18_1xb128_fashion-mnist.py --work-dir WORK
#   python tools/structure/search_structure.py configs/structure/resnet18_fashion-mnist_width_search.py \
#       --cfg-options structure_search.teacher_checkpoint=WORK/epoch_20.pth
_base_ = ['../fashion_mnist/resnet18_1xb128_fashion-mnist.py', '../_base_/schedules/width_search.py']
structure_search = dict(
    teacher_checkpoint='checkpoints/resnet18_1xb128_fashion-mnist.pth',
    input_shape=(3, 32, 32),  # deploy costs are counted at this size
    blocks=['layer1', 'layer2', 'layer3', 'layer4'],
    widths=dict(ratios=[0.25, 0.5, 0.75], divisor=8),  # plus the teacher's own width at every boundary
    candidates=dict(
        **{layer: [dict(type='Keep'),
                   dict(type='BasicResidual', width_ratio=1.0, num_blocks=2),  # the ResNet stage at any width
                   dict(type='BasicResidual', width_ratio=1.0, num_blocks=1)]  # one block: fewer repeats
           for layer in ('layer1', 'layer2', 'layer3', 'layer4')}))
