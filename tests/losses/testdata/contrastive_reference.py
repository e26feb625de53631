# Regenerate contrastive_reference.json: /usr/bin/python3 contrastive_reference.py > contrastive_reference.json (torch 1.13).
# Reference for tests/losses: SupContrast-formula loss written with explicit
# loops (anchors, positives), float64 torch autograd for the gradient.
import json, torch
torch.set_default_dtype(torch.float64)

def ref_loss(f, weight, T, baseT):
    b, v, d = f.shape
    z = torch.cat(torch.unbind(f, 1), 0)  # view-major [n, d]
    z = z / z.norm(dim=1, keepdim=True)
    n = b * v
    total, anchors = 0.0, 0
    for i in range(n):
        den = sum(torch.exp(z[i] @ z[k] / T) for k in range(n) if k != i)
        num, wsum = 0.0, 0.0
        for j in range(n):
            if j == i: continue
            w = weight(i % b, j % b)
            if w == 0: continue
            num = num + w * (z[i] @ z[j] / T - torch.log(den))
            wsum += w
        if wsum > 0:
            total = total - num / wsum
            anchors += 1
    return (T / baseT) * total / max(anchors, 1)

def case(f, weight, T, baseT, **inputs):
    x = torch.tensor(f, requires_grad=True)
    L = ref_loss(x, weight, T, baseT)
    L.backward()
    return {"features": f, **inputs, "temperature": T, "baseTemperature": baseT,
            "loss": L.item(), "grad": [round(g, 9) for g in x.grad.flatten().tolist()]}

fa = [[[0.3, -1.2, 0.5, 0.8], [0.1, -0.9, 0.7, 1.1]],
      [[-0.6, 0.2, 1.4, -0.3], [-0.4, 0.5, 1.0, -0.8]],
      [[0.9, -0.7, 0.1, 0.6], [1.3, -0.2, -0.4, 0.2]]]
la = [0, 1, 0]
out = {}
out["supcon_a"] = case(fa, lambda i, j: 1.0 if la[i] == la[j] else 0.0, 0.1, 0.07, labels=la)
out["ntxent_a"] = case(fa, lambda i, j: 1.0 if i == j else 0.0, 0.5, 0.5)
fb = [[[0.2, 0.9, -0.4], [0.5, 0.7, -0.1]],
      [[-1.0, 0.3, 0.8], [-0.7, 0.1, 1.2]],
      [[0.4, -0.5, 0.6], [0.8, -0.3, 0.2]],
      [[0.0, 1.0, 1.0], [-0.2, 0.6, 1.1]]]
dom = [0, 0, 1, 1]; tgt = [1, 2, 1, 1]
def mt(ppw):
    def w(i, j):
        if dom[i] != dom[j]: return 0.0
        return 1.0 if tgt[i] == tgt[j] else ppw
    return w
out["modal_b"] = case(fb, mt(0.0), 0.5, 0.5, domain=dom, target=tgt, partialPositiveWeight=0.0)
out["modal_b_partial"] = case(fb, mt(0.3), 0.5, 0.5, domain=dom, target=tgt, partialPositiveWeight=0.3)
print(json.dumps(out))
