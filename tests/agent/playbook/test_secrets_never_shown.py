"""Nothing read from a configuration file is shown unmasked: whatever shape a file has (a single
env-file line, a mapping key, a header name, a template file, a comment, a huge line), a secret
written in it never reaches what ``agent validate`` prints, nor the diagnostics the running agent
logs and pages ([CONFIG] reload refused): they are the same :class:`Diagnostic` objects."""
from __future__ import annotations

import shutil
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agent.cli.main import main
from agent.playbook.diagnostics import MAX_SHOWN_LINE, Diagnostic

from .conftest import GOOD

ALNUM = string.ascii_letters + string.digits
SEED = ("legal winner thank year wave sausage worth useful legal winner thank yellow "
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above").split()


def _mixed(n: int) -> st.SearchStrategy[str]:
    """A generated password or token: letters and digits, both present."""
    return st.text(ALNUM, min_size=n, max_size=n).filter(
        lambda w: any(c.isdigit() for c in w) and any(c.isalpha() for c in w))


# (how it is written in a file, the part that must never be shown)
SECRETS: st.SearchStrategy[tuple[str, str]] = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: ("0x" + h, h[8:56])),
    _mixed(36).map(lambda w: ("ghp_" + w, w)),
    _mixed(12).map(lambda w: (f"mailtos://ops:{w}@smtp.example.com", w)),
    _mixed(24).map(lambda w: (f"https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/{w}", w)),
)

Writer = Callable[[Path, str], None]


def _settings_file(root: Path, text: str) -> None:
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("settings: null", "settings: settings.yaml"))
    (root / "settings.yaml").write_text(text)


def _template_file(root: Path, text: str) -> None:
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "  templates: {alert: alert.md.j2}\n")
    (root / "templates").mkdir()
    (root / "templates" / "alert.md.j2").write_text(text)


# where the secret is written: (the file, the text around the secret)
PLACES: dict[str, tuple[Writer, str]] = {
    "settings file that is one env-file line": (_settings_file, "BOTWARDEN_PRIVATE_KEY={s}\n"),
    "inventory that is one env-file line": (lambda r, t: (r / "inventory.yaml").write_text(t), "SLACK_URL={s}\n"),
    "playbook that is one env-file line": (lambda r, t: (r / "playbooks" / "env.yaml").write_text(t),
                                           "ALERT_EMAIL_URL={s}\n"),
    "playbook that is one quoted string": (lambda r, t: (r / "playbooks" / "env.yaml").write_text(t), '"{s}"\n'),
    "a mapping key": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                      'version: 1\nname: k\nhosts: bots\nvars: {{"{s}": 1}}\n'),
    "an unknown key": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                       'version: 1\nname: k\nhosts: bots\n"{s}": 1\n'),
    "a header name's value": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                              'version: 1\nname: k\nhosts: bots\nvars:\n  X-Api-Key: "{s}"\n'),
    "a YAML syntax error on its line": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                                        'version: 1\nname: k\nurl: "{s}" ]\n'),
    "a template file with a syntax error": (_template_file, "{{% if x %}}\n{s}\n{{{{ oops( }}}}\n"),
    "a comment of a template file": (_template_file, "{{{{ check }}}}\n{{# {s} #}}\n"),
    "a literal in a template within a URL": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                                             "version: 1\nname: k\nhosts: bots\nvars:\n"
                                             "  url: \"{{{{ '{s}' }}}}\"\n"),
    "a huge line": (lambda r, t: (r / "playbooks" / "k.yaml").write_text(t),
                    "version: 1\nname: k\nhosts: bots\ndescription: \"" + "x" * 3000 + " private key {s} " + "y" * 3000 + "\"\n"
                    "nope: 1\n"),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base")
    (root / "playbooks").mkdir()
    shutil.copy(GOOD / "inventory.yaml", root / "inventory.yaml")
    return root


def _validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["validate", "-i", str(root / "inventory.yaml"), str(root / "playbooks")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@settings(max_examples=40, derandomize=True, deadline=None, database=None, phases=(Phase.generate,),
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRETS, place=st.sampled_from(sorted(PLACES)))
def test_a_secret_in_any_file_in_any_shape_is_refused_and_never_shown(
        secret: tuple[str, str], place: str, base: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    written, core = secret
    root = tmp_path_factory.mktemp("case")
    shutil.copytree(base, root, dirs_exist_ok=True)
    write, around = PLACES[place]
    write(root, around.format(s=written))
    code, out = _validate(root, capsys)
    assert code != 0, out  # refused
    assert core not in out, out
    assert "secret" in out or "written literally" in out or "token" in out, out  # the finder ran on it
    longest = max(len(line) for line in out.splitlines())
    assert longest < MAX_SHOWN_LINE + 200, longest  # a huge line is shown around its column only


@pytest.mark.parametrize("words", [
    ",".join(SEED[:12]), "-".join(SEED[:12]).upper(), "_".join(w.title() for w in SEED[:12]),
    " ".join(f"{i}. {w}" for i, w in enumerate(SEED[:12], 1)),
])
def test_a_seed_phrase_however_it_is_spelled_is_refused_and_masked(
        words: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    (tmp_path / "playbooks" / "k.yaml").write_text(f'version: 1\nname: k\nhosts: bots\nvars: {{note: "{words}"}}\n')
    code, out = _validate(tmp_path, capsys)
    assert code != 0 and "seed phrase" in out, out
    assert "winner" not in out.lower(), out


@pytest.mark.parametrize("text", [
    "vars:\n  words:\n" + "".join(f"    - {w}\n" for w in SEED[:12]),  # a YAML list of words
    "".join(f"# {' '.join(SEED[i:i + 4])}\n" for i in range(0, 12, 4)),  # over three comment lines
])
def test_a_seed_phrase_over_several_lines_is_refused(text: str, base: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    (tmp_path / "playbooks" / "k.yaml").write_text("version: 1\nname: k\nhosts: bots\n" + text)
    code, out = _validate(tmp_path, capsys)
    assert code != 0 and "seed phrase" in out, out
    assert " ".join(SEED[:4]) not in out, out


@pytest.mark.parametrize(("value", "core"), [
    ("json://127.0.0.1:21903/?+Authorization=Bearer%20hunter2", "hunter2"),
    ("json://127.0.0.1:21903/?+X-Auth-Token=Qm7rT2xk", "Qm7rT2xk"),
    ("json://127.0.0.1:21903/?+Api-Key=Qm7rT2xk", "Qm7rT2xk"),
    ("mailtos://ops:Xk29vLq8Rt{{ '' }}@smtp.example.com", "Xk29vLq8Rt"),
    ("json://127.0.0.1:21903/?token={{ 'Xk29vLq8Rt' }}", "Xk29vLq8Rt"),
    ("{{ 'slack://T1A2B3C4D/B5E6F7G8H/' ~ 'Zq8rT3kLmX9vPw2YbN7cHd4F' }}", "Zq8rT3kLmX9vPw2YbN7cHd4F"),
])
def test_header_params_and_template_literals_in_a_url_are_refused_and_masked(
        value: str, core: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    (tmp_path / "playbooks" / "k.yaml").write_text(f'version: 1\nname: k\nhosts: bots\nvars: {{hook: "{value}"}}\n')
    code, out = _validate(tmp_path, capsys)
    assert code != 0 and "literally" in out, out
    assert core not in out, out


def test_a_cookie_header_is_a_secret() -> None:
    from agent.playbook.literal_secrets import find_secret

    assert find_secret("session=abc123", "Cookie") is not None
    assert find_secret("s3cr3t-Pa55", "X-Api-Key") is not None
    assert find_secret("json://127.0.0.1:1/?+Content-Type=json") is None  # a header that is not a secret


def test_every_diagnostic_masks_what_it_quotes_whoever_made_it() -> None:
    """The mechanism, at its depth: a diagnostic made anywhere (a message quoting a value or a key,
    the source line of a file that is no mapping) holds no secret the finder sees."""
    key = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    d = Diagnostic("settings.yaml", 1, 1, f"unknown key {key!r}", f"did you mean {key!r}?",
                   source_line=f"BOTWARDEN_PRIVATE_KEY={key}")
    assert key[2:] not in str(d), str(d)
    assert "BOTWARDEN_PRIVATE_KEY=" in str(d)  # what is not secret stays readable


def test_a_huge_line_is_shown_around_its_column_with_the_caret_on_it() -> None:
    line = "a" * 5000 + "BAD" + "b" * 5000
    d = Diagnostic("f.yaml", 1, 5001, "here", source_line=line)
    shown, caret = str(d).split("\n")[1:3]
    assert len(shown) < MAX_SHOWN_LINE + 10
    assert shown[caret.index("^"):].startswith("BAD"), (shown, caret)


def test_a_big_decimal_number_is_not_called_a_hex_private_key(base: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    digits = "1234567890" * 4
    (tmp_path / "playbooks" / "k.yaml").write_text(f"version: 1\nname: k\nhosts: bots\nvars: {{n: {digits}}}\n")
    _, out = _validate(tmp_path, capsys)
    assert "0x and 64 hex digits" not in out, out
    assert digits not in out, out


KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PASSWORD = "Xk29vLq8RtQ3"


@pytest.mark.parametrize(("name", "text"), [
    ("settings.yaml", f"BOTWARDEN_PRIVATE_KEY={KEY}\n"),
    ("inventory.yaml", f"ALERT_EMAIL_URL=mailtos://ops:{PASSWORD}@smtp.example.com\n"),
    ("playbooks/alpha.yaml", f"ALERT_EMAIL_URL=mailtos://ops:{PASSWORD}@smtp.example.com\n"),
    ("templates/resolve.md.j2", f"{{% if x %}}\nmailtos://ops:{PASSWORD}@smtp.example.com\n{{{{ oops( }}}}\n"),
    ("templates/resolve.md.j2", f"{{# mailtos://ops:{PASSWORD}@smtp.example.com #}}\nresolved\n"),
])
def test_the_running_agent_logs_and_pages_a_refused_reload_without_the_secret_and_never_keeps_it(
        name: str, text: str, tmp_path: Path) -> None:
    """What the agent logs and pages ([CONFIG] reload refused) is ``summary()``/``details()`` of
    the configuration it chose; the last good snapshot in var/ is written only from an accepted one."""
    from agent.engine.config_source import START_ORDER, ConfigSource
    from agent.playbook.last_good import SNAPSHOT_NAME

    repo = Path(__file__).resolve().parents[3]
    (tmp_path / "settings.yaml").write_text("var_dir: var\nagent: {metrics_port: 0}\n")
    (tmp_path / "inventory.yaml").write_text(
        "version: 1\nsettings: settings.yaml\nhosts: {local: {}}\n"
        "notify: {targets: {inbox: {url: 'json://127.0.0.1:9/'}}, routes: [{name: default, targets: [inbox]}]}\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "alpha.yaml").write_text(
        'version: 1\nname: alpha\nhosts: local\nchecks:\n  - name: a\n    command: {argv: ["true"]}\n'
        '    expect: "rc == 0"\n')
    shutil.copytree(repo / "templates", tmp_path / "templates", ignore=shutil.ignore_patterns("web"))
    source = ConfigSource(tmp_path / "inventory.yaml", [tmp_path / "playbooks"], env={},
                          templates_dir=tmp_path / "templates")
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "disk"
    assert source.save_last_good(chosen.config) is None

    (tmp_path / name).write_text(text)
    chosen, disk = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin != "disk", chosen.origin  # refused
    shown = chosen.summary() + "\n" + chosen.details()
    assert disk.diagnostics and any("literally" in d.message for d in disk.diagnostics), shown
    assert PASSWORD not in shown and KEY[2:] not in shown, shown
    snapshot = (tmp_path / "var" / SNAPSHOT_NAME).read_text()
    assert PASSWORD not in snapshot and KEY[2:] not in snapshot
