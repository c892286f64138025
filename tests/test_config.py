"""Tests for golden_model.config: defaults, layering, validation messages, TOML, --set.

Every bad value must raise :class:`ConfigError` with one exact, single-line message.
Files are written only under pytest's ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from golden_model.config import (
    TASK_PRESETS,
    ConfigError,
    HardwareConfig,
    MGDConfig,
    MGDSettings,
    TaskConfig,
    build_config,
    load_config,
    load_toml,
    network_param_count,
    network_sizes,
    parse_assignment,
    task_shape,
)
from golden_model.datasets import load_dataset
from golden_model.hw_spec import hw_spec

# ------------------------------------------------------------------------ helpers


def _known(cls: type) -> str:
    return ", ".join(sorted(f.name for f in dataclasses.fields(cls)))


def _error(*layers: dict) -> str:
    """The message of the ConfigError that build_config raises; it must be one line."""
    with pytest.raises(ConfigError) as info:
        build_config(*layers)
    message = str(info.value)
    assert "\n" not in message
    return message


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------ defaults, layers


def test_dataclass_defaults_validate() -> None:
    cfg = MGDConfig()
    assert cfg.validate() is cfg
    assert cfg == MGDConfig()
    assert cfg.task.name == "xor"


def test_build_config_with_no_layers_is_the_xor_preset() -> None:
    cfg = build_config()
    xor = TASK_PRESETS["xor"]
    assert cfg.task.name == "xor"
    assert cfg.steps == xor["steps"]
    assert cfg.eval_every == xor["eval_every"]
    assert cfg.network.hidden == xor["network"]["hidden"]
    assert cfg.network.init_scale == xor["network"]["init_scale"]
    assert cfg.mgd.eta == xor["mgd"]["eta"]
    # Fields the preset does not mention keep the dataclass defaults.
    assert cfg.mgd.perturbation == MGDSettings.perturbation
    assert cfg.mgd.tau_x == MGDSettings.tau_x


def test_preset_sits_over_the_defaults() -> None:
    cfg = build_config({"task": {"name": "digits"}})
    assert cfg.mgd.eta == 5.0
    assert cfg.mgd.tau_x == 100
    assert cfg.mgd.tau_theta == 100
    assert cfg.network.hidden == [32]
    assert cfg.steps == 8_000_000
    assert cfg.backprop.updates == 100_000
    assert cfg.mgd.tau_p == MGDSettings.tau_p  # not in the preset: default


def test_toml_file_sits_over_the_preset(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "run.toml",
        '[task]\nname = "digits"\n\n[mgd]\neta = 2.5\n\n[network]\nhidden = [8, 4]\n',
    )
    cfg = load_config(path)
    assert cfg.mgd.eta == 2.5  # file beats preset (5.0)
    assert cfg.network.hidden == [8, 4]
    assert cfg.mgd.tau_x == 100  # preset value the file does not touch


def test_override_sits_over_the_toml_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.toml", '[task]\nname = "digits"\n\n[mgd]\neta = 2.5\n')
    cfg = load_config(path, {"mgd": {"eta": 0.5}}, {"seed": 7})
    assert cfg.mgd.eta == 0.5
    assert cfg.seed == 7
    assert cfg.mgd.tau_x == 100


def test_task_chosen_by_override_picks_the_preset_under_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.toml", "[mgd]\neta = 2.5\n")
    cfg = load_config(path, {"task": {"name": "digits"}})
    assert cfg.task.name == "digits"
    assert cfg.mgd.tau_x == 100  # digits preset applies
    assert cfg.mgd.eta == 2.5  # but the file still beats it


def test_later_override_wins_and_sections_merge() -> None:
    cfg = build_config({"mgd": {"eta": 0.3, "dtheta": 0.2}}, {"mgd": {"eta": 0.4}})
    assert cfg.mgd.eta == 0.4
    assert cfg.mgd.dtheta == 0.2


def test_integers_given_for_reals_become_floats() -> None:
    cfg = build_config({"mgd": {"eta": 1}})
    assert cfg.mgd.eta == 1.0 and isinstance(cfg.mgd.eta, float)


# ----------------------------------------------------------------------- bad values

BAD_VALUES = [
    ({"steps": 0}, "steps must be a positive integer, not 0"),
    ({"steps": 1.5}, "steps must be a positive integer, not 1.5"),
    ({"runs": -1}, "runs must be a positive integer, not -1"),
    ({"runs": True}, "runs must be a positive integer, not True"),
    ({"seed": -1}, "seed must be an integer >= 0, not -1"),
    ({"eval_every": 0}, "eval_every must be a positive integer, not 0"),
    ({"mgd": {"tau_p": 0}}, "mgd.tau_p must be a positive integer, not 0"),
    ({"mgd": {"tau_x": False}}, "mgd.tau_x must be a positive integer, not False"),
    (
        {"mgd": {"perturbation": "cdma"}},
        "mgd.perturbation must be one of 'code', 'time', 'frequency', 'walsh', not 'cdma'",
    ),
    ({"mgd": {"mode": "edge"}}, "mgd.mode must be one of 'weight', 'node', not 'edge'"),
    (
        {"mgd": {"baseline": "digital"}},
        "mgd.baseline must be one of 'discrete', 'analog', not 'digital'",
    ),
    (
        {"mgd": {"optimizer": "rmsprop"}},
        "mgd.optimizer must be one of 'sgd', 'momentum', 'adam', 'tiki_taka', not 'rmsprop'",
    ),
    ({"mgd": {"dtheta": 0}}, "mgd.dtheta must be a number > 0.0, not 0"),
    ({"mgd": {"dtheta": -0.1}}, "mgd.dtheta must be a number > 0.0, not -0.1"),
    ({"mgd": {"eta": "fast"}}, "mgd.eta must be a number >= 0.0, not 'fast'"),
    ({"mgd": {"eta": True}}, "mgd.eta must be a number >= 0.0, not True"),
    ({"mgd": {"eta": float("nan")}}, "mgd.eta must be a number >= 0.0, not nan"),
    (
        {"mgd": {"sparsity": 1.0}},
        "mgd.sparsity must be a number >= 0.0 and <= 0.99, not 1.0",
    ),
    ({"network": {"hidden": [0]}}, "network.hidden must be a list of positive integers, not [0]"),
    (
        {"network": {"hidden": [3, -1]}},
        "network.hidden must be a list of positive integers, not [3, -1]",
    ),
    (
        {"network": {"hidden": "32"}},
        "network.hidden must be a list of positive integers, not '32'",
    ),
    (
        {"network": {"hidden": [True]}},
        "network.hidden must be a list of positive integers, not [True]",
    ),
    (
        {"network": {"activation": "softplus"}},
        "network.activation must be one of 'sigmoid', 'tanh', 'relu', 'hard_sigmoid', "
        "not 'softplus'",
    ),
    (
        {"network": {"cost": "cross_entropy", "output_activation": "sigmoid"}},
        "network.output_activation must be 'linear' when network.cost is 'cross_entropy' "
        "(softmax is part of the cost), not 'sigmoid'",
    ),
    (
        {"task": {"name": "nope"}},
        "task.name must be one of 'xor', 'parity', 'images7', 'digits', 'mnist', "
        "'fashion_mnist', 'cifar10', 'file', 'arrays', not 'nope'",
    ),
    ({"task": {"parity_bits": 1}}, "task.parity_bits must be an integer from 2 to 16, not 1"),
    ({"task": {"parity_bits": 17}}, "task.parity_bits must be an integer from 2 to 16, not 17"),
    ({"task": {"data_dir": 3}}, "task.data_dir must be a folder path, not 3"),
    (
        {"nonideal": {"weight_bits": 1}},
        "nonideal.weight_bits must be 0 (float) or at least 2, not 1",
    ),
    (
        {"nonideal": {"weight_bits": 8, "weight_frac": 8}},
        "nonideal.weight_frac must be less than nonideal.weight_bits (8), not 8",
    ),
    (
        {"nonideal": {"weight_bits": 8, "weight_frac": 9}},
        "nonideal.weight_frac must be less than nonideal.weight_bits (8), not 9",
    ),
    (
        {"mgd": {"freq_min": 0.3, "freq_max": 0.2}},
        "mgd.freq_max must be greater than mgd.freq_min (0.3), not 0.2",
    ),
    (
        {"mgd": {"freq_min": 0.3, "freq_max": 0.3}},
        "mgd.freq_max must be greater than mgd.freq_min (0.3), not 0.3",
    ),
    (
        {"mgd": {"sparsity": 0.5, "perturbation": "time"}},
        "mgd.sparsity applies to 'code' perturbation only, not 'time'",
    ),
    ({"backprop": {"enabled": 1}}, "backprop.enabled must be true or false, not 1"),
    (
        {"backprop": {"optimizer": "tiki_taka"}},
        "backprop.optimizer must be one of 'sgd', 'momentum', 'adam', not 'tiki_taka'",
    ),
    (
        {"mgd": {"foo": 1}},
        f"unknown config field 'mgd.foo' (known: {_known(MGDSettings)})",
    ),
    ({"foo": {"bar": 1}}, f"unknown config field 'foo' (known: {_known(MGDConfig)})"),
    ({"mgd": 3}, "config section 'mgd' must be a table, not 3"),
    ({"network": [16]}, "config section 'network' must be a table, not [16]"),
    # the on-chip network datapath (hw.datapath = "mlp")
    ({"hw": {"datapath": "chip"}}, "hw.datapath must be one of 'none', 'mlp', not 'chip'"),
    ({"hw": {"x_bits": 1}}, "hw.x_bits must be an integer from 2 to 32, not 1"),
    ({"hw": {"x_frac": 8}}, "hw.x_frac must be an integer from 0 to 7, not 8"),
    ({"hw": {"z_bits": 33}}, "hw.z_bits must be an integer from 2 to 32, not 33"),
    ({"hw": {"z_frac": 16}}, "hw.z_frac must be an integer from 0 to 15, not 16"),
    ({"hw": {"act_bits": 25}}, "hw.act_bits must be an integer from 2 to 24, not 25"),
    ({"hw": {"act_frac": 15}}, "hw.act_frac must be an integer from 0 to 14, not 15"),
    ({"hw": {"acc_bits": 63}}, "hw.acc_bits must be an integer from 2 to 62, not 63"),
    (
        {"hw": {"z_rounding": "even"}},
        "hw.z_rounding must be one of 'floor', 'half_up', not 'even'",
    ),
    ({"hw": {"cost_shift": -1}}, "hw.cost_shift must be an integer from 0 to 32, not -1"),
    (
        {"hw": {"datapath": "mlp"}},
        "hw.n_params must be 9, the parameter count of the 2-2-1 network, with "
        "hw.datapath 'mlp', not 16",
    ),
    (
        {"task": {"name": "parity", "parity_bits": 4}, "hw": {"datapath": "mlp"}},
        "hw.n_params must be 37, the parameter count of the 4-6-1 network, with "
        "hw.datapath 'mlp', not 16",
    ),
    (
        {
            "network": {"cost": "cross_entropy", "output_activation": "linear"},
            "hw": {"datapath": "mlp", "n_params": 9},
        },
        "network.cost must be 'mse' with hw.datapath 'mlp' (the datapath computes a "
        "squared error), not 'cross_entropy'",
    ),
    (
        {"mgd": {"baseline": "analog", "tau_x": 2}, "hw": {"datapath": "mlp", "n_params": 9}},
        "mgd.baseline must be 'discrete' and hw.highpass_shift 0 with hw.datapath 'mlp', "
        "not 'analog' and 0",
    ),
    (
        {"hw": {"datapath": "mlp", "n_params": 9, "batch_log2": 1}},
        "hw.batch_log2 must be 0 with hw.datapath 'mlp' (one sample per measurement), not 1",
    ),
    (
        {"mgd": {"mode": "node"}, "hw": {"datapath": "mlp", "n_params": 9, "z_bits": 12,
                                         "z_frac": 8, "amp_log2": 11}},
        "hw.amp_log2 must be at most 10 (hw.z_bits - 2) with node perturbation (the "
        "amplitude is in z LSBs), not 11",
    ),
    (
        {"mgd": {"mode": "node"}, "hw": {"datapath": "mlp", "n_params": 9, "x_bits": 16,
                                         "x_frac": 13}},
        "hw.x_frac must be at most hw.act_frac (12) with node perturbation (inputs are "
        "aligned to the activation LSB in the weight update), not 13",
    ),
    (
        {"hw": {"datapath": "mlp", "n_params": 9, "z_frac": 12, "theta_frac": 4, "x_frac": 7}},
        "hw.z_frac must be at most 11 (hw.theta_frac + the smaller of hw.x_frac and "
        "hw.act_frac: z narrows the accumulator) with hw.datapath 'mlp', not 12",
    ),
    (
        {"hw": {"datapath": "mlp", "n_params": 9, "act_bits": 8, "act_frac": 6,
                "cost_frac": 13}},
        "hw.cost_frac must be at most 12 (2 hw.act_frac + hw.cost_shift, the squared "
        "error's LSB) with hw.datapath 'mlp', not 13",
    ),
    (
        {"mgd": {"mode": "node"}, "hw": {"datapath": "mlp", "n_params": 9, "x_bits": 12,
                                         "x_frac": 6}},
        "hw.x_bits must be at most 10 (hw.x_frac plus the 4 integer bits of the act "
        "format) with node perturbation, not 12",
    ),
    (
        {"mgd": {"mode": "node"}, "hw": {"datapath": "mlp", "n_params": 9, "g_bits": 50,
                                         "v_bits": 50}},
        "hw.g_bits must be at most 46 (62 - hw.act_bits: G_p = D_j h_p is act_bits wider) "
        "with node perturbation, not 50",
    ),
    (
        {"mgd": {"mode": "node"}, "hw": {"datapath": "mlp", "n_params": 9, "momentum_shift": 2,
                                         "v_bits": 47}},
        "hw.v_bits must be at most 46 (62 - hw.act_bits: G_p = D_j h_p is act_bits wider) "
        "with node perturbation, not 47",
    ),
    (
        {"hw": {"datapath": "mlp", "n_params": 9, "acc_bits": 32}},
        "hw.acc_bits must be at least 33 for the 2-2-1 network (every sum of products is "
        "exact), not 32",
    ),
]


@pytest.mark.parametrize(("layer", "message"), BAD_VALUES, ids=[m for _, m in BAD_VALUES])
def test_bad_value_gives_exact_one_line_message(layer: dict, message: str) -> None:
    assert _error(layer) == message


def test_match_style_on_the_perturbation_message() -> None:
    expected = "mgd.perturbation must be one of 'code', 'time', 'frequency', 'walsh', not 'cdma'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build_config({"mgd": {"perturbation": "cdma"}})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_unknown_field_lists_the_known_ones() -> None:
    message = _error({"mgd": {"foo": 1}})
    assert message.startswith("unknown config field 'mgd.foo' (known: ")
    for name in ("eta", "dtheta", "perturbation", "tau_theta"):
        assert name in message


def test_task_section_as_scalar_is_a_config_error() -> None:
    assert _error({"task": 3}) == "config section 'task' must be a table, not 3"


# ------------------------------------------------------------------------- load_toml


def test_load_toml_reads_tables(tmp_path: Path) -> None:
    path = _write(tmp_path / "ok.toml", "seed = 4\n[mgd]\neta = 0.25\n")
    assert load_toml(path) == {"seed": 4, "mgd": {"eta": 0.25}}
    assert load_toml(str(path)) == {"seed": 4, "mgd": {"eta": 0.25}}


def test_load_toml_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    message = str(info.value)
    assert message == f"config file {str(path)!r} does not exist"
    assert "\n" not in message
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_load_toml_malformed_file_names_the_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", "[mgd\neta = = 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    message = str(info.value)
    assert message.startswith(f"config file {str(path)!r} is not valid TOML: ")
    assert "\n" not in message
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_bad_value_in_toml_file_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "run.toml", "[mgd]\nmode = 'edge'\n")
    with pytest.raises(ConfigError, match=re.escape("not 'edge'")):
        load_config(path)


def test_load_toml_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00seed = 1\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_toml(path)


# ------------------------------------------------------------------ parse_assignment


def test_parse_assignment_float() -> None:
    out = parse_assignment("mgd.eta=0.5")
    assert out == {"mgd": {"eta": 0.5}}
    assert isinstance(out["mgd"]["eta"], float)


def test_parse_assignment_list() -> None:
    assert parse_assignment("network.hidden=[16, 8]") == {"network": {"hidden": [16, 8]}}


def test_parse_assignment_bare_string() -> None:
    assert parse_assignment("mgd.mode=node") == {"mgd": {"mode": "node"}}


def test_parse_assignment_top_level_int_and_spaces() -> None:
    out = parse_assignment(" seed = 3 ")
    assert out == {"seed": 3}
    assert isinstance(out["seed"], int)


def test_parse_assignment_bool() -> None:
    assert parse_assignment("backprop.enabled=false") == {"backprop": {"enabled": False}}


@pytest.mark.parametrize("text", ["task.name", "=3", "mgd..eta=1", "mgd.=1"])
def test_parse_assignment_rejects_malformed(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_assignment(text)
    assert str(info.value) == f"--set expects section.field=value, not {text!r}"


def test_parse_assignment_feeds_build_config() -> None:
    cfg = build_config(parse_assignment("mgd.eta=0.5"), parse_assignment("mgd.mode=node"))
    assert cfg.mgd.eta == 0.5
    assert cfg.mgd.mode == "node"


# --------------------------------------------------------------------------- to_dict


@pytest.mark.parametrize(
    "layers",
    [
        (),
        ({"task": {"name": "digits"}},),
        ({"task": {"name": "parity", "parity_bits": 4}}, {"mgd": {"mode": "node", "eta": 1}}),
        ({"nonideal": {"weight_bits": 8, "weight_frac": 6}, "backprop": {"enabled": False}},),
    ],
)
def test_to_dict_round_trips(layers: tuple[dict, ...]) -> None:
    cfg = build_config(*layers)
    again = build_config(cfg.to_dict())
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert again.to_json() == cfg.to_json()


def test_analog_baseline_needs_more_than_one_step_per_sample() -> None:
    assert _error({"mgd": {"baseline": "analog", "tau_x": 1}}) == (
        "mgd.tau_x must be at least 2 with mgd.baseline 'analog' (the high-pass filter "
        "restarts at every new sample, so C~ would stay 0), not 1"
    )
    assert build_config({"mgd": {"baseline": "analog", "tau_x": 2}}).mgd.tau_x == 2


# ------------------------------------------------------- the on-chip network datapath


def test_new_hardware_fields_keep_the_existing_defaults() -> None:
    hw = HardwareConfig()
    assert (hw.n_params, hw.theta_bits, hw.theta_frac, hw.amp_log2, hw.eta_shift) == (
        16, 16, 10, 4, 8
    )
    assert hw.datapath == "none"  # standalone blocks and core: nothing else is checked
    assert build_config({"hw": {"n_params": 5}}).hw.n_params == 5


@pytest.mark.parametrize(
    "task",
    [
        TaskConfig(name="xor"),
        TaskConfig(name="parity", parity_bits=5),
        TaskConfig(name="images7", images_per_class=2),
        TaskConfig(name="digits"),
    ],
    ids=lambda t: t.name,
)
def test_task_shape_is_what_the_data_set_has(task: TaskConfig) -> None:
    data = load_dataset(task)
    assert task_shape(task) == (data.n_inputs, data.n_outputs)


def test_network_sizes_and_parameter_count() -> None:
    cfg = build_config({"task": {"name": "digits"}, "network": {"hidden": [16]}})
    assert network_sizes(cfg) == [64, 16, 10]
    assert network_param_count(network_sizes(cfg)) == 64 * 16 + 16 + 16 * 10 + 10
    ok = build_config(
        {"task": {"name": "digits"}, "network": {"hidden": [16]},
         "hw": {"datapath": "mlp", "n_params": 1210}}
    )
    assert hw_spec(ok).n == 1210


@pytest.mark.parametrize("field", ["g_bits", "v_bits"])
def test_accumulator_widths_stop_at_62_bits(field):
    # the bit-exact model computes in int64: a sum of two 62-bit values cannot wrap
    with pytest.raises(ConfigError, match=rf"hw.{field} must be an integer from \d+ to 62, "
                                          r"not 63"):
        build_config({"hw": {field: 63, **({"g_bits": 40} if field == "v_bits" else {})}})
