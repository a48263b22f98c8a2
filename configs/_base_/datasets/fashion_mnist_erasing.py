# Fashion-MNIST (fashion_mnist.py) with RandomErasing in the training pipeline.
_base_ = ['./fashion_mnist.py', '../pipelines/fashion_mnist_erasing.py']
train_pipeline = {{_base_.fashion_mnist_erasing_pipeline}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
