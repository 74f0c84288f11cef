"""Attacks on the code sandbox, each a run of hostile code through `MontySandbox.execute`.

Escapes (host modules, files, the environment, builtins and frames reached by introspection, the host functions'
insides) are refused with the sandbox's own exception. Abuse (endless loops, deep recursion, memory, output and
host-call floods, long sleeps, a host call that never returns) is stopped by the limit it breaks, named in the
error, and catching the error inside the code does not lift the limit. After every attack nothing of the host (a
secret in the gateway's environment, a host file's text) is in the run's value, output or error, and the sandbox
still serves a normal run: the gateway never dies, not even when a worker crashes or is killed.

One sandbox, started with the secret already in the gateway's environment, serves the whole module.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from gateway.config import CodeLimits
from gateway.errors import CodeError, CodeLimitError
from gateway.sandbox import CodeRun, MontySandbox

pytestmark = pytest.mark.anyio

SECRET_NAME = "PML_TEST_SECRET"
SECRET = "s3cr3t-value"
HOST_TEXT = "host-file-contents-7f3a9c"
LIMITS = CodeLimits(timeout_ms=500, max_memory_bytes=8 * 1024 * 1024, max_output_bytes=10_000, max_tool_calls=10,
                    max_recursion_depth=50)
SUSPENSIONS = LIMITS.max_tool_calls * 2 + 100
"""The sandbox's own cap on host round trips (the caller service counts the tool calls themselves)."""
SLACK_S = 2.0
"""How long past its timeout a stopped run may take to come back: the worker's kill grace, a loaded machine."""
LONG_SLEEP = "import asyncio\nawait asyncio.sleep(5)"
PARSE_BOMB = "1" + "+1" * 300_000
"""A 600 kB expression whose syntax tree does not fit in 8 MiB."""


async def echo(*args: Any) -> list[Any]:
    return list(args)


HOST = {"call": echo}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def secret_env() -> Iterator[None]:
    """The secret in the gateway's environment before the sandbox starts: its workers would inherit it if the pool
    passed the environment on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_NAME, SECRET)
        yield


@pytest.fixture(scope="module")
async def sandbox(secret_env: None) -> AsyncIterator[MontySandbox]:
    started = MontySandbox()
    async with anyio.create_task_group() as tg:
        await tg.start(started.run)
        yield started
        tg.cancel_scope.cancel()


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    path = tmp_path / "host.txt"
    path.write_text(HOST_TEXT)
    return path


def assert_nothing_leaked(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert HOST_TEXT not in text


async def run(sandbox: MontySandbox, code: str, *, limits: CodeLimits = LIMITS,
              functions: dict[str, Any] = HOST) -> CodeRun:
    """A run that must succeed, and leak nothing in what it gives."""
    with anyio.fail_after(limits.timeout_ms / 1000 + SLACK_S):
        result = await sandbox.execute(code, functions=functions, limits=limits)
    assert_nothing_leaked(repr(result.value), result.printed)
    return result


async def refused(sandbox: MontySandbox, code: str, *, limits: CodeLimits = LIMITS,
                  functions: dict[str, Any] = HOST) -> CodeError:
    """The error a run must end with, bounded in time, leaking nothing in its message."""
    with anyio.fail_after(limits.timeout_ms / 1000 + SLACK_S), pytest.raises(CodeError) as caught:
        await sandbox.execute(code, functions=functions, limits=limits)
    assert_nothing_leaked(str(caught.value))
    return caught.value


async def stopped(sandbox: MontySandbox, code: str, limit: str, *, limits: CodeLimits = LIMITS,
                  functions: dict[str, Any] = HOST) -> CodeLimitError:
    """The limit error a run must end with, naming `limit` in its message."""
    error = await refused(sandbox, code, limits=limits, functions=functions)
    assert isinstance(error, CodeLimitError), f"not a limit: {error.kind}: {error}"
    assert (error.kind, error.limit) == ("LimitExceeded", limit)
    assert limit in str(error)
    return error


async def assert_still_serves(sandbox: MontySandbox) -> None:
    assert await run(sandbox, "1 + 1", functions={}) == CodeRun(value=2, printed="")


def monty_workers() -> list[psutil.Process]:
    """The sandbox's worker processes: this process's children running the monty binary."""
    workers = []
    for child in psutil.Process().children():
        try:
            if child.name() == "monty":
                workers.append(child)
        except psutil.NoSuchProcess:
            continue
    return workers


# Escapes: host modules, the environment, files


@pytest.mark.parametrize(
    "module",
    ["subprocess", "socket", "importlib", "ctypes", "builtins", "gc", "inspect", "threading", "multiprocessing",
     "pickle", "marshal", "io", "shutil", "signal", "posix"],
)
async def test_importing_a_host_module_is_refused(sandbox: MontySandbox, module: str) -> None:
    error = await refused(sandbox, f"import {module}")
    assert error.kind == "ModuleNotFoundError"
    assert f"No module named '{module}'" in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        pytest.param("import os\nos.system('id')", "AttributeError", "module 'os' has no attribute 'system'",
                     id="os.system"),
        pytest.param("import os\nos.fork()", "AttributeError", "module 'os' has no attribute 'fork'", id="os.fork"),
        pytest.param("import os\nos.kill(1, 9)", "AttributeError", "module 'os' has no attribute 'kill'",
                     id="os.kill"),
        pytest.param("import os\nos.listdir('/')", "PermissionError", "Permission denied: '/'", id="os.listdir"),
        pytest.param("import sys\nsys.modules", "AttributeError", "module 'sys' has no attribute 'modules'",
                     id="sys.modules"),
        pytest.param("import sys\nsys.path", "AttributeError", "module 'sys' has no attribute 'path'",
                     id="sys.path"),
        pytest.param("import sys\nsys._getframe(0).f_globals", "AttributeError",
                     "module 'sys' has no attribute '_getframe'", id="sys._getframe"),
    ],
)
async def test_the_sandbox_os_and_sys_modules_have_no_host_powers(sandbox: MontySandbox, code: str, kind: str,
                                                                  says: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind == kind
    assert says in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        pytest.param("import os\nos.environ", "'os.environ' is not supported", id="os.environ"),
        pytest.param(f"import os\nos.environ[{SECRET_NAME!r}]", "'os.environ' is not supported", id="os.environ[]"),
        pytest.param(f"import os\nos.getenv({SECRET_NAME!r})", "'os.getenv' is not supported", id="os.getenv"),
        pytest.param(f'exec("import os; print(os.environ.get({SECRET_NAME!r}))")', "'os.environ' is not supported",
                     id="exec-os.environ"),
    ],
)
async def test_reading_the_environment_is_refused(sandbox: MontySandbox, code: str, says: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind == "RuntimeError"
    assert says in str(error)
    await assert_still_serves(sandbox)


async def test_the_workers_do_not_inherit_the_gateway_environment(sandbox: MontySandbox) -> None:
    await assert_still_serves(sandbox)
    workers = monty_workers()
    assert os.environ[SECRET_NAME] == SECRET
    assert workers
    assert all(SECRET_NAME not in worker.environ() for worker in workers)


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("open({path!r}).read()", id="open"),
        pytest.param("open({path!r}, 'rb').read()", id="open-binary"),
        pytest.param("from pathlib import Path\nPath({path!r}).read_text()", id="pathlib"),
        pytest.param("import os\nos.stat({path!r})", id="os.stat"),
    ],
)
async def test_reading_a_host_file_is_refused_and_nothing_of_it_is_returned(sandbox: MontySandbox, host_file: Path,
                                                                           template: str) -> None:
    error = await refused(sandbox, template.format(path=str(host_file)))
    assert error.kind == "PermissionError"
    assert f"Permission denied: '{host_file}'" in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    ("code", "path"),
    [
        pytest.param("open('/etc/passwd').read()", "/etc/passwd", id="etc-passwd"),
        pytest.param("open('../../etc/passwd').read()", "/etc/passwd", id="relative-traversal"),
        pytest.param("import os\nos.chdir('/etc')\nopen('passwd').read()", "/etc", id="chdir"),
        pytest.param("eval(\"open('/etc/passwd').read()\")", "/etc/passwd", id="through-eval"),
        pytest.param("open('/proc/self/environ').read()", "/proc/self/environ", id="worker-environ"),
        pytest.param("open('/dev/stdin').read()", "/dev/stdin", id="worker-stdin"),
    ],
)
async def test_reading_a_system_file_is_refused_and_nothing_of_it_is_returned(sandbox: MontySandbox, code: str,
                                                                              path: str) -> None:
    first_line = (await anyio.Path("/etc/passwd").read_text()).splitlines()[0]
    error = await refused(sandbox, code)
    assert error.kind == "PermissionError"
    assert f"Permission denied: '{path}'" in str(error)
    assert first_line not in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("open({path!r}, 'w').write('pwned')", id="open"),
        pytest.param("from pathlib import Path\nPath({path!r}).write_text('pwned')", id="pathlib"),
    ],
)
async def test_writing_a_host_file_is_refused_and_nothing_is_written(sandbox: MontySandbox, tmp_path: Path,
                                                                    template: str) -> None:
    target = tmp_path / "pwned.txt"
    error = await refused(sandbox, template.format(path=str(target)))
    assert error.kind == "PermissionError"
    assert f"Permission denied: '{target}'" in str(error)
    assert not await anyio.Path(target).exists()
    await assert_still_serves(sandbox)


async def test_deleting_a_host_file_is_refused_and_the_file_stays(sandbox: MontySandbox, host_file: Path) -> None:
    error = await refused(sandbox, f"import os\nos.remove({str(host_file)!r})")
    assert error.kind == "PermissionError"
    assert f"Permission denied: '{host_file}'" in str(error)
    assert await anyio.Path(host_file).read_text() == HOST_TEXT
    await assert_still_serves(sandbox)


# Escapes: builtins, frames and classes reached by introspection


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        pytest.param("__import__('os')", "NameError", "name '__import__' is not defined", id="__import__"),
        pytest.param("eval(\"__import__('os')\")", "NameError", "name '__import__' is not defined",
                     id="eval-__import__"),
        pytest.param("compile('1', 'x', 'eval')", "NameError", "name 'compile' is not defined", id="compile"),
        pytest.param("globals()", "NameError", "name 'globals' is not defined", id="globals"),
        pytest.param("vars()", "NameError", "name 'vars' is not defined", id="vars"),
        pytest.param("dir()", "NameError", "name 'dir' is not defined", id="dir"),
        pytest.param("__builtins__", "NameError", "name '__builtins__' is not defined", id="__builtins__"),
        pytest.param("breakpoint()", "NameError", "name 'breakpoint' is not defined", id="breakpoint"),
        pytest.param("input()", "NameError", "name 'input' is not defined", id="input"),
        pytest.param("getattr(1, '__class__')", "AttributeError", "'int' object has no attribute '__class__'",
                     id="getattr-dunder"),
        pytest.param("().__class__.__bases__[0].__subclasses__()", "AttributeError",
                     "'tuple' object has no attribute '__class__'", id="subclasses-walk"),
        pytest.param("type.__subclasses__(object)", "AttributeError", "has no attribute '__subclasses__'",
                     id="type.__subclasses__"),
        pytest.param("object.__subclasses__()", "AttributeError",
                     "type object 'object' has no attribute '__subclasses__'", id="object.__subclasses__"),
        pytest.param("type([]).__mro__", "AttributeError", "type object 'list' has no attribute '__mro__'",
                     id="mro"),
        pytest.param("print.__self__", "AttributeError", "has no attribute '__self__'", id="builtin-__self__"),
        pytest.param("def f():\n    pass\nf.__globals__", "AttributeError",
                     "'function' object has no attribute '__globals__'", id="own-function-__globals__"),
        pytest.param("try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals",
                     "AttributeError", "has no attribute '__traceback__'", id="traceback-frame"),
        pytest.param("(x for x in [1]).gi_frame.f_globals", "AttributeError", "has no attribute 'gi_frame'",
                     id="generator-frame"),
        pytest.param("async def co():\n    pass\nco().cr_frame.f_globals", "AttributeError",
                     "'coroutine' object has no attribute 'cr_frame'", id="coroutine-frame"),
    ],
)
async def test_introspecting_toward_the_interpreter_is_refused(sandbox: MontySandbox, code: str, kind: str,
                                                               says: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind == kind
    assert says in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    "attribute", ["__self__", "__globals__", "__code__", "__closure__", "__dict__", "__wrapped__", "__call__"],
)
async def test_a_host_function_shows_none_of_its_insides(sandbox: MontySandbox, attribute: str) -> None:
    for code in (f"call.{attribute}", f"getattr(call, {attribute!r})"):
        error = await refused(sandbox, code)
        assert error.kind == "AttributeError"
        assert f"'function' object has no attribute '{attribute}'" in str(error)
    await assert_still_serves(sandbox)


async def test_a_function_passed_to_a_host_function_arrives_as_inert_data(sandbox: MontySandbox) -> None:
    received: list[Any] = []

    async def keep(*args: Any) -> int:
        received.extend(args)
        return len(args)

    result = await run(sandbox, "def f():\n    return 1\nawait call(f, lambda: 2, print, call)",
                       functions={"call": keep})
    assert result.value == 4
    assert len(received) == 4
    assert not any(callable(value) for value in received)
    await assert_still_serves(sandbox)


async def test_a_global_of_one_run_is_not_seen_by_the_next(sandbox: MontySandbox) -> None:
    await run(sandbox, "planted = 'from the first run'")
    error = await refused(sandbox, "planted")
    assert error.kind == "NameError"
    assert "name 'planted' is not defined" in str(error)
    await assert_still_serves(sandbox)


# Abuse: time


async def timed_stop(sandbox: MontySandbox, code: str, **kwargs: Any) -> float:
    """Seconds a run took to be stopped by timeout_ms."""
    started = anyio.current_time()
    await stopped(sandbox, code, "timeout_ms", **kwargs)
    return anyio.current_time() - started


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("while True:\n    pass", id="loop"),
        pytest.param("def spin():\n    while True:\n        pass\ndef down(n):\n    if n == 0:\n        spin()\n"
                     "    return down(n - 1)\ndown(20)", id="loop-inside-recursion"),
        pytest.param("def both(n):\n    try:\n        both(n + 1)\n    except RecursionError:\n        both(n + 1)\n"
                     "both(0)", id="exponential-retry-on-recursion-error"),
        pytest.param("try:\n    while True:\n        pass\nexcept BaseException:\n    pass\n'escaped'",
                     id="loop-in-try-except-baseexception"),
        pytest.param("while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n"
                     "        continue", id="loop-retrying-after-every-error"),
        pytest.param("import asyncio\nwhile True:\n    await asyncio.sleep(0)", id="sleep-zero-loop"),
        pytest.param("import re\nwhile True:\n    re.match('(a|b)*c', 'ab' * 50)", id="regex-loop"),
    ],
)
async def test_an_endless_computation_is_stopped_at_timeout_ms(sandbox: MontySandbox, code: str) -> None:
    elapsed = await timed_stop(sandbox, code)
    assert LIMITS.timeout_ms / 1000 <= elapsed < LIMITS.timeout_ms / 1000 + SLACK_S
    await assert_still_serves(sandbox)


class Hang:
    """A host function that returns only when released, and notes whether it was cancelled instead."""

    def __init__(self) -> None:
        self.released = anyio.Event()
        self.cancelled = anyio.Event()

    async def __call__(self, *args: Any) -> None:
        try:
            await self.released.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise


@pytest.fixture
async def hang() -> AsyncIterator[Hang]:
    """`Hang`, released at the end of the test whatever happened, so that no call outlives it."""
    function = Hang()
    try:
        yield function
    finally:
        function.released.set()


async def test_a_host_function_that_never_returns_is_stopped_at_timeout_ms(sandbox: MontySandbox,
                                                                          hang: Hang) -> None:
    elapsed = await timed_stop(sandbox, "await hang()", functions={"hang": hang})
    assert LIMITS.timeout_ms / 1000 <= elapsed < LIMITS.timeout_ms / 1000 + SLACK_S
    await assert_still_serves(sandbox)


async def test_a_host_function_that_never_returns_is_cancelled_with_the_run(sandbox: MontySandbox,
                                                                           hang: Hang) -> None:
    await timed_stop(sandbox, "await hang()", functions={"hang": hang})
    with anyio.fail_after(SLACK_S):
        await hang.cancelled.wait()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(LONG_SLEEP, id="asyncio.sleep"),
        pytest.param("import time\ntime.sleep(5)", id="time.sleep"),
        pytest.param("import asyncio\nfor _ in range(50):\n    await asyncio.sleep(0.1)", id="many-short-sleeps"),
        pytest.param("import asyncio\nawait asyncio.gather(*[asyncio.sleep(0.4) for _ in range(50)])",
                     id="gathered-sleeps"),
        pytest.param("import asyncio\ntry:\n    await asyncio.sleep(5)\nexcept BaseException:\n    pass\n'escaped'",
                     id="sleep-in-try-except"),
    ],
)
async def test_sleeping_past_the_timeout_is_refused_without_sleeping_it_out(sandbox: MontySandbox,
                                                                          code: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind in {"TimeoutError", "LimitExceeded"}
    assert "sleep limit exceeded" in str(error) or "timeout_ms" in str(error)
    await assert_still_serves(sandbox)


async def test_sleeping_past_the_timeout_is_reported_as_the_timeout_ms_limit(sandbox: MontySandbox) -> None:
    await stopped(sandbox, LONG_SLEEP, "timeout_ms")


# Abuse: recursion


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("def down(n):\n    return down(n + 1)\ndown(0)", id="function"),
        pytest.param("down = lambda n: down(n + 1)\ndown(0)", id="lambda"),
        pytest.param("def a(n):\n    return b(n)\ndef b(n):\n    return a(n + 1)\na(0)", id="mutual"),
        pytest.param("x = ()\nfor _ in range(10_000):\n    x = (x,)\nhash(x)", id="hash-of-nested-tuple"),
        pytest.param("import json\nx = {}\nfor _ in range(10_000):\n    x = {'a': x}\njson.dumps(x)",
                     id="json-of-nested-dict"),
    ],
)
async def test_deep_recursion_is_stopped_at_max_recursion_depth(sandbox: MontySandbox, code: str) -> None:
    await stopped(sandbox, code, "max_recursion_depth")
    await assert_still_serves(sandbox)


async def test_catching_the_recursion_error_does_not_let_the_code_recurse_deeper(sandbox: MontySandbox) -> None:
    code = ("deepest = 0\ndef down(n):\n    global deepest\n    deepest = max(deepest, n)\n    down(n + 1)\n"
            "for _ in range(3):\n    try:\n        down(0)\n    except RecursionError:\n        pass\ndeepest")
    result = await run(sandbox, code)
    assert 0 < result.value < LIMITS.max_recursion_depth
    await assert_still_serves(sandbox)


# Abuse: memory


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("'x' * 100_000_000", id="big-string"),
        pytest.param("[0] * 100_000_000", id="big-list"),
        pytest.param("x = [0]\nwhile True:\n    x = x + x", id="doubling-list"),
        pytest.param("x = 'a'\nwhile True:\n    x += x", id="doubling-string"),
        pytest.param("10 ** 10 ** 8", id="huge-int"),
        pytest.param("'{:>1000000000}'.format(1)", id="format-width"),
        pytest.param("list(range(10 ** 9))", id="range"),
        pytest.param("import itertools\nlist(itertools.count())", id="endless-iterator"),
        pytest.param("x = []\nwhile True:\n    x = [x, x * 2]", id="nested-growth"),
        pytest.param("{i: str(i) * 100 for i in range(10 ** 7)}", id="dict"),
        pytest.param("try:\n    'x' * 100_000_000\nexcept MemoryError:\n    pass\n'escaped'",
                     id="caught-as-memory-error"),
        pytest.param("try:\n    x = 'a'\n    while True:\n        x += x\nexcept BaseException:\n    pass\n'escaped'",
                     id="caught-as-base-exception"),
        pytest.param("n = 0\nwhile True:\n    try:\n        x = 'x' * 100_000_000\n    except BaseException:\n"
                     "        n += 1\n        if n > 3:\n            break\nn", id="retried-after-catching"),
    ],
)
async def test_a_memory_bomb_is_stopped_at_max_memory_bytes(sandbox: MontySandbox, code: str) -> None:
    await stopped(sandbox, code, "max_memory_bytes")
    await assert_still_serves(sandbox)


async def test_a_program_too_big_to_parse_in_the_memory_limit_is_refused(sandbox: MontySandbox) -> None:
    error = await refused(sandbox, PARSE_BOMB)
    assert "memory" in str(error).lower()
    await assert_still_serves(sandbox)


async def test_a_program_too_big_to_parse_in_the_memory_limit_is_reported_as_max_memory_bytes(
        sandbox: MontySandbox) -> None:
    await stopped(sandbox, PARSE_BOMB, "max_memory_bytes")


# Abuse: output


@pytest.mark.parametrize(
    ("code", "says"),
    [
        pytest.param("for _ in range(100_000):\n    print('a' * 40)", "printed", id="print-flood"),
        pytest.param("print('a' * 20_000)", "printed", id="one-big-print"),
        pytest.param("try:\n    for _ in range(100_000):\n        print('a' * 40)\nexcept BaseException:\n    pass\n"
                     "'escaped'", "printed", id="print-flood-in-try-except"),
        pytest.param("'b' * 20_000", "result", id="big-string-result"),
        pytest.param("['b' * 100] * 200", "result", id="big-list-result"),
        pytest.param("{str(i): i for i in range(5_000)}", "result", id="big-dict-result"),
    ],
)
async def test_output_past_the_limit_is_stopped_at_max_output_bytes(sandbox: MontySandbox, code: str,
                                                                   says: str) -> None:
    error = await stopped(sandbox, code, "max_output_bytes")
    assert says in str(error)
    await assert_still_serves(sandbox)


# Abuse: host calls


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("for i in range(10_000):\n    await call(i)", id="loop"),
        pytest.param("import asyncio\nawait asyncio.gather(*[call(i) for i in range(10_000)])", id="gather"),
        pytest.param("for i in range(10_000):\n    try:\n        await call(i)\n    except BaseException:\n"
                     "        pass\n'escaped'", id="loop-in-try-except"),
        pytest.param("while True:\n    call(1)", id="unawaited-calls"),
    ],
)
async def test_a_flood_of_host_calls_is_stopped_at_max_tool_calls(sandbox: MontySandbox, code: str) -> None:
    calls: list[Any] = []

    async def count(*args: Any) -> int:
        calls.append(args)
        return len(calls)

    await stopped(sandbox, code, "max_tool_calls", functions={"call": count})
    assert len(calls) <= SUSPENSIONS
    await assert_still_serves(sandbox)


# Abuse: what the engine refuses by itself


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        pytest.param("import re\nre.match(r'(a*)*\\1b', 'a' * 30)", "re.PatternError", "backtracking",
                     id="backtracking-regex"),
        pytest.param("str(10 ** 100_000)", "ValueError", "Exceeds the limit (4300 digits)", id="int-to-text"),
        pytest.param("eval('(' * 100_000 + ')' * 100_000)", "SyntaxError", "too deeply nested", id="nested-source"),
    ],
)
async def test_a_cpu_or_stack_bomb_is_refused_by_the_engine(sandbox: MontySandbox, code: str, kind: str,
                                                            says: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind == kind
    assert says in str(error)
    await assert_still_serves(sandbox)


async def test_a_catastrophic_regex_without_backreferences_runs_in_linear_time(sandbox: MontySandbox) -> None:
    started = anyio.current_time()
    result = await run(sandbox, "import re\nre.match('(a+)+$', 'a' * 5_000 + 'b')")
    assert result.value is None
    assert anyio.current_time() - started < LIMITS.timeout_ms / 1000
    await assert_still_serves(sandbox)


# Odd code and odd values


async def test_a_syntax_error_is_reported_with_its_line(sandbox: MontySandbox) -> None:
    error = await refused(sandbox, "x = 1\ny = = 2\nz = 3")
    assert error.kind == "SyntaxError"
    assert "line 2" in str(error)
    assert "Expected an expression" in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        pytest.param("raise SystemExit('bye')", "SystemExit", "SystemExit: bye", id="SystemExit"),
        pytest.param("raise SystemExit", "SystemExit", "SystemExit", id="bare-SystemExit"),
        pytest.param("raise KeyboardInterrupt", "KeyboardInterrupt", "KeyboardInterrupt", id="KeyboardInterrupt"),
        pytest.param("exit()", "NameError", "name 'exit' is not defined", id="exit"),
        pytest.param("quit()", "NameError", "name 'quit' is not defined", id="quit"),
    ],
)
async def test_trying_to_exit_ends_the_run_not_the_gateway(sandbox: MontySandbox, code: str, kind: str,
                                                          says: str) -> None:
    error = await refused(sandbox, code)
    assert error.kind == kind
    assert says in str(error)
    await assert_still_serves(sandbox)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        pytest.param("def f():\n    pass\nf", "<function 'f' at ", id="function"),
        pytest.param("class Box:\n    pass\nBox()", "MontyClassProxy(name='Box'", id="instance"),
        pytest.param("type('X', (), {})", "<class 'X'>", id="class"),
        pytest.param("call", "call", id="host-function"),
        pytest.param("type(call)", "MontyStdTypeProxy(kind='type', name='function')", id="host-function-type"),
        pytest.param("import re\nre.compile('a')", "re.compile('a')", id="compiled-regex"),
        pytest.param("ValueError('boom')", "boom", id="exception"),
        pytest.param("'\\ud800'", "\ufffd", id="lone-surrogate"),
    ],
)
async def test_a_returned_object_comes_back_as_its_text(sandbox: MontySandbox, code: str, text: str) -> None:
    result = await run(sandbox, code)
    assert isinstance(result.value, str)
    assert result.value.startswith(text)
    await assert_still_serves(sandbox)


async def test_a_deeply_nested_result_comes_back_cut_short(sandbox: MontySandbox) -> None:
    result = await run(sandbox, "x = []\nfor _ in range(20_000):\n    x = [x]\nx")
    depth, value = 0, result.value
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    assert isinstance(value, str)
    assert depth < 20_000
    assert json.loads(json.dumps(result.value)) == result.value
    await assert_still_serves(sandbox)


# The gateway never dies


async def test_twenty_concurrent_runs_with_one_hostile_each_get_their_own_answer(sandbox: MontySandbox) -> None:
    # A run's wait for a free worker counts against its timeout_ms: the friendly runs queue behind the hostile one.
    friendly = CodeLimits(timeout_ms=3_000, max_tool_calls=10)
    answers: dict[int, Any] = {}
    hostile: list[CodeError] = []

    async def friend(n: int) -> None:
        answers[n] = (await run(sandbox, f"(await call({n}))[0] * {n}", limits=friendly)).value

    async def foe() -> None:
        hostile.append(await stopped(sandbox, "while True:\n    pass", "timeout_ms"))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(foe)
            for n in range(19):
                tg.start_soon(friend, n)
    assert answers == {n: n * n for n in range(19)}
    assert len(hostile) == 1
    await assert_still_serves(sandbox)


async def test_a_worker_crashed_by_a_stack_overflow_is_replaced(sandbox: MontySandbox) -> None:
    roomy = CodeLimits(timeout_ms=5_000, max_memory_bytes=256 * 1024 * 1024)
    error = await refused(sandbox, "eval('1' + '+1' * 1_000_000)", limits=roomy)
    assert error.kind == "Crashed"
    assert "crashed" in str(error)
    await assert_still_serves(sandbox)


async def test_a_worker_killed_during_a_host_call_ends_the_run_and_is_replaced(sandbox: MontySandbox) -> None:
    killed: list[int] = []

    async def kill_workers() -> None:
        for worker in monty_workers():
            worker.kill()
            killed.append(worker.pid)

    error = await refused(sandbox, "await kill_workers()\n'survived'", functions={"kill_workers": kill_workers})
    assert killed
    assert error.kind == "Crashed"
    assert "crashed" in str(error)
    await assert_still_serves(sandbox)
