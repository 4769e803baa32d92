"""A user's link (``type: python``): found at load without running its code, imported from
the scenario's folder or an entry point, built with its options, and held to the protocol: every
break is one line naming the link and the class, exit 2, and no results file."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from semlink.cli import main
from semlink.errors import InputError
from semlink.scenario import ScenarioError, load_scenario

MODULE = '''\
import torch
from semlink.links.protocol import BitCounts, Dimensionality, Transmitted


class Echo:
    """Sends the image's mean colour (3 values, 2 symbols) and shows it back."""
    scoring = "concealed"

    def __init__(self, context, *, gain=1.0, sent=2):
        self.channel_uses = 2
        self.gain, self.sent, self.shape = gain, sent, context.image_shape

    def dimensionality(self):
        return Dimensionality((3,), self.shape, self.channel_uses, "mean colour")

    def transmit(self, images, channel, snr_db, generators):
        mean = images.mean(dim=(2, 3))                             # [batch, 3]
        x = torch.complex(mean[:, [0, 2]], mean[:, [1, 1]])        # (r + i g), (b + i g)
        x = torch.cat([x, torch.zeros(len(images), self.sent - 2, dtype=x.dtype)], 1)
        x_hat, _ = channel(x, snr_db)
        colour = torch.stack([x_hat[:, 0].real, x_hat[:, 0].imag, x_hat[:, 1].real], 1)
        out = (self.gain * colour).clamp(0, 1)[:, :, None, None].expand_as(images)
        failed = torch.zeros(len(images), dtype=torch.bool)
        return self.finish(out.contiguous(), failed, images)

    def finish(self, out, failed, images):
        return Transmitted(out, failed, {"colour_error": (out - images).abs().mean((1, 2, 3))})


class NoUses(Echo):
    def __init__(self, context):
        pass


class Zero(Echo):
    def __init__(self, context):
        super().__init__(context)
        self.channel_uses = 0


class WrongShape(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out[:, :, ::2], failed)


class WrongDtype(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out.double(), failed)


class NotFinite(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out * float("nan"), failed)


class BadFailed(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out, failed[:, None])


class TakenColumn(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out, failed, {"failed": failed.long()})


class NotTransmitted(Echo):
    def finish(self, out, failed, images):
        return out, failed


class BadBer(Echo):
    def finish(self, out, failed, images):
        return Transmitted(out, failed, ber={"bits": 1})


class Paper(Echo):
    scoring = "paper"


class WrongRow(Echo):
    def dimensionality(self):
        return Dimensionality((3,), (1, 1), self.channel_uses, "")


def factory(context):
    class Half:
        channel_uses = 3
    return Half()
'''


@pytest.fixture(autouse=True)
def _fresh_modules(monkeypatch):
    """Each test's ``userlinks`` is its own (Python caches a module by name per process)."""
    import sys

    for name in ("userlinks", "userlinks_ep"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("userlinks", "userlinks_ep"):
        sys.modules.pop(name, None)


def _scenario(tmp_path: Path, link: str, module: str = MODULE) -> Path:
    (tmp_path / "userlinks.py").write_text(module)
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        images: {{source: sample, size: 64, count: 2}}
        snr: {{points_db: [10]}}
        links:
          mine: {link}
        """))
    return path


def _run_error(path: Path, capsys) -> str:
    """``semlink run`` of ``path``: exit 2, one line on stderr, no results file."""
    out = path.parent / "r.h5"
    assert main(["run", str(path), "-o", str(out), "-q", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists()
    return err


def test_a_users_link_runs_with_its_options(tmp_path):
    path = _scenario(tmp_path, "{type: python, class: 'userlinks:Echo', options: {gain: 1.0}}")
    out = tmp_path / "r.h5"
    assert main(["run", str(path), "-o", str(out), "-q", "--device", "cpu"]) == 0
    from semlink.results import ResultsStore

    rows = ResultsStore.open(out).rows("images")
    assert [r["channel_uses"] for r in rows] == [2, 2]
    assert all(r["colour_error"] > 0 and not r["failed"] for r in rows)


@pytest.mark.parametrize("link, message", [
    ("{type: python, class: 'nosuchmod:Echo'}",
     "links.mine.class: no module 'nosuchmod' in the scenario's folder"),
    ("{type: python, class: 'userlinks:Nope'}", "defines no 'Nope' at its top level"),
    ("{type: python, class: 'userlinks.sub:Echo'}", "'userlinks' is a module, not a package"),
    ("{type: python, class: no-such-entry-point}",
     "no entry point 'no-such-entry-point' in group semlink.links"),
])
def test_a_class_that_cannot_be_found_is_refused_at_load(tmp_path, link, message, capsys):
    path = _scenario(tmp_path, link)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}:4: ") and message in info.value.problems[0]
    assert main(["validate", str(path)]) == 2


@pytest.mark.parametrize("name, message", [
    ("NoUses", "links.mine (userlinks:NoUses): has no channel_uses (an int >= 1"),
    ("Zero", "links.mine (userlinks:Zero): channel_uses must be an int >= 1 (complex channel "
             "uses per image); got 0"),
    ("WrongShape", "transmit returned images torch.float32 [1, 3, 32, 64] on cpu; expected "
                   "torch.float32 [1, 3, 64, 64] on cpu (as sent)"),
    ("WrongDtype", "transmit returned images torch.float64 [1, 3, 64, 64]"),
    ("NotFinite", "transmit returned images with values that are not finite or not in [0, 1]"),
    ("BadFailed", "transmit returned failed flags torch.bool [1, 1]; expected torch.bool [1]"),
    ("TakenColumn", "transmit returned a column 'failed', a name the runner writes"),
    ("NotTransmitted", "transmit must return a semlink.links.protocol.Transmitted; got tuple"),
    ("BadBer", "transmit returned ber dict; expected None or a semlink.links.protocol.BitCounts"),
    ("Paper", "scores failed decodes as 'paper', the scenario as 'concealed'; set scoring: "
              "paper"),
    ("WrongRow", "dimensionality() describes (1, 1) px images and 2 channel uses; the link has "
                 "(64, 64) and 2"),
    ("factory", "has no transmit(images, channel, snr_db, generators) method"),
])
def test_a_class_that_breaks_the_protocol_is_one_line(tmp_path, name, message, capsys):
    path = _scenario(tmp_path, f"{{type: python, class: 'userlinks:{name}'}}")
    err = _run_error(path, capsys)
    assert f"links.mine (userlinks:{name}): " in err and message in err, err


def test_sending_more_symbols_than_declared_is_refused(tmp_path, capsys):
    path = _scenario(tmp_path, "{type: python, class: 'userlinks:Echo', options: {sent: 5}}")
    err = _run_error(path, capsys)
    assert "sent 5 complex symbols per image through the channel (no noise, so no " \
           "retransmission); it declares channel_uses 2" in err


def test_options_the_class_refuses_are_one_line(tmp_path, capsys):
    path = _scenario(tmp_path, "{type: python, class: 'userlinks:Echo', options: {gian: 2}}")
    err = _run_error(path, capsys)
    assert "links.mine: userlinks:Echo(context, **options) refused options {'gian': 2} " \
           "(TypeError: " in err and "unexpected keyword argument 'gian'" in err


def test_a_module_that_fails_to_import_is_one_line(tmp_path, capsys):
    path = _scenario(tmp_path, "{type: python, class: 'userlinks:Echo'}",
                     module="raise RuntimeError('boom')\nclass Echo: pass\n")
    err = _run_error(path, capsys)
    assert "links.mine.class: cannot import 'userlinks' from " in err
    assert "(RuntimeError: boom)" in err


def test_an_entry_point_names_a_class(tmp_path, monkeypatch, capsys):
    """A package registers ``echo = userlinks_ep:Echo`` in group semlink.links (a dist-info
    folder on the path, as pip installs one); ``class: echo`` finds it at load and runs it."""
    site = tmp_path / "site"
    info = site / "fake_semlink_links-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-semlink-links\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[semlink.links]\necho = userlinks_ep:Echo\n")
    (site / "userlinks_ep.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(site))
    folder = tmp_path / "scenario"
    folder.mkdir()
    path = _scenario(folder, "{type: python, class: echo}")
    out = path.parent / "r.h5"
    assert main(["run", str(path), "-o", str(out), "-q", "--device", "cpu"]) == 0
    missing = _scenario(path.parent, "{type: python, class: ohce}")
    with pytest.raises(ScenarioError, match=r"no entry point 'ohce' in group semlink.links "
                                            r"\(installed: .*echo"):
        load_scenario(missing)


def test_the_class_is_looked_for_at_build_too(tmp_path):
    """A scenario read without its folder (a results file's text) is checked at build, and
    the scenario's folder leaves the import path again."""
    import sys

    from semlink.links.user import import_link_class

    (tmp_path / "userlinks.py").write_text(MODULE)
    assert import_link_class("userlinks:Echo", tmp_path).__name__ == "Echo"
    assert str(tmp_path.resolve()) not in sys.path
    with pytest.raises(InputError, match=r"links\.x\.class: 'userlinks' has no attribute 'Nope'"):
        import_link_class("userlinks:Nope", tmp_path, name="x")
