"""The servers file and the settings: one clear message per mistake."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.settings import Settings, settings_from


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "servers.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_a_claude_style_file_gives_one_spec_per_server_with_expanded_variables(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {
        "notes": {"command": "python", "args": ["notes.py", "--dir", "${HOME_DIR}"], "env": {"TOKEN": "${TOK}"}},
        "off": {"command": "x", "disabled": True},
    }})
    config = load_config(path, {"HOME_DIR": "/h", "TOK": "s3cret"})
    notes = config.server("notes")
    assert notes is not None and notes.args == ("notes.py", "--dir", "/h")
    assert notes.env == {"TOKEN": "s3cret"}
    assert config.server("off") is not None and config.server("off").disabled  # type: ignore[union-attr]


def test_secrets_in_env_never_show_in_the_repr_or_description(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"a": {"command": "run", "env": {"API_KEY": "s3cret"}}}})
    spec = load_config(path, {}).servers[0]
    assert "s3cret" not in repr(spec) and "s3cret" not in spec.describe()
    assert "API_KEY" in spec.describe()


def test_a_missing_file_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.json"):
        load_config(tmp_path / "nope.json", {})


def test_invalid_json_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{"mcpServers": {\n  "a": {"command": "x",}\n}}')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 2 column"):
        load_config(path, {})


def test_an_unknown_server_key_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"a": {"command": "x", "argz": []}}})
    with pytest.raises(ConfigError, match=r'server "a": unknown key \'argz\' \(allowed: args, '):
        load_config(path, {})


def test_a_missing_variable_names_the_server_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"gh": {"command": "x", "env": {"GITHUB_TOKEN": "${GH_TOKEN}"}}}})
    with pytest.raises(ConfigError, match=r'server "gh": env.GITHUB_TOKEN uses \$\{GH_TOKEN\}, but .* not set'):
        load_config(path, {})


def test_missing_mcp_servers_and_bad_commands_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='"mcpServers" must be an object'):
        load_config(write(tmp_path, {"servers": {}}), {})
    with pytest.raises(ConfigError, match='"command" must be a non-empty string'):
        load_config(write(tmp_path, {"mcpServers": {"a": {"args": []}}}), {})


def test_server_names_are_normalised_for_tool_ids_and_collisions_refused(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"mcpServers": {"my server.v2": {"command": "x"}}}), {})
    assert config.servers[0].name == "my-server-v2"
    with pytest.raises(ConfigError, match="collides"):
        load_config(write(tmp_path, {"mcpServers": {"a b": {"command": "x"}, "a-b": {"command": "y"}}}), {})


def test_claude_desktop_keys_are_ignored_and_the_gateway_entry_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, {"globalShortcut": "", "mcpServers": {
        "pml": {"command": "pml-gateway", "args": ["serve"]}, "time": {"command": "mcp-server-time"}}})
    assert [s.name for s in load_config(path, {}).servers] == ["time"]


def test_gateway_options_are_validated(tmp_path: Path) -> None:
    base: dict[str, Any] = {"mcpServers": {}}
    assert load_config(write(tmp_path, {**base, "expose": "all"}), {}).expose_all
    with pytest.raises(ConfigError, match='"expose" must be "found", "search" or "all"'):
        load_config(write(tmp_path, {**base, "expose": "some"}), {})
    with pytest.raises(ConfigError, match='"callTimeoutMs" must be a positive number'):
        load_config(write(tmp_path, {"mcpServers": {"a": {"command": "x", "callTimeoutMs": -1}}}), {})


def test_the_result_size_limit_defaults_to_4_mib_and_a_server_may_set_its_own(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"maxResultBytes": 65536, "mcpServers": {
        "a": {"command": "x"}, "b": {"command": "x", "maxResultBytes": 2048}}}), {})
    assert [s.max_result_bytes for s in config.servers] == [65536, 2048]
    assert load_config(write(tmp_path, {"mcpServers": {"a": {"command": "x"}}}), {}).servers[0].max_result_bytes \
        == 4 * 1024 * 1024
    with pytest.raises(ConfigError, match='server "a": "maxResultBytes" must be a whole number of bytes, at least'):
        load_config(write(tmp_path, {"mcpServers": {"a": {"command": "x", "maxResultBytes": "4MB"}}}), {})


def test_flags_win_over_environment_which_wins_over_defaults(tmp_path: Path) -> None:
    env = {"PML_DATABASE_URL": "postgresql://env/db", "PML_DATA_DIR": str(tmp_path / "env")}
    from_env = settings_from({}, env)
    assert from_env.database_url == "postgresql://env/db" and from_env.data_dir == tmp_path / "env"
    from_flags = settings_from({"database_url": "postgresql://flag/db"}, env)
    assert from_flags.database_url == "postgresql://flag/db"
    assert settings_from({}, {}).database_url is None
    assert isinstance(settings_from({}, {}), Settings)
    with pytest.raises(ConfigError, match="PML_CALL_TIMEOUT"):
        settings_from({}, {"PML_CALL_TIMEOUT": "soon"})


def test_embedding_threads_come_from_the_flag_or_the_environment_and_must_be_a_whole_number_from_one() -> None:
    assert settings_from({}, {}).embed_threads is None
    assert settings_from({}, {"PML_EMBED_THREADS": "1"}).embed_threads == 1
    assert settings_from({"embed_threads": "3"}, {"PML_EMBED_THREADS": "1"}).embed_threads == 3
    for bad in ("0", "two", "1.5"):
        with pytest.raises(ConfigError, match=rf"PML_EMBED_THREADS / --embed-threads: .*at least 1, got '{bad}'"):
            settings_from({}, {"PML_EMBED_THREADS": bad})


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_stdio_server_runs_in_the_servers_file_directory_and_its_relative_paths_resolve_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "servers.json").write_text(json.dumps({"mcpServers": {
        "plain": {"command": "/usr/bin/env", "args": ["python", "notes.py"]},
        "script": {"command": "bin/run.sh", "args": ["../data"]},
        "dotted": {"command": "./run.sh"},
        "moved": {"command": "/usr/bin/env", "cwd": "work"},
        "fixed": {"command": "/usr/bin/env", "cwd": "${SOMEWHERE}"},
        "remote": {"type": "http", "url": "http://127.0.0.1:1/mcp"},
    }}))
    monkeypatch.chdir(tmp_path)  # the gateway's own directory, given a relative --config, plays no other part
    config = load_config(Path("conf/servers.json"), {"SOMEWHERE": "/srv/data"})
    spec = {s.name: s for s in config.servers}
    assert spec["plain"].cwd == folder and spec["plain"].args == ("python", "notes.py")
    assert spec["script"].command == str(folder / "bin/run.sh") and spec["script"].args == ("../data",)
    assert Path(spec["dotted"].command) == folder / "run.sh"
    assert spec["moved"].cwd == folder / "work"
    assert spec["fixed"].cwd == Path("/srv/data")
    assert spec["remote"].cwd is None


def test_a_bare_command_is_found_in_the_gateway_environment_first_then_on_the_path(tmp_path: Path) -> None:
    venv, system, own = tmp_path / "venv/bin", tmp_path / "usr/bin", tmp_path / "own/bin"
    executable(venv / "python"), executable(system / "python"), executable(system / "npx")
    executable(own / "npx")
    path = write(tmp_path, {"mcpServers": {
        "py": {"command": "python"}, "node": {"command": "npx"}, "nowhere": {"command": "not-installed-anywhere"},
        "own-path": {"command": "npx", "env": {"PATH": str(own)}},
    }})
    spec = {s.name: s for s in load_config(path, {"PATH": str(system)}, bin_dir=venv).servers}
    assert spec["py"].command == str(venv / "python")
    assert spec["node"].command == str(system / "npx")
    assert spec["nowhere"].command == "not-installed-anywhere"  # so the launcher's error names it
    assert spec["own-path"].command == str(own / "npx")
    assert load_config(path, {"PATH": str(system)}).servers[0].command == str(system / "python")


def test_the_example_servers_file_finds_its_servers_from_any_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir("/")
    bin_dir = Path(sys.executable).parent
    spec = {s.name: s for s in load_config(root / "examples/servers.json", {"PATH": ""}, bin_dir=bin_dir).servers}
    assert all(s.cwd == root / "examples" for s in spec.values())
    assert spec["notes"].command == str(bin_dir / "python") and spec["notes"].args == ("notes_server.py",)
    assert (root / "examples" / spec["notes"].args[0]).is_file()
    assert spec["git"].command == str(bin_dir / "mcp-server-git")
    assert (root / "examples" / spec["git"].args[1] / ".git").exists()


def test_an_entry_running_this_gateway_is_recognised_by_its_windows_executable_too(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {
        "pml": {"command": "C:\\venv\\Scripts\\pml-gateway.exe", "args": ["serve"]}, "time": {"command": "t"}}})
    assert [s.name for s in load_config(path, {}).servers] == ["time"]


def test_code_limits_have_defaults_and_each_key_is_checked(tmp_path: Path) -> None:
    base: dict[str, Any] = {"mcpServers": {}}
    defaults = load_config(write(tmp_path, base), {}).code
    assert defaults.timeout_ms == 30_000 and defaults.max_tool_calls == 200
    set_ = load_config(write(tmp_path, {**base, "code": {"timeoutMs": 5000, "maxMemoryBytes": 1 << 20}}), {}).code
    assert set_.timeout_ms == 5000 and set_.max_memory_bytes == 1 << 20 and set_.max_output_bytes == 1 << 20
    with pytest.raises(ConfigError, match=r'"code\.maxToolCalls" must be a positive integer, got 0'):
        load_config(write(tmp_path, {**base, "code": {"maxToolCalls": 0}}), {})
    with pytest.raises(ConfigError, match='"code" has unknown keys memory; expected some of timeoutMs'):
        load_config(write(tmp_path, {**base, "code": {"memory": 1}}), {})
    with pytest.raises(ConfigError, match='"code" must be an object of limits, got list'):
        load_config(write(tmp_path, {**base, "code": []}), {})


def test_oauth_sign_in_needs_its_secret_from_the_environment_and_keeps_it_out_of_the_repr() -> None:
    assert settings_from({}, {}).oauth is None
    with pytest.raises(ConfigError, match="PML_OAUTH_CLIENT_SECRET"):
        settings_from({"oauth_client_id": "gw"}, {})
    settings = settings_from({"oauth_client_id": "gw", "public_url": "https://gw.example/"},
                             {"PML_OAUTH_CLIENT_SECRET": "s3cret", "PML_OAUTH_OPEN_SIGNUP": "1"})
    assert settings.oauth is not None and settings.oauth.issuer == "github" and settings.oauth.open_signup
    assert settings.public_url == "https://gw.example" and "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match="OpenID Connect issuer URL"):
        settings_from({"oauth_client_id": "gw", "oauth_issuer": "gitlab"}, {"PML_OAUTH_CLIENT_SECRET": "s"})
    with pytest.raises(ConfigError, match="--public-url"):
        settings_from({"public_url": "gw.example"}, {})


def test_a_users_server_takes_their_secrets_and_never_the_gateways_environment() -> None:
    from gateway.config import secret_names, user_server_spec

    entry = {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${secret:GH_TOKEN}"}}
    spec = user_server_spec("github", entry, {"GH_TOKEN": "ghp_0123456789"}, allow_stdio=False)
    assert secret_names(entry) == ["GH_TOKEN"] and spec.headers["Authorization"] == "Bearer ghp_0123456789"
    assert "ghp_0123456789" not in spec.describe() + repr(spec) and spec.redact("ghp_0123456789") == "***"
    with pytest.raises(ConfigError, match="never to the gateway's environment"):
        user_server_spec("x", {"url": "https://a.example/${HOME}"}, {}, allow_stdio=False)
    with pytest.raises(ConfigError, match="only a server reached over HTTP"):
        user_server_spec("x", {"command": "bash", "args": ["-c", "id"]}, {}, allow_stdio=False)
    with pytest.raises(ConfigError, match="no secret 'GH_TOKEN' is set"):
        user_server_spec("github", entry, {}, allow_stdio=False)
    with pytest.raises(ConfigError, match="unknown key 'cwd'"):
        user_server_spec("x", {"command": "bash", "cwd": "/"}, {}, allow_stdio=True)
