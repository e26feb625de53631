# Regenerate resize_grad_reference.json (torch 1.13, Debian):
#   /usr/bin/python3 resize_grad_reference.py > resize_grad_reference.json
# Reference for tests/backends/resize_grad_test.ts: PyTorch's interpolate
# forward and backward on small non-square NHWC cases. TensorFlow's modes map
# to PyTorch's as: bilinear alignCorners ↔ align_corners=True; bilinear
# halfPixelCenters ↔ align_corners=False; nearest (legacy) ↔ "nearest";
# nearest halfPixelCenters ↔ "nearest-exact". The loss is sum(w · resize(x)),
# so the gradient is the resize's transpose applied to w.
import json, math, torch
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)

MODES = {
    "bilinear-alignCorners": dict(mode="bilinear", align_corners=True),
    "bilinear-halfPixelCenters": dict(mode="bilinear", align_corners=False),
    "nearest-legacy": dict(mode="nearest"),
    "nearest-halfPixelCenters": dict(mode="nearest-exact"),
}
SHAPES = [  # [batch, height, width, depth] -> [outHeight, outWidth]
    ([2, 3, 5, 2], [4, 7]),
    ([2, 5, 3, 2], [2, 4]),
    ([1, 4, 6, 3], [3, 9]),
    ([1, 1, 4, 2], [5, 3]),
    ([1, 6, 4, 1], [1, 1]),
]

def values(n, f):
    return [float(torch.tensor(f(i), dtype=torch.float32)) for i in range(n)]

cases = []
for name, kw in MODES.items():
    for (b, h, w, c), (oh, ow) in SHAPES:
        x = torch.tensor(values(b * h * w * c, lambda i: math.cos(i)))
        x = x.reshape(b, h, w, c).requires_grad_(True)
        wt = torch.tensor(values(b * oh * ow * c, lambda i: math.sin(1.7 * i + 0.3)))
        y = F.interpolate(x.permute(0, 3, 1, 2), size=(oh, ow), **kw).permute(0, 2, 3, 1)
        (y * wt.reshape(b, oh, ow, c)).sum().backward()
        cases.append(dict(
            mode=name, shape=[b, h, w, c], size=[oh, ow],
            y=[round(v, 7) for v in y.detach().flatten().tolist()],
            dx=[round(v, 7) for v in x.grad.flatten().tolist()],
        ))
print(json.dumps({"torch": torch.__version__, "cases": cases}))
