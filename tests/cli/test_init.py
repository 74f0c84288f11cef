"""`pml-gateway init` writes a servers file that works, imports Claude's servers without losing any, and prints
what to paste with absolute paths; and the example servers file works with the gateway started anywhere."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from gateway.cli.init import Launcher, client_config_path, gateway_launcher, init
from gateway.config import load_config
from tests.e2e.support import BIN, ROOT, gateway_env, search_until


class Home:
    """A home directory in tmp_path standing in for the user's: the real one is never read nor written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / ".config"

    @property
    def servers(self) -> Path:
        return self.config / "pml-gateway" / "servers.json"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in gateway_env().items() if k not in ("APPDATA", "CLAUDE_CONFIG_DIR")}
        return {**env, "HOME": str(self.root), "XDG_CONFIG_HOME": str(self.config)}

    def write(self, relative: str, document: Any) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
        return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    (tmp_path / "home").mkdir()
    return Home(tmp_path / "home")


def run_init(home: Home, *args: str, command: tuple[str, ...] = (sys.executable, "-m", "gateway"),
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`init` in a directory of its own (not the repository), as a user would run it."""
    return subprocess.run([*command, "init", *args], capture_output=True, text=True, env=home.env(),
                          cwd=cwd or home.root, timeout=60, stdin=subprocess.DEVNULL, check=False)


def desktop_snippet(stdout: str) -> dict[str, Any]:
    """The Claude Desktop entry printed: the JSON object from a line ``{`` to the next line ``}``."""
    lines = stdout.splitlines()
    start = lines.index("{")
    snippet = json.loads("\n".join(lines[start:lines.index("}", start) + 1]))
    entry: dict[str, Any] = snippet["mcpServers"]["pml"]
    return entry


def claude_code_command(stdout: str) -> list[str]:
    return shlex.split(next(line for line in stdout.splitlines() if line.strip().startswith("claude mcp add")))


def test_init_writes_a_starter_in_the_user_config_directory_and_prints_absolute_paths_to_paste(home: Home) -> None:
    done = run_init(home)
    assert done.returncode == 0, done.stderr
    document = json.loads(home.servers.read_text())
    assert "mcpServers" in document["$comment"] and "this file's directory" in document["$comment"]
    assert document["mcpServers"] == {"time": {"command": "mcp-server-time"}}  # installed beside the gateway
    spec = load_config(home.servers, {}, bin_dir=BIN).servers[0]
    assert spec.command == str(BIN / "mcp-server-time")
    serve = [sys.executable, "-m", "gateway", "serve", "--config", str(home.servers)]
    assert desktop_snippet(done.stdout) == {"command": serve[0], "args": serve[1:]}
    assert claude_code_command(done.stdout) == ["claude", "mcp", "add", "--scope", "user", "pml", "--", *serve]
    assert str(home.config / "Claude" / "claude_desktop_config.json") in done.stdout


def test_the_starter_offers_the_time_server_only_where_it_can_be_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = io.StringIO()
    launcher = Launcher(command="/venv/bin/pml-gateway")
    init(tmp_path / "servers.json", [], force=False, launcher=launcher, bin_dir=empty, environ={"PATH": str(empty)},
         platform="linux", out=out)
    assert json.loads((tmp_path / "servers.json").read_text())["mcpServers"] == {}
    assert 'with no servers yet: add yours under "mcpServers"' in out.getvalue()
    assert load_config(tmp_path / "servers.json", {}).servers == ()


def test_the_installed_script_is_printed_by_its_absolute_path_and_a_relative_config_made_absolute(
    home: Home, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir()
    done = run_init(home, "--config", "mine/servers.json", command=(str(BIN / "pml-gateway"),), cwd=tmp_path / "work")
    assert done.returncode == 0, done.stderr
    target = tmp_path / "work" / "mine" / "servers.json"
    assert target.is_file() and not home.servers.exists()
    assert desktop_snippet(done.stdout) == {"command": str(BIN / "pml-gateway"),
                                            "args": ["serve", "--config", str(target)]}


def test_init_refuses_to_overwrite_a_servers_file_unless_forced(home: Home) -> None:
    home.servers.parent.mkdir(parents=True)
    home.servers.write_text('{"mcpServers": {"mine": {"command": "x"}}}')
    refused = run_init(home)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"pml-gateway: configuration error: {home.servers} already exists; pass --force to overwrite it"]
    assert json.loads(home.servers.read_text()) == {"mcpServers": {"mine": {"command": "x"}}}
    forced = run_init(home, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "mine" not in json.loads(home.servers.read_text())["mcpServers"]


def test_init_imports_claude_desktop_and_claude_code_skipping_the_gateway_and_keeping_the_first_name(
    home: Home,
) -> None:
    home.write(".config/Claude/claude_desktop_config.json", {"globalShortcut": "", "mcpServers": {
        "pml": {"command": "/opt/venv/bin/pml-gateway", "args": ["serve", "--config", str(home.servers)]},
        "pml-old": {"command": "pml-gateway", "args": ["serve", "--config", "/home/me/.config/pml/servers.json"]},
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                   "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
        "legacy": {"type": "sse", "url": "https://old.example.com/sse"},
    }})
    home.write(".claude.json", {"numStartups": 7, "mcpServers": {
        "github": {"type": "stdio", "command": "github-mcp", "args": [], "env": {}},
        "docs": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${KEY}"}},
    }, "projects": {"/src/app": {"allowedTools": [], "mcpServers": {
        "files": {"type": "stdio", "command": "python", "args": ["tools/files.py"], "env": {"ROOT": "."}},
        "self": {"type": "stdio", "command": sys.executable, "args": ["-m", "gateway", "serve"]},
    }}}})
    done = run_init(home, "--import", "claude-desktop", "--import", "claude-code")
    assert done.returncode == 0, done.stderr
    servers = json.loads(home.servers.read_text())["mcpServers"]
    assert servers == {
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                   "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}},
        "docs": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${KEY}"}},
        "files": {"type": "stdio", "command": "python", "args": ["tools/files.py"], "env": {"ROOT": "."},
                  "cwd": "/src/app"},
    }
    assert 'skipped "pml" from claude-desktop: it runs pml-gateway itself' in done.stdout
    assert 'skipped "pml-old" from claude-desktop: it runs pml-gateway over another servers file' in done.stdout
    assert 'skipped "legacy" from claude-desktop: its type "sse"' in done.stdout
    assert 'skipped "github" from claude-code: the name is taken by "github" from claude-desktop' in done.stdout
    assert 'skipped "self" from claude-code project /src/app: it runs pml-gateway itself' in done.stdout
    assert "in place of the servers imported from it" in done.stdout
    loaded = load_config(home.servers, {"GITHUB_TOKEN": "t", "KEY": "k"})
    assert [s.name for s in loaded.servers] == ["github", "docs", "files"]
    assert loaded.server("files").cwd == Path("/src/app")  # type: ignore[union-attr]


def test_an_imported_file_in_another_directory_keeps_the_meaning_of_its_relative_paths(
    home: Home, tmp_path: Path
) -> None:
    old = home.write("old/servers.json", {"mcpServers": {
        "notes": {"command": "python", "args": ["notes_server.py"]},
        "tool": {"command": "bin/tool", "cwd": "data"},
        "anywhere": {"command": "/usr/bin/tool", "cwd": "/srv"},
    }})
    done = run_init(home, "--import", str(old))
    assert done.returncode == 0, done.stderr
    servers = json.loads(home.servers.read_text())["mcpServers"]
    assert servers == {
        "notes": {"command": "python", "args": ["notes_server.py"], "cwd": str(old.parent)},
        "tool": {"command": str(old.parent / "bin/tool"), "cwd": str(old.parent / "data")},
        "anywhere": {"command": "/usr/bin/tool", "cwd": "/srv"},
    }


def test_importing_what_is_not_there_fails_and_writes_nothing(home: Home) -> None:
    done = run_init(home, "--import", "claude-desktop")
    expected = home.config / "Claude" / "claude_desktop_config.json"
    assert done.returncode == 2
    assert f"cannot import claude-desktop: {expected} not found" in done.stderr
    assert not home.servers.exists()
    not_servers = home.write("other.json", {"servers": {}})
    assert "has no \"mcpServers\" object" in run_init(home, "--import", str(not_servers)).stderr


def test_claude_desktop_keeps_its_config_in_each_platform_own_place() -> None:
    environ = {"HOME": "/home/me", "APPDATA": "C:\\Users\\me\\AppData\\Roaming"}
    assert client_config_path("claude-desktop", environ, "linux") == Path(
        "/home/me/.config/Claude/claude_desktop_config.json")
    assert client_config_path("claude-desktop", environ, "darwin") == Path(
        "/home/me/Library/Application Support/Claude/claude_desktop_config.json")
    assert client_config_path("claude-desktop", environ, "win32") == Path(
        "C:\\Users\\me\\AppData\\Roaming") / "Claude" / "claude_desktop_config.json"
    assert client_config_path("claude-code", environ, "darwin") == Path("/home/me/.claude.json")


def test_the_gateway_is_launched_by_its_script_or_by_the_interpreter_that_runs_it(tmp_path: Path) -> None:
    script = gateway_launcher(str(BIN / "pml-gateway"), sys.executable, bin_dir=BIN)
    assert (script.command, script.args) == (str(BIN / "pml-gateway"), ())
    assert gateway_launcher("pml-gateway", sys.executable, bin_dir=BIN).command == str(BIN / "pml-gateway")
    module = gateway_launcher(str(ROOT / "gateway/__main__.py"), "/venv/bin/python", bin_dir=BIN)
    assert module.argv(tmp_path / "s.json") == ["/venv/bin/python", "-m", "gateway", "serve", "--config",
                                                str(tmp_path / "s.json")]


@pytest.mark.anyio
async def test_the_example_servers_file_works_with_the_gateway_started_in_another_directory(
    database_url: str,
) -> None:
    config = ROOT / "examples" / "servers.json"
    params = StdioServerParameters(command=str(BIN / "pml-gateway"), cwd="/", env=gateway_env(),
                                   args=["serve", "--config", str(config), "--database-url", database_url])
    async with Client(params, read_timeout_seconds=60) as client:
        await search_until(client, "save a note", "notes:write_note")
        payload = await search_until(client, "show the working tree status of the git repository", "git:git_status")
    assert payload.get("unavailable_servers", []) == []
