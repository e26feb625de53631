"""
Writes torch_deeplab.safetensors: two small DeepLab networks built in
PyTorch (bench/torch_ref/agcl_torch.py, named as torchvision), their
state_dicts with randomised BN statistics, an input, and the outputs in eval
and training mode, plus one running_var after the training-mode pass.
tests/models/torch_parity_test.ts loads the weights with loadInto() and
checks ours reproduces PyTorch. Regenerate (torch 1.13, Debian) with

    /usr/bin/python3 tests/testdata/models/make_torch_fixture.py
"""

import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench", "torch_ref"))
import torch, torch.nn as nn
from agcl_torch import DeepLab, write_safetensors

CONFIGS = {
    "r18": {"depth": 18, "inChannels": 2, "stem": "imagenet", "outputStride": 8, "widthMultiplier": 1 / 32,
            "asppChannels": 8, "asppRates": [1, 2, 4], "nClasses": 2, "size": [16, 24]},
    "r50": {"depth": 50, "inChannels": 2, "stem": "cifar", "outputStride": 4, "widthMultiplier": 1 / 64,
            "asppChannels": 4, "asppRates": [1, 3, 6], "nClasses": 3, "size": [16, 16]},
}

torch.manual_seed(0)
out, meta = {}, {}
for name, c in CONFIGS.items():
    net = DeepLab(c)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5); m.bias.data.uniform_(-0.2, 0.2)
            m.num_batches_tracked.fill_(7)
    # Copies: state_dict() shares storage with the BN buffers, which the
    # training-mode pass below updates in place.
    for k, v in net.state_dict().items():
        out[name + "." + k] = v.clone()
    x = torch.randn(2, c["inChannels"], *c["size"])
    net.eval()
    with torch.no_grad():
        e = net(x)
        net.train()
        t = net(x)
    out["io." + name + ".x"] = x.permute(0, 2, 3, 1)
    out["io." + name + ".eval"] = e.permute(0, 2, 3, 1)
    out["io." + name + ".train"] = t.permute(0, 2, 3, 1)
    out["io." + name + ".running_var"] = net.backbone.layer4[-1].bn2.running_var
    meta[name] = json.dumps({k: v for k, v in c.items() if k != "size"})
write_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_deeplab.safetensors"), out, meta)
