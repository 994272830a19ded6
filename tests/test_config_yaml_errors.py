"""A malformed YAML ``--config`` is one ``ConfigError`` naming the file and the line (issue 16)."""

import pytest

from slahmr_opt.cli.main import main
from slahmr_opt.config import load_config
from slahmr_opt.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "not valid YAML: line 2, column 1: did not find expected ',' or ']'"),
        ("data: {fps: 3}\ndata: {fps: 4}\n", "not valid YAML: line 2, column 1: found duplicate "
                                             "key data"),
        ("- 1\n- 2\n", "a config file holds a mapping of keys (key: value) at its top level, "
                       "not a list"),
        ("5\n", "at its top level, not a single value"),
        ("data:\n  fps: 30\n  bogus: 1\n", "line 3: data.bogus: Key 'bogus' not in 'DataConfig'"),
        ("defaults_from: nothere\n", "defaults_from: no shipped config 'nothere'"),
    ],
)  # fmt: skip
def test_malformed_config_file(tmp_path, text, expected):
    path = tmp_path / "my config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_unreadable_config_file(tmp_path):
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="dir.yaml: cannot read the config file"):
        load_config(folder)


def test_malformed_override_value():
    with pytest.raises(ConfigError, match=r"override 'data.fps=\[1': the value is not valid YAML"):
        load_config(None, ["data.fps=[1"])


def test_fit_with_malformed_config_exits_2(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("a: [1, 2\n")
    out = tmp_path / "out"
    code = main(["fit", "--tracks", str(tmp_path / "t.npz"), "--static", "--config", str(config),
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{config}: not valid YAML: line 2" in err[0]
    assert not out.exists()
