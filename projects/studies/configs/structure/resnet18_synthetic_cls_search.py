# Structure search for a compact student of the recipe study's ResNet-18 teacher (synthetic 64x64
# classification): block-wise distillation of every candidate of every stage, then a knapsack under a
# MACs/params budget (tools/structure/export_structure.py). Data and teacher come from projects/studies/recipe_study.py.
_base_ = '../resnet18_synthetic_cls.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
structure_search = dict(
    teacher_checkpoint='work_dirs/recipe_study/teacher/epoch_20.pth',
    input_shape=(3, 64, 64),  # deploy costs are counted at this size
    blocks=None,  # default: the four ResNet stages layer1..layer4
    candidates=[
        dict(type='Keep'),
        dict(type='Keep', num_blocks=1),  # fewer repeats of the teacher's own blocks
        dict(type='Skip'),  # stride-1 stages with equal channels only
        dict(type='BasicResidual', width_ratio=0.5),
        dict(type='BasicResidual', width_ratio=0.25),
        dict(type='InvertedResidual', kernel_size=3, expand_ratio=3),
        dict(type='InvertedResidual', kernel_size=5, expand_ratio=3),
        dict(type='InvertedResidual', kernel_size=3, expand_ratio=6, num_blocks=2),
        dict(type='DepthwiseSeparable', kernel_size=3),
        dict(type='GhostBlock', kernel_size=3, expand_ratio=2),
    ],
    epochs=4,  # at most, with plateau: each candidate stops once its held-out error stops improving
    plateau=dict(patience=1, min_delta=0.02),
    progressive=False,  # True: block b learns from what the student's earlier blocks feed it
    optimizer=dict(type='Adam', lr=2e-3),
    checkpoint_interval=50,
    log_interval=25,
    correlation_samples=10,
    seed=0)
