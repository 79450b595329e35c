"""The official networks written again in PyTorch, for timing them beside ours.

Only benchmarks and tests use this (torch is the ``bench`` extra, never a
runtime dependency). Module indices follow the official ``nn.Sequential``
layouts, so ``state_dict()`` names are the official ones and a ``.pth`` saved
from here is read by ``keras_asym.convert.checkpoints.import_official``: both
frameworks then run identical weights.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + (pad, conv3, norm, relu, pad, conv3, norm): ``conv_block.1`` and ``conv_block.5``."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def _encoder(in_channels: int, ngf: int) -> list[nn.Module]:
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(ngf), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2), nn.ReLU(True)]
    return layers


def _decoder(ngf: int, out_channels: int) -> list[nn.Module]:
    layers = []
    for mult in (4, 2):
        layers += [
            nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
            _norm(ngf * mult // 2),
            nn.ReLU(True),
        ]
    return layers + [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]


class StyleGenerator(nn.Module):
    """G, the official ``ResnetStyle2Generator`` (``model0`` encoder, ``model`` style fusion + decoder).

    ``forward(photo, style)`` takes the plain (N, 3) style vector and tiles it
    over the bottleneck, as ``keras_asym.models.networks.StyleGenerator`` does.
    """

    def __init__(
        self, ngf: int = 64, n_blocks: int = 9, model0_res: int = 0, style_dim: int = 3, input_channels: int = 3, output_channels: int = 1
    ):
        super().__init__()
        dim = ngf * 4
        self.model0 = nn.Sequential(*_encoder(input_channels, ngf), *[ResnetBlock(dim) for _ in range(model0_res)])
        fuse = [nn.Conv2d(dim + style_dim, dim, 3, padding=1), _norm(dim), nn.ReLU(True)]
        blocks = [ResnetBlock(dim) for _ in range(n_blocks - model0_res)]
        self.model = nn.Sequential(*fuse, *blocks, *_decoder(ngf, output_channels))

    def forward(self, photo, style):
        features = self.model0(photo)
        tiled = style[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
        return self.model(torch.cat([features, tiled], 1))


class PhotoGenerator(nn.Module):
    """F, the official ``ResnetGenerator`` (one ``model`` sequence)."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, input_channels: int = 1, output_channels: int = 3):
        super().__init__()
        blocks = [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        self.model = nn.Sequential(*_encoder(input_channels, ngf), *blocks, *_decoder(ngf, output_channels))

    def forward(self, drawing):
        return self.model(drawing)


def _trunk(in_channels: int, ndf: int, n_layers: int) -> tuple[list[nn.Module], int]:
    layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    channels = ndf
    for n in range(1, n_layers):
        out = ndf * min(2**n, 8)
        layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), _norm(out), nn.LeakyReLU(0.2, True)]
        channels = out
    return layers, channels


def _patch(channels: int, ndf: int, n_layers: int) -> list[nn.Module]:
    out = ndf * min(2**n_layers, 8)
    return [nn.Conv2d(channels, out, 4, padding=1), _norm(out), nn.LeakyReLU(0.2, True), nn.Conv2d(out, 1, 4, padding=1)]


class PatchDiscriminator(nn.Module):
    """The official ``NLayerDiscriminator`` (D_B and the local discriminators)."""

    def __init__(self, input_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        trunk, channels = _trunk(input_channels, ndf, n_layers)
        self.model = nn.Sequential(*trunk, *_patch(channels, ndf, n_layers))

    def forward(self, x):
        return self.model(x)


def state_dict_from_keras(model, names: dict[str, str]) -> dict[str, torch.Tensor]:
    """A Keras network's weights under official names (the inverse of ``official.load_state_dict``).

    Keras kernels ``(kh, kw, a, b)`` go back to PyTorch's ``(b, a, kh, kw)``, for
    convolutions and transpose convolutions alike.
    """
    state = {}
    for prefix, layer_name in names.items():
        for weight, suffix in zip(model.get_layer(layer_name).weights, ("weight", "bias")):
            value = weight.numpy()
            state[f"{prefix}.{suffix}"] = torch.from_numpy(value.transpose(3, 2, 0, 1).copy() if value.ndim == 4 else value.copy())
    return state


def torch_style_generator(keras_generator) -> StyleGenerator:
    """The PyTorch twin of a ``keras_asym`` ``StyleGenerator``, holding the same weights."""
    from keras_asym.convert import official

    g = keras_generator
    twin = StyleGenerator(g.ngf, g.n_blocks, g.model0_res, g.style_dim, g.input_channels, g.output_channels)
    twin.load_state_dict(state_dict_from_keras(g, official.style_generator_names(g.n_blocks, g.model0_res)))
    return twin.eval()


class StyleDiscriminator(nn.Module):
    """D_A, the official ``NLayerDiscriminatorCls``: a PatchGAN (``model1``) and a style head (``model2``) on one trunk.

    The official class conv is 16x16 (512 px with 3 trunk layers); ``class_kernel`` sizes it for other inputs,
    as ``keras_asym``'s head does.
    """

    def __init__(self, input_channels: int = 1, ndf: int = 64, n_layers: int = 3, n_class: int = 3, class_kernel: int = 16):
        super().__init__()
        trunk, channels = _trunk(input_channels, ndf, n_layers)
        wide = ndf * min(2**n_layers, 8)
        self.model0 = nn.Sequential(*trunk)
        self.model1 = nn.Sequential(*_patch(channels, ndf, n_layers))
        self.model2 = nn.Sequential(
            nn.Conv2d(channels, wide, 4, stride=2, padding=1),
            _norm(wide),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(wide, wide, 4, stride=2, padding=1),
            _norm(wide),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(wide, n_class, class_kernel),
        )

    def forward(self, x):
        features = self.model0(x)
        return self.model1(features), self.model2(features).flatten(1)


def _vgg_stage(in_channels: int, out_channels: int, convs: int, pool: bool) -> nn.Sequential:
    layers = [nn.MaxPool2d(2, 2)] if pool else []
    for i in range(convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class HED(nn.Module):
    """Holistically-nested edge detection (VGG16 trunk, five side outputs, fused), as the official code defines it."""

    def __init__(self):
        super().__init__()
        self.moduleVggOne = _vgg_stage(3, 64, 2, False)
        self.moduleVggTwo = _vgg_stage(64, 128, 2, True)
        self.moduleVggThr = _vgg_stage(128, 256, 3, True)
        self.moduleVggFou = _vgg_stage(256, 512, 3, True)
        self.moduleVggFiv = _vgg_stage(512, 512, 3, True)
        for name, channels in zip(("One", "Two", "Thr", "Fou", "Fiv"), (64, 128, 256, 512, 512)):
            setattr(self, f"moduleScore{name}", nn.Conv2d(channels, 1, 1))
        self.moduleCombine = nn.Sequential(nn.Conv2d(5, 1, 1), nn.Sigmoid())
        self.register_buffer("bgr_mean", torch.tensor([104.00698793, 116.66876762, 122.67891434]).view(1, 3, 1, 1))

    def forward(self, rgb01):
        x = rgb01.flip(1) * 255.0 - self.bgr_mean
        scores = []
        for name in ("One", "Two", "Thr", "Fou", "Fiv"):
            x = getattr(self, f"moduleVgg{name}")(x)
            score = getattr(self, f"moduleScore{name}")(x)
            scores.append(nn.functional.interpolate(score, size=rgb01.shape[2:], mode="bilinear", align_corners=False))
        return self.moduleCombine(torch.cat(scores, 1))


class LPIPS(nn.Module):
    """LPIPS v0.1 ``net-lin`` over AlexNet's five ReLU outputs (the official relaxed-cycle distance)."""

    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)

    def _taps(self, x):
        taps, x = [], (x - self.shift) / self.scale
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                taps.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, a, b):
        return sum(lin((ta - tb) ** 2).mean((2, 3)) for lin, ta, tb in zip(self.lins, self._taps(a), self._taps(b)))


class ImagePool:
    """The official 50-image history: past the warm-up, half the queries return (and replace) a stored fake."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images):
        if self.size == 0:  # the official pool_size 0: no history
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(1).item() > 0.5:
                k = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[k].clone())
                self.images[k] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


class OfficialTrainingStep:
    """One ``optimize_parameters`` of the official asymmetric model, written again: the timing twin of our ``train_step``.

    G and F updated together (LSGAN, style classification weighted by the soft
    style, three local discriminators, relaxed forward cycle LPIPS(HED) with its
    truncated twin, strict L1 backward cycle), then every discriminator. Weights
    are the official ``normal(0, 0.02)`` initialisation; HED and LPIPS are frozen.
    """

    def __init__(
        self,
        ngf: int = 64,
        ndf: int = 64,
        n_blocks: int = 9,
        progress: float = 0.3,
        trunc_levels: float = 31.875,
        lambda_a: float = 5.0,
        lambda_b: float = 5.0,
        lambda_trunc: float = 5.0,
        lambda_local: float = 0.5,
        image_size: int = 512,
        n_layers: int = 3,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        niter: int = 100,
        niter_decay: int = 100,
    ):
        self.G, self.F = StyleGenerator(ngf, n_blocks), PhotoGenerator(ngf, n_blocks)
        self.D_A = StyleDiscriminator(1, ndf, n_layers, class_kernel=image_size // 2 ** (n_layers + 2))
        self.D_B = PatchDiscriminator(3, ndf, n_layers)
        self.D_local = nn.ModuleList(PatchDiscriminator(2, ndf, n_layers) for _ in range(3))
        self.hed, self.lpips = HED(), LPIPS()
        for module in (self.G, self.F, self.D_A, self.D_B, self.D_local, self.hed, self.lpips):
            for layer in module.modules():
                if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(layer.weight, 0.0, 0.02)
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)
        for frozen in (self.hed, self.lpips):
            frozen.requires_grad_(False)
        self.discriminators = [self.D_A, self.D_B, *self.D_local]
        generator_params = [*self.G.parameters(), *self.F.parameters()]
        self.opt_G = torch.optim.Adam(generator_params, lr=lr, betas=(beta1, 0.999))
        self.opt_D = torch.optim.Adam([p for d in self.discriminators for p in d.parameters()], lr=lr, betas=(beta1, 0.999))
        # The official BaseModel.setup: lr_policy 'linear' with epoch_count 1, stepped at the end of every epoch.
        rule = lambda epoch: 1.0 - max(0, epoch + 1 - niter) / float(niter_decay + 1)  # noqa: E731
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in (self.opt_G, self.opt_D)]
        self.niter, self.niter_decay = niter, niter_decay
        self.pool_B, self.pool_A = ImagePool(pool_size), ImagePool(pool_size)
        self.lambda_b, self.lambda_local, self.levels = lambda_b, lambda_local, trunc_levels
        self._lambda_a0, self._lambda_trunc0 = lambda_a, lambda_trunc
        self.set_progress(progress)
        self.last_losses: dict = {}

    def set_progress(self, progress: float) -> None:
        """The official ``backward_G`` weights: the relaxed cycle fades while the truncated one grows."""
        self.process = progress
        self.lambda_a = self._lambda_a0 * (1 - progress * 0.9)
        self.lambda_trunc = self._lambda_trunc0 * progress * 0.9

    def begin_epoch(self, epoch: int) -> None:
        """The official ``train.py`` at the top of epoch ``epoch`` (1-based): ``update_process(epoch)``."""
        self.set_progress((epoch - 1) / float(self.niter_decay + self.niter))

    def end_epoch(self) -> None:
        """The official ``update_learning_rate()`` after an epoch: every scheduler steps once."""
        for scheduler in self.schedulers:
            scheduler.step()

    @staticmethod
    def _gan(prediction, real: bool):
        return ((prediction - (1.0 if real else 0.0)) ** 2).mean()

    @staticmethod
    def _masked(drawing, mask):
        return torch.cat([((drawing / 2 + 0.5) * mask + 1 - mask) * 2 - 1, mask], 1)

    def _style_ce(self, logits, weights):
        return (weights * -nn.functional.log_softmax(logits, 1)).sum(1).mean()

    def _hed(self, image):
        return ((self.hed(image / 2 + 0.5) - 0.5) * 2).expand(-1, 3, -1, -1)

    def truncate(self, drawing):
        """The official 6-bit quantizer: ``.int()`` truncates, and carries no gradient."""
        return ((drawing.detach() + 1) * self.levels).int().float() / self.levels - 1

    def truncation_cycle(self, truncated, real_hed):
        """``cycle_A2`` of an already truncated drawing, weighted."""
        return self.lpips(self._hed(self.F(truncated)), real_hed).mean() * self.lambda_trunc

    def generator_losses(self, batch: dict) -> tuple[dict, dict]:
        """The official ``backward_G`` terms (official names, weights applied) and the images they came from."""
        real_a, real_b, style = batch["real_A"], batch["real_B"], batch["style"]
        fakes = {"fake_B": self.G(real_a, style)}
        fakes["rec_A"] = self.F(fakes["fake_B"])
        fakes["fake_A"] = self.F(real_b)
        fakes["rec_B"] = self.G(fakes["fake_A"], style)
        patch, logits = self.D_A(fakes["fake_B"])
        out = {"G_A": self._gan(patch, True), "G_A_cls": self._style_ce(logits, style)}
        for suffix, d, mask in zip(("l", "le", "ll"), self.D_local, batch["masks_A"]):
            out[f"G_A_{suffix}"] = self._gan(d(self._masked(fakes["fake_B"], mask)), True) * self.lambda_local
        out["G_B"] = self._gan(self.D_B(fakes["fake_A"]), True)
        real_hed = self._hed(real_a)
        out["cycle_A"] = self.lpips(self._hed(fakes["rec_A"]), real_hed).mean() * self.lambda_a
        out["cycle_A2"] = self.truncation_cycle(self.truncate(fakes["fake_B"]), real_hed)
        out["cycle_B"] = (fakes["rec_B"] - real_b).abs().mean() * self.lambda_b
        out["G"] = sum(out.values())
        return out, fakes

    def discriminator_losses(self, batch: dict, fake_b, fake_a) -> dict:
        """The official ``backward_D_*`` terms on real images and pooled fakes (each local D queries the pool anew)."""
        real_a, real_b, style = batch["real_A"], batch["real_B"], batch["style"]
        patch_real, cls_real = self.D_A(real_b)
        patch_fake, cls_fake = self.D_A(self.pool_B.query(fake_b))
        out = {
            "D_A": (self._gan(patch_real, True) + self._gan(patch_fake, False)) * 0.5,
            "D_A_cls": (self._style_ce(cls_real, style) + self._style_ce(cls_fake, style)) * 0.5,
        }
        for suffix, d, mask_a, mask_b in zip(("l", "le", "ll"), self.D_local, batch["masks_A"], batch["masks_B"]):
            pooled = self.pool_B.query(fake_b)
            out[f"D_A_{suffix}"] = (
                self._gan(d(self._masked(real_b, mask_b)), True) + self._gan(d(self._masked(pooled, mask_a)), False)
            ) * 0.5
        out["D_B"] = (self._gan(self.D_B(real_a), True) + self._gan(self.D_B(self.pool_A.query(fake_a)), False)) * 0.5
        return out

    def step(self, batch: dict) -> float:
        """One ``optimize_parameters``: G and F, then every discriminator. Returns the generator loss.

        ``batch``: real_A (N,3,H,W), real_B (N,1,H,W), style (N,3), masks_A / masks_B (nose, eyes, lips; (N,1,H,W) each).
        """
        for d in self.discriminators:
            d.requires_grad_(False)
        self.opt_G.zero_grad()
        g_losses, fakes = self.generator_losses(batch)
        g_losses["G"].backward()
        self.opt_G.step()
        for d in self.discriminators:
            d.requires_grad_(True)
        self.opt_D.zero_grad()
        d_losses = self.discriminator_losses(batch, fakes["fake_B"].detach(), fakes["fake_A"].detach())
        sum(d_losses.values()).backward()
        self.opt_D.step()
        self.last_losses = {k: float(v.detach()) for k, v in {**g_losses, **d_losses}.items()}
        return float(g_losses["G"].detach())


def load_perceptual(step: OfficialTrainingStep, hed: dict, lpips: dict) -> None:
    """HED (``pytorch-hed`` names) and LPIPS (a whole official ``PNetLin`` state_dict) into the twin, from numpy arrays."""
    step.hed.load_state_dict({k: torch.from_numpy(v) for k, v in hed.items()} | {"bgr_mean": step.hed.bgr_mean})
    state = {}
    for name, value in lpips.items():
        if name.startswith("scaling_layer."):  # scaling_layer.shift -> the (1, 3, 1, 1) buffer shift
            key = name.split(".")[1]
            value = value.reshape(getattr(step.lpips, key).shape)
        elif name.startswith("net."):  # net.slice<k>.<features index>.<weight|bias>
            _, _, index, kind = name.split(".")
            key = f"features.{index}.{kind}"
        else:  # lin<k>.model.1.weight
            key = f"lins.{name[3]}.weight"
        state[key] = torch.from_numpy(value)
    step.lpips.load_state_dict(state)


def random_official_batch(batch: int, size: int, seed: int = 0) -> dict:
    """Inputs of the shapes the official step takes (photo, drawing, soft style, three part masks per domain)."""
    g = torch.Generator().manual_seed(seed)

    def masks():
        return [(torch.rand(batch, 1, size, size, generator=g) > 0.9).float() for _ in range(3)]

    style = torch.softmax(torch.randn(batch, 3, generator=g), 1)
    return {
        "real_A": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
        "real_B": torch.rand(batch, 1, size, size, generator=g) * 2 - 1,
        "style": style,
        "masks_A": masks(),
        "masks_B": masks(),
    }
