# Block-wise distillation schedule shared by the structure study's width searches
# (*_width_search.py configs add the teacher, blocks, widths and candidates).
structure_search = dict(
    epochs=3,  # at most: each candidate stops once its held-out error stops improving
    plateau=dict(patience=1, min_delta=0.02),
    progressive=False,
    optimizer=dict(type='Adam', lr=2e-3),
    checkpoint_interval=50,
    log_interval=25,
    correlation_samples=10,
    seed=0)
