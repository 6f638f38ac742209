"""The strict config loader and the shipped train_config.yaml."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from emavfi.config import from_dict, load_config, to_dict
from emavfi.data.augment import ColorJitter
from emavfi.data.dataset import SourceSpec, parse_source
from emavfi.errors import EmavfiError
from emavfi.losses import LossConfig, TrainingLoss
from emavfi.train.config import TrainConfig
from emavfi.train.data import augment_config

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "train_config.yaml"
ORIGINAL_KEYS = [
    "batch_size",
    "learning_rate",
    "num_epochs",
    "train_data_dir",
    "val_data_dir",
    "checkpoint_path",
    "best_model_path",
    "charbonnier_weight",
    "vgg_weight",
    "color_weight",
    "gradient_weight",
    "temporal_weight",
    "gradient_order",
    "temporal_alpha",
    "output_image_path",
    "color_jitter",
    "crop_size",
    "random_rotation",
    "horizontal_flip",
    "random_grayscale",
]


def test_shipped_config_has_every_key_and_loads():
    raw = yaml.safe_load(SHIPPED.read_text())
    assert set(ORIGINAL_KEYS) <= set(raw)
    assert set(raw) == set(to_dict(TrainConfig()))  # every TrainConfig key is documented there
    cfg = load_config(TrainConfig, SHIPPED)
    assert cfg.learning_rate == pytest.approx(5e-5)
    assert cfg.color_jitter.hue == pytest.approx(0.1)
    assert cfg.crop_size == (256, 256)


@pytest.mark.parametrize(
    "name",
    ["ema_cpu_gpu.yaml", "ema_cpu_finetune.yaml", "ema_cpu_stage3.yaml", "ema_cpu_v2_gpu.yaml"],
)
def test_recipe_configs_of_the_default_model_load(name):
    # the model card's commands must keep working as the config schema evolves
    cfg = load_config(TrainConfig, SHIPPED.parent / name)
    assert cfg.model == "ema-cpu" and cfg.sources and cfg.max_minutes > 0


def test_overrides_parse_yaml_and_nest(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-4\ncolor_jitter: {brightness: 0.1}\n")
    cfg = load_config(
        TrainConfig,
        path,
        [
            "crop_size=[128, 96]",
            "color_jitter.hue=0.05",
            "sources=[{kind: synthetic, path: /tex, weight: 2}]",
        ],
    )
    assert cfg.learning_rate == pytest.approx(1e-4)  # PyYAML reads 1e-4 as a string
    assert cfg.crop_size == (128, 96)
    assert (cfg.color_jitter.brightness, cfg.color_jitter.hue) == (0.1, 0.05)
    assert cfg.sources[0].kind == "synthetic" and cfg.sources[0].weight == 2.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learnig_rate=0.1", "unknown config key 'learnig_rate' (did you mean 'learning_rate'?)"),
        ("color_jitter.hu=0.1", "did you mean 'color_jitter.hue'"),
        ("batch_size=two", "'batch_size': expected int"),
        ("horizontal_flip=3", "'horizontal_flip': expected bool"),
        ("learning_rate=-1e-3", "'learning_rate': -0.001 is impossible"),
        ("learning_rate=.inf", "'learning_rate': inf is impossible, it must be finite"),
        ("learning_rate=1e999", "'learning_rate': '1e999' is impossible, it must be finite"),
        ("max_minutes=.nan", "'max_minutes': nan is impossible"),
        ("random_grayscale=1.5", "'random_grayscale'"),
        ("precision=fp8", "'precision'"),
        ("crop_size=[1, 2, 3]", "'crop_size'"),
        ("best_model_path=best.pth", "'best_model_path'"),
        ("sources=[{path: /x}]", "'sources[0].kind' is required"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(EmavfiError, match=None) as info:
        load_config(TrainConfig, None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(EmavfiError, match="not found"):
        load_config(TrainConfig, tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("batch_size: [1,\n")
    with pytest.raises(EmavfiError, match="not valid YAML"):
        load_config(TrainConfig, broken)
    with pytest.raises(EmavfiError, match="key=value"):
        load_config(TrainConfig, None, ["batch_size"])


def test_the_shipped_config_round_trips():
    """Every key of train_config.yaml loads into TrainConfig and comes back unchanged."""
    raw = yaml.safe_load(SHIPPED.read_text())
    cfg = load_config(TrainConfig, SHIPPED)
    assert to_dict(cfg) == raw
    assert from_dict(TrainConfig, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg


def test_loss_keys_are_the_losses_own():
    """The loss keys, their defaults and ranges are declared once, in losses.LossConfig: a new
    term is a field there and a line in the YAML, nothing in train/."""
    loss_fields = {f.name: f for f in dataclasses.fields(LossConfig)}
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert {name for name in train_fields if name.endswith("_weight")} <= set(loss_fields)
    assert not set(loss_fields) & set(inspect.get_annotations(TrainConfig))  # not redeclared
    for name, field in loss_fields.items():
        assert train_fields[name] is field  # the same default and limits
    assert set(loss_fields) <= set(yaml.safe_load(SHIPPED.read_text()))  # each one documented
    config = load_config(TrainConfig, None, ["charbonnier_weight=0.3", "gradient_order=2"])
    assert TrainingLoss(config).config.charbonnier_weight == 0.3  # the config is the loss's config
    with pytest.raises(EmavfiError, match="'gradient_order': 5 is impossible"):
        load_config(TrainConfig, None, ["gradient_order=5"])


def test_sources_and_colour_jitter_are_the_data_packages_types():
    cfg = load_config(
        TrainConfig,
        None,
        ["sources=[{kind: synthetic, path: /tex, weight: 2, options: {length: 4}}]"],
    )
    assert cfg.sources == [SourceSpec("synthetic", "/tex", 2.0, {"length": 4})]
    assert parse_source(cfg.sources[0]) is cfg.sources[0]  # handed to the data package as it is
    assert cfg.color_jitter == ColorJitter()
    assert augment_config(cfg).color_jitter is cfg.color_jitter
    with pytest.raises(EmavfiError, match="'sources\\[0\\].weight': 0.0 is impossible"):
        load_config(TrainConfig, None, ["sources=[{kind: scenes, path: /x, weight: 0}]"])
