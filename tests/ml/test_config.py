"""Protocols: what each fills in, what an explicit value overrides, and the command line."""

import argparse

import pytest

from ml.config import PROTOCOLS, TrainConfig, add_arguments, configs_from_args


def parse(*argv: str) -> list[TrainConfig]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return configs_from_args(parser.parse_args(["--data", "d", *argv]))


class TrainConfigTests:
    @pytest.mark.parametrize(
        "model, side",
        [("r3d_18", 112), ("mc3_18", 112), ("resnet18_lstm", 112), ("c3d", 112), ("p3d", 160)]
        + [("i3d", 224)],
    )
    def test_the_dfew_protocol_uses_the_authors_input_size_per_model(self, model, side):
        assert TrainConfig(data="d", model=model).resolved().input_size == side

    def test_the_dfew_protocol_is_the_authors_training_recipe(self):
        cfg = TrainConfig(data="d").resolved()
        assert cfg.protocol == "dfew"
        assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.batch_size, cfg.epochs) == (
            "adam",
            1e-3,
            "constant",
            32,
            100,
        )
        assert (cfg.augment, cfg.test_crop, cfg.train_sampling) == (False, 1.0, "random")
        assert not cfg.normalizes  # from scratch: pixels stay in [0, 1]
        assert TrainConfig(data="d", pretrained="w.pt").resolved().normalizes

    def test_the_modern_protocol_keeps_the_earlier_recipe(self):
        cfg = TrainConfig(data="d", protocol="modern", model="r3d_18").resolved()
        assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.batch_size, cfg.epochs) == (
            "sgd",
            0.01,
            "cosine",
            16,
            20,
        )
        assert (cfg.augment, cfg.test_crop, cfg.input_size, cfg.normalizes) == (
            True,
            0.875,
            224,
            True,
        )
        assert TrainConfig(data="d", protocol="modern", model="c3d").resolved().input_size == 112

    def test_an_explicit_value_overrides_the_protocol(self):
        cfg = TrainConfig(data="d", lr=0.02, augment=True, input_size=64).resolved()
        assert (cfg.lr, cfg.augment, cfg.input_size, cfg.optimizer) == (0.02, True, 64, "adam")

    def test_the_release_ec_stfl_defaults_to_its_readme_weight(self):
        assert TrainConfig(data="d", loss="ec-stfl").resolved().lam == 0.1
        release = TrainConfig(data="d", loss="ec-stfl", ec_stfl_variant="release")
        assert release.resolved().lam == 10.0

    def test_every_protocol_sets_the_same_fields(self):
        assert PROTOCOLS["dfew"].keys() == PROTOCOLS["modern"].keys()
        for name in PROTOCOLS["dfew"]:
            assert getattr(TrainConfig(data="d"), name) is None  # left to the protocol


class CommandLineTests:
    def test_it_has_one_option_per_config_field(self):
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        dests = {a.dest for a in parser._actions} - {"help"}
        fields = set(TrainConfig.__dataclass_fields__)
        assert dests == (fields - {"progress"}) | {"no_progress"}

    def test_it_parses_into_configs_with_the_protocol_left_to_resolve(self):
        (cfg,) = parse("--model", "p3d", "--folds", "1-3,5", "--no-augment", "--no-progress")
        assert (cfg.model, cfg.folds, cfg.augment, cfg.progress) == (
            "p3d",
            [1, 2, 3, 5],
            False,
            False,
        )
        assert cfg.lr is None and cfg.resolved().input_size == 160

    def test_a_list_of_lambdas_is_a_sweep_with_one_folder_each(self):
        configs = parse("--loss", "ec-stfl", "--lambda", "0.01,1", "--out", "runs/x")
        assert [(c.lam, c.out) for c in configs] == [
            (0.01, "runs/x/lambda-0.01"),
            (1.0, "runs/x/lambda-1"),
        ]

    def test_it_rejects_an_unknown_choice(self):
        with pytest.raises(SystemExit):
            parse("--protocol", "fast")
        with pytest.raises(ValueError, match="unknown EC-STFL variant 'paper'"):
            TrainConfig(data="d", ec_stfl_variant="paper")
