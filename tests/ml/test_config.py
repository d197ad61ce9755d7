"""Protocols: what each fills in, what an explicit value overrides, and the command line."""

import argparse

import pytest

from ml.config import PROTOCOLS, TrainConfig, add_arguments, batch_plan, configs_from_args


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
        # run.sh: 64 per GPU × 4 GPUs = 256 clips per step; the yaml's 32 is a named option
        assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.global_batch, cfg.epochs) == (
            "adam",
            1e-3,
            "constant",
            256,
            100,
        )
        assert (cfg.augment, cfg.test_crop, cfg.train_sampling) == (False, 1.0, "random")
        assert (cfg.init, cfg.i3d_padding) == ("authors", "tf-same")
        assert not cfg.normalizes  # from scratch: pixels stay in [0, 1]
        assert TrainConfig(data="d", pretrained="w.pt").resolved().normalizes

    def test_the_modern_protocol_keeps_the_earlier_recipe(self):
        cfg = TrainConfig(data="d", protocol="modern", model="r3d_18").resolved()
        assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.global_batch, cfg.epochs) == (
            "sgd",
            0.01,
            "cosine",
            16,
            20,
        )
        assert (cfg.init, cfg.i3d_padding) == ("default", "symmetric")
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


class GlobalBatchTests:
    @pytest.mark.parametrize(
        "world, micro, expected",
        [
            # (world, per-process, micro, accumulation, global)
            (1, None, (1, 256, 64, 4, 256)),  # one device: 64 at a time, as their GPUs
            (1, 256, (1, 256, 256, 1, 256)),  # one device holding all of it
            (4, None, (4, 64, 64, 1, 256)),  # run.sh: 4 GPUs × 64
            (4, 16, (4, 64, 16, 4, 256)),  # 4 GPUs, 16 at a time: 4 accumulated
            (1, 32, (1, 256, 32, 8, 256)),  # one GPU of small memory
        ],
    )
    def test_per_process_batch_is_the_global_batch_over_the_world(self, world, micro, expected):
        plan = batch_plan(TrainConfig(data="d").resolved().global_batch, world, micro)
        assert (
            plan.world,
            plan.per_process,
            plan.micro,
            plan.accumulation,
            plan.global_batch,
        ) == expected

    def test_it_refuses_batches_that_do_not_divide(self):
        with pytest.raises(ValueError, match="does not split over 3 processes"):
            batch_plan(256, 3)
        with pytest.raises(ValueError, match="--batch-size 48 does not divide the 128"):
            batch_plan(256, 2, 48)

    def test_the_yamls_32_is_a_named_option(self):
        (cfg,) = parse("--global-batch", "yaml")
        assert cfg.resolved().global_batch == 32
        (cfg,) = parse("--global-batch", "launched")
        assert cfg.resolved().global_batch == 256
        with pytest.raises(ValueError, match="a positive number, or one of launched"):
            parse("--global-batch", "big")


class ModificationTests:
    def test_the_protocol_as_is_is_named_plainly(self):
        cfg = TrainConfig(data="d", model="i3d", batch_size=8, workers=0, folds=[1])
        assert cfg.label() == "dfew" and cfg.modifications() == []

    def test_a_changed_setting_is_recorded_as_modified_with_what(self):
        cfg = TrainConfig(data="d", epochs=12, global_batch=16, input_size=32)
        assert cfg.label() == (
            "dfew, modified: global batch 16 (not 256); epochs 12 (not 100); "
            "input size 32 (not 112)"
        )
        assert TrainConfig(data="d", global_batch=32).label() == (
            "dfew, modified: global batch 32 (not 256)"
        )

    def test_the_ecstfl_release_recipe_is_the_2024_code(self):
        cfg = TrainConfig(data="d", recipe="ecstfl-release").resolved()
        # finetune.py: SGD(0.01, momentum 0.9, wd 1e-4), StepLR(50, 0.1), 200 epochs, -b 32;
        # Videos_Dataset.py: 8 segments × 2 frames, RandomSizedCrop(112) + flip; gamma 10.
        assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.schedule, cfg.lr_step) == (
            "sgd",
            0.01,
            1e-4,
            "step",
            50,
        )
        assert (cfg.epochs, cfg.global_batch, cfg.train_sampling, cfg.crop, cfg.augment) == (
            200,
            32,
            "segments",
            "random-sized",
            True,
        )
        assert (cfg.loss, cfg.ec_stfl_variant, cfg.lam, cfg.input_size) == (
            "ec-stfl",
            "release",
            10.0,
            112,
        )
        assert TrainConfig(data="d", recipe="ecstfl-release").label() == "ecstfl-release"
        assert TrainConfig(data="d", recipe="ecstfl-release", lam=1.0).label() == (
            "ecstfl-release, modified: lam 1 (not 10)"
        )

    def test_center_loss_defaults_to_wen_et_als_weight(self):
        cfg = TrainConfig(data="d", loss="center").resolved()
        assert (cfg.lam, cfg.center_alpha) == (0.003, 0.5)
