"""AVAGFormer at the paper's sizes (512² image, T = 20 VGGish segments, 300 queries): where a
training step's time goes — the frozen audio and image backbones against the trained head — and
what the head keeps for backward (the 300 query maps and the 4096 × 4096 mask-conditioned
attention are the hot spots). Random weights of the real architectures (PVT-v2-b5 through
transformers, torchvggish-layout VGGish): the cost does not depend on the values.

    python benchmarks/bench_avagformer.py [SIZE] [BATCH] [--cuda]
"""

import platform
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds  # noqa: E402

from afcli.models.avagformer import AVAGFormer, AVAGFormerConfig  # noqa: E402
from afcli.models.vggish import VGGish  # noqa: E402


def pvt_b5():
    from transformers import PvtV2Backbone, PvtV2Config

    config = PvtV2Config(
        hidden_sizes=[64, 128, 320, 512],
        depths=[3, 6, 40, 3],
        num_attention_heads=[1, 2, 5, 8],
        sr_ratios=[8, 4, 2, 1],
        mlp_ratios=[4, 4, 4, 4],
        out_indices=[1, 2, 3],
    )
    return PvtV2Backbone(config).eval().requires_grad_(False)


def saved_bytes(head: AVAGFormer, maps, audio) -> dict[str, int]:
    """Bytes of the tensors autograd keeps for backward, by the head's top-level module (both tasks'
    decoders, mask heads and segmentation heads together)."""
    sizes, current = defaultdict(int), ["other"]

    def pack(tensor):
        sizes[current[0]] += tensor.numel() * tensor.element_size()
        return tensor

    def enter(name):
        return lambda module, args: current.__setitem__(0, name)

    hooks = [
        module.register_forward_pre_hook(enter(name.split(".")[0])) for name, module in head.named_modules() if name
    ]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        head(maps, audio)
    for hook in hooks:
        hook.remove()
    return dict(sizes)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    size, batch = (int(args[0]) if args else 512), (int(args[1]) if len(args) > 1 else 1)
    device = "cuda" if torch.cuda.is_available() and "--cuda" in sys.argv else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.manual_seed(0)
    vggish, pvt = VGGish().eval().to(device), pvt_b5().to(device)
    head = AVAGFormer(AVAGFormerConfig()).train().to(device)
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-5)
    images, logmel = torch.randn(batch, 3, size, size, device=device), torch.randn(batch * 20, 1, 96, 64, device=device)
    with torch.no_grad():
        audio = vggish(logmel).view(batch, 20, -1)
        maps = list(pvt(pixel_values=images).feature_maps)

    def head_step():
        out = head(maps, audio)
        loss = sum(v.float().mean() for v in out.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()

    parts = {
        "VGGish, 20 segments per clip (frozen, no grad)": lambda: (torch.no_grad()(vggish)(logmel), sync()),
        "PVT-v2-b5 (frozen, no grad)": lambda: (torch.no_grad()(lambda: pvt(pixel_values=images))(), sync()),
        "head forward": lambda: (torch.no_grad()(lambda: head(maps, audio))(), sync()),
        "head forward + backward + AdamW": head_step,
    }
    print(
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; image {size}², batch {batch}"
    )
    print("| part | time |")
    print("|---|---|")
    for name, fn in parts.items():
        print(f"| {name} | {median_seconds(fn, repeats=3, warmup=1) * 1e3:.0f} ms |")
    saved = saved_bytes(head, maps, audio)
    print("\n| head module | kept for backward |")
    print("|---|---|")
    for name, count in sorted(saved.items(), key=lambda item: -item[1]):
        print(f"| {name} | {count / 2**20:.0f} MiB |")
    print(f"| total | {sum(saved.values()) / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
