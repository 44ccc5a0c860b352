"""Speed, measured from the clone (not part of the installed package): our steps against
PyTorch's (`python -m benchmarks`), folds at once (`python -m benchmarks.folds`), the input
pipeline (`python -m benchmarks.data`), CLIP and SigLIP ViTs against transformers
(`python -m benchmarks.vit`), and torchvision's AlexNet and ResNet-50 written out in PyTorch
(`torch_alexnet`, `torch_resnet`): the benchmark's peers and the ports' oracles in the tests.

Run from the clone's root (where `benchmarks/` is); the library never imports this package.
"""
