"""PyTorch reference versions of cddp's three models.

These modules are the shared contract with the C implementation in src/model:
parameter names, tensor layouts and the exact arithmetic of every model are
defined here and must match cddp bit for bit in meaning (DESIGN.md section 3).

- dlrm:      facebookresearch/dlrm DLRM_Net (emb_l, bot_l, top_l, dot interaction)
- two_tower: user tower / item tower, L2-normalised, in-batch softmax with logQ
- vit:       timm VisionTransformer written out in plain PyTorch (no timm import)

Every model takes a batch as a dict of tensors named as the cddp HDF5 schemas
(cddp.ctr.v1, cddp.twotower.v1, cddp.image.v1) and returns logits; `loss()`
turns logits into the mean training loss.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------
# DLRM
# ----------------------------------------------------------------------------

NUM_DENSE = 13
NUM_SPARSE = 26

DLRM_VARIANTS = {
    # dim, bottom MLP (13 -> ... -> dim), top MLP (interaction -> ... -> 1)
    "kaggle": dict(dim=16, bot=[13, 512, 256, 64, 16], top=[367, 512, 256, 1]),
    "terabyte": dict(dim=128, bot=[13, 512, 256, 128], top=[479, 1024, 1024, 512, 256, 1]),
    "tiny": dict(dim=4, bot=[13, 8, 4], top=[355, 8, 1]),
}


def _mlp(sizes, relu_last):
    """nn.Sequential of Linear/ReLU pairs: Linear layers sit at even indices."""
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1], bias=True))
        if k < len(sizes) - 2 or relu_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DLRM(nn.Module):
    """DLRM_Net with dot interaction (self-interaction excluded)."""

    def __init__(self, table_sizes, dim, bot, top, sparse_grad=False):
        super().__init__()
        assert len(table_sizes) == NUM_SPARSE
        assert bot[0] == NUM_DENSE and bot[-1] == dim and top[-1] == 1
        n_vec = NUM_SPARSE + 1
        assert top[0] == dim + n_vec * (n_vec - 1) // 2
        self.dim = dim
        self.emb_l = nn.ModuleList(
            nn.EmbeddingBag(int(n), dim, mode="sum", sparse=sparse_grad) for n in table_sizes)
        self.bot_l = _mlp(bot, relu_last=True)    # ReLU after every bottom layer
        self.top_l = _mlp(top, relu_last=False)   # last top layer: raw logit
        idx = [(i, j) for i in range(n_vec) for j in range(i)]
        self.register_buffer("li", torch.tensor([i for i, _ in idx]), persistent=False)
        self.register_buffer("lj", torch.tensor([j for _, j in idx]), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """The initialisation of facebookresearch/dlrm (normal/uniform, numpy-style)."""
        for seq in (self.bot_l, self.top_l):
            for m in seq:
                if isinstance(m, nn.Linear):
                    n, k = m.in_features, m.out_features
                    m.weight.normal_(0.0, math.sqrt(2.0 / (k + n)))
                    m.bias.normal_(0.0, math.sqrt(1.0 / k))
        for e in self.emb_l:
            n = e.num_embeddings
            e.weight.uniform_(-math.sqrt(1.0 / n), math.sqrt(1.0 / n))

    def forward(self, batch):
        dense, sparse = batch["dense"], batch["sparse"].long()
        B = dense.shape[0]
        x = self.bot_l(dense)
        # one id per bag: a [B, 1] index tensor makes each row its own bag
        ly = [emb(sparse[:, t:t + 1]) for t, emb in enumerate(self.emb_l)]
        T = torch.cat([x] + ly, dim=1).view(B, NUM_SPARSE + 1, self.dim)
        Z = torch.bmm(T, T.transpose(1, 2))
        R = torch.cat([x, Z[:, self.li, self.lj]], dim=1)
        return self.top_l(R).view(B)

    @staticmethod
    def loss(logits, batch):
        return F.binary_cross_entropy_with_logits(logits, batch["label"].float(), reduction="mean")


# ----------------------------------------------------------------------------
# Two-tower retrieval
# ----------------------------------------------------------------------------

TWO_TOWER_VARIANTS = {
    "default": dict(emb=32, hidden=128, out=64, temperature=0.05),
    "tiny": dict(emb=4, hidden=8, out=4, temperature=0.05),
}

LOGQ_ALPHA = 0.05


def _tower_mlp(e, hidden, out):
    return nn.Sequential(nn.Linear(2 * e, hidden), nn.ReLU(), nn.Linear(hidden, out))


def _l2n(x):
    return x / torch.clamp(x.norm(dim=1, keepdim=True), min=1e-12)


class UserTower(nn.Module):
    def __init__(self, num_users, num_items, e, hidden, out):
        super().__init__()
        self.user_emb = nn.Embedding(num_users, e)
        self.hist_emb = nn.Embedding(num_items, e)
        self.mlp = _tower_mlp(e, hidden, out)

    def forward(self, user_id, user_hist):
        u = self.user_emb(user_id.long())
        valid = user_hist >= 0
        h = self.hist_emb(torch.where(valid, user_hist, 0).long())
        h = h * valid.unsqueeze(-1).to(h.dtype)
        cnt = valid.sum(dim=1, keepdim=True).to(h.dtype)
        # mean over valid entries; an all-padding row gives zeros
        h = h.sum(dim=1) / torch.clamp(cnt, min=1.0)
        return _l2n(self.mlp(torch.cat([u, h], dim=1)))


class ItemTower(nn.Module):
    def __init__(self, num_items, num_cats, e, hidden, out):
        super().__init__()
        self.item_emb = nn.Embedding(num_items, e)
        self.cat_emb = nn.Embedding(num_cats, e)
        self.mlp = _tower_mlp(e, hidden, out)

    def forward(self, item_id, item_cat):
        x = torch.cat([self.item_emb(item_id.long()), self.cat_emb(item_cat.long())], dim=1)
        return _l2n(self.mlp(x))


class LogQEstimator:
    """Streaming item-frequency estimate (Yi et al. 2019), the cddp contract.

    A[h]: last step item h was seen; B[h]: smoothed interval between sightings.
    update(items) runs at step t (t = 1 for the first training batch) BEFORE the
    forward pass: for each UNIQUE id in increasing order
        B[h] = (1 - alpha) * B[h] + alpha * (t - A[h]);  A[h] = t
    and returns logQ_j = -log(max(B[item_j], 1)); then t increments.
    """

    def __init__(self, num_items, alpha=LOGQ_ALPHA):
        self.A = np.zeros(num_items, dtype=np.float32)
        self.B = np.zeros(num_items, dtype=np.float32)
        self.alpha = np.float32(alpha)
        self.t = 1

    def update(self, item_id):
        ids = np.asarray(item_id, dtype=np.int64)
        t = np.float32(self.t)
        for h in np.unique(ids):      # np.unique sorts: increasing id order
            self.B[h] = (np.float32(1) - self.alpha) * self.B[h] + self.alpha * (t - self.A[h])
            self.A[h] = t
        self.t += 1
        return torch.from_numpy(-np.log(np.maximum(self.B[ids], np.float32(1))).astype(np.float32))


class TwoTower(nn.Module):
    def __init__(self, num_users, num_items, num_cats, emb, hidden, out, temperature):
        super().__init__()
        self.temperature = temperature
        self.user_tower = UserTower(num_users, num_items, emb, hidden, out)
        self.item_tower = ItemTower(num_items, num_cats, emb, hidden, out)

    def forward(self, batch, logq=None):
        """Logits[i, j] = <u_i, v_j> / temperature - logQ_j over the batch's items."""
        u = self.user_tower(batch["user_id"], batch["user_hist"])
        v = self.item_tower(batch["item_id"], batch["item_cat"])
        logits = u @ v.t() / self.temperature
        if logq is not None:
            logits = logits - logq.to(logits.dtype).unsqueeze(0)
        return logits

    @staticmethod
    def loss(logits, batch):
        target = torch.arange(logits.shape[0], device=logits.device)
        return F.cross_entropy(logits, target, reduction="mean")


# ----------------------------------------------------------------------------
# Vision transformer (timm VisionTransformer names)
# ----------------------------------------------------------------------------

VIT_VARIANTS = {
    "vit-fmnist": dict(img=28, chans=1, patch=4, dim=96, depth=6, heads=4, classes=10),
    "deit-tiny": dict(img=224, chans=3, patch=16, dim=192, depth=12, heads=3, classes=1000),
    "deit-small": dict(img=224, chans=3, patch=16, dim=384, depth=12, heads=6, classes=1000),
    "tiny": dict(img=8, chans=1, patch=4, dim=16, depth=2, heads=2, classes=10),
}

IMAGE_MEAN_STD = {
    1: ((0.2860,), (0.3530,)),                               # Fashion-MNIST
    3: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),       # ImageNet
}


class PatchEmbed(nn.Module):
    def __init__(self, chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch, bias=True)

    def forward(self, x):                      # [B, C, H, W] -> [B, nP, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                     # [B, H, T, hd]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, img, chans, patch, dim, depth, heads, classes, label_smoothing=0.0):
        super().__init__()
        assert img % patch == 0 and dim % heads == 0
        self.chans = chans
        self.label_smoothing = label_smoothing
        n_tok = (img // patch) ** 2 + 1
        self.patch_embed = PatchEmbed(chans, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tok, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        mean, std = IMAGE_MEAN_STD[chans]
        self.register_buffer("img_mean", torch.tensor(mean).view(1, chans, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(std).view(1, chans, 1, 1), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """timm's default init: trunc-normal(0.02) for Linear and pos_embed,
        normal(1e-6) for cls_token, zero biases, LayerNorm (1, 0); the patch
        projection keeps PyTorch's Conv2d default (as timm's 'jax'-less init)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def preprocess(self, images):
        """uint8 [B, H, W, C] -> normalised float [B, C, H, W]."""
        x = images.float().permute(0, 3, 1, 2) / 255.0
        return (x - self.img_mean) / self.img_std

    def forward(self, batch):
        x = self.patch_embed(self.preprocess(batch["images"]))
        B = x.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(x[:, 0])

    def loss(self, logits, batch):
        return F.cross_entropy(logits, batch["labels"].long(), reduction="mean",
                               label_smoothing=self.label_smoothing)


# ----------------------------------------------------------------------------
# Construction from a model name, a variant and the data's description
# ----------------------------------------------------------------------------

MODELS = ("dlrm", "two_tower", "vit")
DEFAULT_VARIANT = {"dlrm": "kaggle", "two_tower": "default", "vit": "vit-fmnist"}


def build_model(model, variant, info, sparse_grad=False, label_smoothing=0.0):
    """info: data description (see read_data_info): table_sizes for dlrm,
    num_users/num_items/num_cats for two_tower, num_classes for vit (optional)."""
    if model == "dlrm":
        cfg = DLRM_VARIANTS[variant]
        return DLRM(info["table_sizes"], cfg["dim"], cfg["bot"], cfg["top"], sparse_grad=sparse_grad)
    if model == "two_tower":
        cfg = TWO_TOWER_VARIANTS[variant]
        return TwoTower(int(info["num_users"]), int(info["num_items"]), int(info["num_cats"]),
                        cfg["emb"], cfg["hidden"], cfg["out"], cfg["temperature"])
    if model == "vit":
        cfg = dict(VIT_VARIANTS[variant])
        if info and info.get("num_classes") is not None:
            cfg["classes"] = int(info["num_classes"])
        return ViT(**cfg, label_smoothing=label_smoothing)
    raise ValueError(f"unknown model {model!r}")


def read_data_info(path):
    """Data description from a cddp HDF5 data file (any of the three schemas)."""
    import h5py
    info = {}
    with h5py.File(path, "r") as f:
        if "sparse" in f:
            ts = f["sparse"].attrs.get("table_sizes", f.attrs.get("table_sizes"))
            info["table_sizes"] = [int(n) for n in ts]
        for k in ("num_users", "num_items", "num_cats", "num_classes"):
            if k in f.attrs:
                info[k] = int(f.attrs[k])
        if "images" in f:
            _, h, w, c = f["images"].shape
            info.update(height=h, width=w, channels=c)
    return info


def batch_from_h5(group, rows=None):
    """Tensors of a batch from an h5py group/file holding schema datasets."""
    names = ("dense", "sparse", "label", "user_id", "user_hist", "item_id", "item_cat",
             "images", "labels")
    out = {}
    for n in names:
        if n in group:
            a = group[n][...] if rows is None else group[n][rows]
            out[n] = torch.from_numpy(np.ascontiguousarray(a))
    return out
