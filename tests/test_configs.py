"""The presets in configs/ are runnable as they are: each parses into its command's config, every key known."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from absl import flags

from keras_asym.distillation.config import PREDATED, DistillConfig
from keras_asym.models.cycle_gan import HYPERPARAMETERS, AsymmetricCycleGAN, build_model
from keras_asym.training.config import TrainConfig
from keras_asym.utils.config_flags import define_flags, from_flags, model_options

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = {
    "official.flags": TrainConfig,
    "cpu_small.flags": TrainConfig,
    "student.flags": DistillConfig,
    "student_512.flags": DistillConfig,
}


def _parse(cls, *argv: str):
    values = flags.FlagValues()
    define_flags(cls, flag_values=values)
    values(["prog", "--output=runs/x", *argv])
    return from_flags(cls, values)


def test_every_preset_is_known_to_this_test():
    assert sorted(p.name for p in CONFIGS.glob("*.flags")) == sorted(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_preset_parses_into_its_config_and_sets_what_it_says(name):
    cls = PRESETS[name]
    config = _parse(cls, f"--flagfile={CONFIGS / name}")
    lines = [line for line in (CONFIGS / name).read_text().splitlines() if line.startswith("--")]
    assert lines, name
    defaults = cls()
    changed = {f.name for f in dataclasses.fields(cls) if getattr(config, f.name) != getattr(defaults, f.name)}
    assert changed, f"{name} sets nothing that differs from the defaults"
    if cls is DistillConfig:
        config.resolved().validate()


def test_the_official_preset_is_the_official_train_sh():
    config = _parse(TrainConfig, f"--flagfile={CONFIGS / 'official.flags'}")
    assert (config.image_size, config.load_size, config.batch_size, config.learning_rate) == (512, 572, 1, 1.5e-5)
    assert (config.niter, config.niter_decay, config.cycle_distance, config.parts) == (100, 100, "hed_lpips", ("eyes", "nose", "lips"))


def test_distill_flags_are_the_config_fields_and_record_the_same_json():
    config = _parse(DistillConfig, "--teacher=t.keras", "--photos=a,b", "--crop=64").resolved()
    assert config.photos == ("a", "b") and config.procedural == 0 and config.crop == 64
    assert DistillConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert _parse(DistillConfig, "--teacher=t.keras").resolved().procedural == 400  # no photo folders: procedural portraits


def test_a_recorded_distill_config_from_before_an_option_existed_resumes_as_it_started():
    old = {"teacher": "t.keras", "output": "runs/old", "photos": ["p"], "procedural": 0, "size": 128, "epochs": 3, "future_key": 1}
    config = DistillConfig.from_json(old)
    for name, value in PREDATED.items():
        assert getattr(config, name) == value
    assert config.crop_grid == 1 and DistillConfig().crop_grid == 8  # the option's default now differs from then
    assert (config.size, config.epochs, config.photos) == (128, 3, ("p",))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"crop": 12}, "multiples of 8"),
        ({"size": 64, "crop": 128}, "the crop no larger"),
        ({"real_share": 1.5}, "--real_share"),
        ({"epochs": 2, "full_size_epochs": 3}, "--full_size_epochs 3"),
        ({"transposed_up": True, "full_res_conv": False}, "--nofull_res_conv .* --transposed_up"),
        ({"bottleneck_stride": 2}, "--bottleneck_stride 2"),
    ],
)
def test_a_distill_config_that_cannot_make_a_run_says_which_flags(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DistillConfig(teacher="t.keras"), **changes).validate()


def test_the_model_options_of_train_are_the_models_arguments_and_nothing_else():
    options = set(model_options(TrainConfig()))
    sizes = set(inspect.signature(build_model).parameters) - {"model_kwargs"}
    init = set(inspect.signature(AsymmetricCycleGAN.__init__).parameters)
    assert options == sizes | set(HYPERPARAMETERS), "a TrainConfig model field and build_model/AsymmetricCycleGAN disagree"
    assert set(HYPERPARAMETERS) <= init


def test_the_model_is_rebuilt_from_its_config_with_the_same_options():
    config = TrainConfig(
        image_size=32, ngf=4, ndf=4, n_blocks=1, n_layers_d=1, lambda_local=0.25, use_truncation=False, pool_size=3, seed=7
    )
    model = build_model(**model_options(config))
    again = AsymmetricCycleGAN.from_config(model.get_config())
    assert {name: getattr(again, name) for name in HYPERPARAMETERS} == {name: getattr(config, name) for name in HYPERPARAMETERS}
    assert again.parts == model.parts and again.generator.count_params() == model.generator.count_params()


def _bounded_fields():
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("bounds")]


@pytest.mark.parametrize("field", _bounded_fields(), ids=lambda f: f.name)
def test_a_train_option_outside_its_bounds_is_refused_by_the_flag_parser_and_by_validate(field):
    lower, upper = field.metadata["bounds"]
    outside = [v for v in (lower - 1 if isinstance(lower, int) else lower * 0.5 - 1, upper * 2 + 1) if v is not None]
    for value in outside:
        with pytest.raises(flags.IllegalFlagValueError):
            _parse(TrainConfig, f"--{field.name}={value}")
        with pytest.raises(ValueError, match=f"--{field.name} must be in"):
            dataclasses.replace(TrainConfig(image_size=128, n_layers_d=3), **{field.name: type(field.default)(value)}).validate()
    for value in (lower, upper):  # the bounds themselves are accepted by the parser
        assert getattr(_parse(TrainConfig, f"--{field.name}={value}"), field.name) == value


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_float_option_is_refused(value):
    with pytest.raises(flags.IllegalFlagValueError):
        _parse(TrainConfig, f"--learning_rate={value}")
    with pytest.raises(ValueError, match="finite"):
        TrainConfig(lambda_cycle=float(value)).validate()


def test_validate_refuses_what_no_single_bound_can_say(tmp_path):
    with pytest.raises(ValueError, match="multiple of 4"):
        TrainConfig(image_size=130).validate()
    with pytest.raises(ValueError, match="smaller than --image_size"):
        TrainConfig(image_size=128, load_size=100).validate()
    with pytest.raises(ValueError, match="model0_res"):
        TrainConfig(n_blocks=2, model0_res=3).validate()
    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(niter=0, niter_decay=0).validate()
    with pytest.raises(ValueError, match="--hed_weights"):
        TrainConfig(cycle_distance="hed_lpips", hed_weights=str(tmp_path / "missing.keras"), lpips_weights="x").validate()
    TrainConfig().validate()  # the defaults make a run
