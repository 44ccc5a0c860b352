"""torchvision's AlexNet written out in PyTorch, and the train step: our reference peer.

The test oracle of the weight port (tests/test_convert.py) and the PyTorch side of
`python -m benchmarks`; its optimizer and steps serve any network with a `HEAD`
(`torch_resnet.TorchResNet` too). Training never imports this module (torch is optional).
"""

import numpy as np
import torch
from torch import nn

from rsrl_jax.models.imagenet import IMAGENET_MEAN, IMAGENET_STD

CONV_CHANNELS = (64, 192, 384, 256, 256)  # torchvision's (`alexnet.CONV_CHANNELS`)


class TorchAlexNet(nn.Module):
    """torchvision.models.AlexNet, layer for layer (same names, shapes and forward)."""

    HEAD = "classifier.6."  # the N-way layer's parameter names start so (`make_optimizer`)

    def __init__(
        self,
        num_classes: int = 1000,
        dropout_rate: float = 0.5,
        width: float = 1.0,
        fc_dim: int = 4096,
    ):
        """`width` (conv channels times torchvision's) and `fc_dim` as our `AlexNet`'s."""
        super().__init__()
        c = [max(1, round(ch * width)) for ch in CONV_CHANNELS]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[0], c[1], kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[1], c[2], kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout_rate),
            nn.Linear(c[4] * 6 * 6, fc_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout_rate),
            nn.Linear(fc_dim, fc_dim),
            nn.ReLU(inplace=True),
            nn.Linear(fc_dim, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW photos -> float, ImageNet mean/std normalised (as `rsrl_jax.train`)."""
    mean = torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def make_optimizer(net: nn.Module, lr: float, momentum: float, weight_decay: float, head_x):
    """SGD with momentum and L2 weight decay; the head's (parameters named `net.HEAD`...)
    learning rate times `head_x`.

    torch's SGD adds weight_decay * p to the gradient before the momentum, as
    `rsrl_jax.train.make_optimizer` (add_decayed_weights, then sgd with momentum).
    """
    named = list(net.named_parameters())
    head = [p for n, p in named if n.startswith(net.HEAD)]
    backbone = [p for n, p in named if not n.startswith(net.HEAD)]
    groups = [{"params": backbone, "lr": lr}, {"params": head, "lr": lr * head_x}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_train_step(net: nn.Module, optimizer, flip: bool):
    """train_step(images uint8 NCHW, labels int64) -> (loss sum, correct), tensors.

    The same work as our jitted step: normalise, random horizontal flips, forward in train
    mode (`net.train()`: AlexNet's dropout; ResNet's BatchNorm as its `frozen_stats` says),
    cross-entropy, backward, an optimizer step, the epoch's metric sums.
    """

    def train_step(images, labels):
        net.train()
        x = normalize(images)
        if flip:
            do_flip = torch.rand(x.shape[0], 1, 1, 1) < 0.5
            x = torch.where(do_flip, x.flip(3), x)
        optimizer.zero_grad(set_to_none=True)
        logits = net(x)
        loss = nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            return loss.detach() * len(labels), (logits.argmax(-1) == labels).sum()

    return train_step


def make_eval_step(net: nn.Module):
    """eval_step(images uint8 NCHW) -> logits, in eval mode without autograd."""

    def eval_step(images):
        net.eval()
        with torch.inference_mode():
            return net(normalize(images))

    return eval_step


def nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC photos as the contiguous NCHW tensor a torchvision pipeline gives."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
