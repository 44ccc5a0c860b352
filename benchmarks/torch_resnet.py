"""torchvision's bottleneck ResNet written out in PyTorch: the test oracle of the ResNet port.

Follows torchvision's `models/resnet.py` (Bottleneck, `_make_layer`, `ResNet.forward`, its
init) line for line with groups=1, base width 64, no dilation, so its state dict has
torchvision's names and shapes; `width` (torchvision: 64) shrinks it for tests. torchvision
itself is not a dependency. Training never imports this module (torch is optional).
"""

import torch
from torch import nn

from rsrl_jax.models.resnet import EXPANSION, RESNET50_STAGES


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class TorchBottleneck(nn.Module):
    """torchvision.models.resnet.Bottleneck (v1.5: the stride on conv2, the 3x3)."""

    expansion = EXPANSION

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TorchResNet(nn.Module):
    """torchvision.models.resnet.ResNet(Bottleneck, stage_sizes), layer for layer.

    `frozen_stats=True` is our model.batch_norm='frozen' (the benchmark's peer): `train()`
    leaves every BatchNorm in eval mode (running statistics, none updated) while the rest
    trains; BatchNorm's weight and bias still learn. The state dict is the same either way.
    """

    HEAD = "fc."  # the N-way layer's parameter names start so (`torch_alexnet.make_optimizer`)

    def __init__(
        self,
        stage_sizes=RESNET50_STAGES,
        num_classes: int = 1000,
        width: int = 64,
        frozen_stats: bool = False,
    ):
        super().__init__()
        self.frozen_stats = frozen_stats
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, blocks in enumerate(stage_sizes):
            layer = self._make_layer(width * 2**i, blocks, stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", layer)
        self.num_stages = len(stage_sizes)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * EXPANSION:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * EXPANSION, stride),
                nn.BatchNorm2d(planes * EXPANSION),
            )
        layers = [TorchBottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * EXPANSION
        layers += [TorchBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def train(self, mode: bool = True):
        """torch's `train(mode)`, but BatchNorm stays in eval mode when `frozen_stats`."""
        super().train(mode)
        if self.frozen_stats:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def pooled_features(self, x):
        """[B, 32 * width]: the head's input."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.pooled_features(x))
